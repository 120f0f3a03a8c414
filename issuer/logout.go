package issuer

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/token"
)

// logoutRequest is a validated RP-initiated logout request, sealed into
// the confirmation page.
type logoutRequest struct {
	ClientID    string `json:"client_id,omitempty"`
	RedirectURI string `json:"redirect_uri,omitempty"`
	State       string `json:"state,omitempty"`
	// HintSID is the sid of the id_token_hint: the session it was issued
	// in. Only a hint from the current session signs out without asking.
	HintSID string `json:"hint_sid,omitempty"`
	Created int64  `json:"created"`
}

// serveLogout is the end-session endpoint (OpenID Connect RP-Initiated
// Logout 1.0). With an id_token_hint issued in the current session (its
// sid) it signs the user out at once; otherwise it asks first, so neither
// a link on another site nor an old ID token can sign anyone out. A
// post_logout_redirect_uri must be one of the client's registered
// redirect URIs. A logout request by POST from another site comes without
// the session cookie (SameSite=Lax): it continues as a GET, which has it.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	params, err := authorizeParams(w, r)
	if err != nil {
		h.renderError(w, r, http.StatusBadRequest, errorPage(err.Error()))
		return
	}
	if r.Method == http.MethodPost && params.Has("csrf_token") {
		// The confirmation (or the account page's sign-out button).
		if err := h.checkCSRF(r); err != nil {
			h.renderError(w, r, http.StatusForbidden, errorPage("the form expired or did not come from this site"))
			return
		}
		var req logoutRequest
		if t := params.Get("ticket"); t != "" {
			if err := h.keys.open("logout", t, &req); err != nil || h.now().Sub(time.Unix(0, req.Created)) > ticketTTL {
				h.renderError(w, r, http.StatusBadRequest, errorPage("the sign-out link is not valid"))
				return
			}
		}
		h.logout(w, r, &req)
		return
	}
	var req *logoutRequest
	if t := params.Get("step"); t != "" && len(params) == 1 && r.Method == http.MethodGet {
		req = &logoutRequest{}
		if err := h.keys.open("logout step", t, req); err != nil || h.now().Sub(time.Unix(0, req.Created)) > ticketTTL {
			h.renderError(w, r, http.StatusBadRequest, errorPage("the sign-out link is not valid"))
			return
		}
	} else {
		var aerr *authError
		if req, aerr = h.parseLogout(ctx, params); aerr != nil {
			h.renderError(w, r, http.StatusBadRequest, aerr)
			return
		}
		if r.Method == http.MethodPost {
			t, err := h.keys.seal("logout step", req)
			if err != nil {
				h.renderError(w, r, http.StatusInternalServerError, errorPage("try again"))
				return
			}
			httpNoStorePage(w)
			http.Redirect(w, r, h.endpoint(PathLogout)+"?step="+t, http.StatusSeeOther)
			return
		}
	}
	sess, _, err := h.currentSession(ctx, r)
	if err != nil {
		h.Log.ErrorContext(r.Context(), "logout: store unavailable", "err", err)
		h.renderError(w, r, http.StatusServiceUnavailable, errorPage("try again shortly"))
		return
	}
	if sess == nil || req.HintSID != "" && req.HintSID == h.sid(sess.ID) {
		h.logout(w, r, req) // without a session there is nothing to end
		return
	}
	t, serr := h.keys.seal("logout", req)
	if serr != nil {
		h.renderError(w, r, http.StatusInternalServerError, errorPage("try again"))
		return
	}
	name := ""
	if req.ClientID != "" {
		if c, err := h.client(ctx, req.ClientID); err == nil {
			name = displayName(c.client)
		}
	}
	h.render(w, http.StatusOK, "logout.html", map[string]any{
		"Title": "Sign out", "ClientName": name, "Action": h.endpoint(PathLogout), "CSRF": h.csrfFor(w, r), "Ticket": t,
	}, req.RedirectURI)
}

// parseLogout validates the logout parameters. The id_token_hint must be
// an ID token this server signed; it may have expired.
func (h *Handler) parseLogout(ctx context.Context, p url.Values) (*logoutRequest, *authError) {
	req := &logoutRequest{ClientID: p.Get("client_id"), State: p.Get("state"), Created: h.now().UnixNano()}
	if len(req.State) > maxStateLen {
		return nil, errorPage("state is too long")
	}
	if raw := p.Get("id_token_hint"); raw != "" {
		hdr, c, err := token.Parse(ctx, raw, h.Keys)
		if err != nil || hdr.Typ != TypeIDToken || c.Issuer != h.Issuer || len(c.Audience) == 0 {
			return nil, errorPage("id_token_hint is not an ID token from this server")
		}
		clientID := c.AuthorizedParty
		if clientID == "" {
			clientID = c.Audience[0]
		}
		if req.ClientID != "" && req.ClientID != clientID {
			return nil, errorPage("client_id does not match the id_token_hint")
		}
		req.ClientID = clientID
		req.HintSID, _ = c.Extra["sid"].(string)
	}
	if ru := p.Get("post_logout_redirect_uri"); ru != "" {
		if req.ClientID == "" {
			return nil, errorPage("post_logout_redirect_uri needs client_id or id_token_hint")
		}
		c, aerr := h.lookupClient(ctx, req.ClientID)
		if aerr != nil {
			return nil, aerr
		}
		if !slices.Contains(c.RedirectURIs, ru) {
			return nil, errorPage("post_logout_redirect_uri is not registered for this client")
		}
		req.RedirectURI = ru
	}
	return req, nil
}

// logout ends the browser's session and returns to the client, or says
// the user is signed out.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request, req *logoutRequest) {
	ctx := r.Context()
	sess, err := h.endSession(w, r)
	if err != nil {
		h.Log.ErrorContext(ctx, "logout: session not deleted", "err", err)
		h.renderError(w, r, http.StatusServiceUnavailable, errorPage("sign-out failed; try again shortly"))
		return
	}
	if sess != nil {
		if err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
			Event: audit.SignOut, Outcome: audit.Success, Subject: sess.UserID, ClientID: req.ClientID,
		})); err != nil {
			h.Log.ErrorContext(ctx, "audit: sign-out not recorded", "err", err)
		}
	}
	if req.RedirectURI == "" {
		h.render(w, http.StatusOK, "logout.html", map[string]any{"Title": "Signed out", "Done": true})
		return
	}
	u, _ := url.Parse(req.RedirectURI)
	if req.State != "" {
		q := u.Query()
		q.Set("state", req.State)
		u.RawQuery = q.Encode()
	}
	httpNoStorePage(w)
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}
