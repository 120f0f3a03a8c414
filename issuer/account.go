package issuer

import (
	"errors"
	"net/http"
	"strings"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
)

// consentRow is one line of the account page.
type consentRow struct {
	ClientID, ClientName, Granted string
	Scopes                        []string
}

// serveAccount shows the signed-in user the clients they allowed, each
// with a button that withdraws the consent; without a session it asks
// the user to sign in first.
func (h *Handler) serveAccount(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, user, err := h.currentSession(ctx, r)
	if err != nil {
		h.Log.ErrorContext(r.Context(), "account: store unavailable", "err", err)
		h.renderError(w, r, http.StatusServiceUnavailable, errorPage("try again shortly"))
		return
	}
	if sess == nil {
		h.renderSignIn(w, r, &authRequest{MaxAge: -1, Created: h.now().UnixNano()}, "", http.StatusOK)
		return
	}
	consents, err := h.Store.Consents(ctx, user.ID)
	if err != nil {
		h.Log.ErrorContext(r.Context(), "account: store unavailable", "err", err)
		h.renderError(w, r, http.StatusServiceUnavailable, errorPage("try again shortly"))
		return
	}
	var rows []consentRow
	for _, c := range consents {
		name := c.ClientID
		if e, err := h.client(ctx, c.ClientID); err == nil {
			name = displayName(e.client)
		}
		rows = append(rows, consentRow{ClientID: c.ClientID, ClientName: name, Scopes: c.Scopes, Granted: c.GrantedAt.UTC().Format("2 January 2006")})
	}
	h.render(w, http.StatusOK, "account.html", map[string]any{
		"Title": "Your account", "Username": user.Username, "Consents": rows, "CSRF": h.csrfFor(w, r),
		"RevokeAction": h.endpoint(PathAccountRevoke), "LogoutAction": h.endpoint(PathLogout),
	})
}

// serveRevokeConsent withdraws the signed-in user's consent for one
// client, with the refresh tokens and access tokens issued under it.
func (h *Handler) serveRevokeConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, oerr := readForm(w, r); oerr != nil {
		h.renderError(w, r, http.StatusBadRequest, errorPage(oerr.Description))
		return
	}
	if err := h.checkCSRF(r); err != nil {
		h.renderError(w, r, http.StatusForbidden, errorPage("the form expired or did not come from this site"))
		return
	}
	sess, user, err := h.currentSession(ctx, r)
	if err != nil {
		h.Log.ErrorContext(r.Context(), "account: store unavailable", "err", err)
		h.renderError(w, r, http.StatusServiceUnavailable, errorPage("try again shortly"))
		return
	}
	if sess == nil {
		http.Redirect(w, r, h.endpoint(PathAccount), http.StatusSeeOther)
		return
	}
	clientID := r.PostForm.Get("client_id")
	c, err := h.Store.Consent(ctx, user.ID, clientID)
	if errors.Is(err, sigil.ErrNotFound) {
		http.Redirect(w, r, h.endpoint(PathAccount), http.StatusSeeOther)
		return
	}
	if err == nil {
		err = h.Store.DeleteConsent(ctx, user.ID, clientID)
	}
	var jtis []string
	if err == nil {
		jtis, err = h.Store.RevokeRefreshTokens(ctx, user.ID, clientID)
	}
	if err != nil {
		h.Log.ErrorContext(ctx, "account: consent not withdrawn", "err", err)
		h.renderError(w, r, http.StatusServiceUnavailable, errorPage("try again shortly"))
		return
	}
	h.revokeJTIs(ctx, jtis)
	if err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: audit.ConsentRevoked, Outcome: audit.Success, ClientID: clientID, Subject: user.ID,
		Scope: strings.Join(c.Scopes, " "), Detail: map[string]string{"by": "user"},
	})); err != nil {
		h.Log.ErrorContext(ctx, "audit: consent withdrawal not recorded", "err", err)
	}
	httpNoStorePage(w)
	http.Redirect(w, r, h.endpoint(PathAccount), http.StatusSeeOther)
}
