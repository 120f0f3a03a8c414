package issuer

import (
	"net/http"
	"slices"
	"strings"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
)

// serveConsent handles the consent form: allow remembers the consent and
// sends the user back to the client with a code; deny sends access_denied.
func (h *Handler) serveConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, ok := h.flowForm(w, r)
	if !ok {
		return
	}
	if aerr := h.recheck(ctx, req); aerr != nil {
		h.authFailed(w, r, aerr)
		return
	}
	sess, user, err := h.currentSession(ctx, r)
	if err != nil {
		h.Log.ErrorContext(r.Context(), "consent: store unavailable", "err", err)
		h.authFailed(w, r, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly", redirect: req})
		return
	}
	if sess == nil {
		// The session ended (or expired) on the consent page: sign in again.
		h.renderSignIn(w, r, req, "", http.StatusOK)
		return
	}
	switch r.PostForm.Get("decision") {
	case "allow":
	case "deny":
		h.authFailed(w, r, &authError{Code: CodeAccessDenied, Description: "the user denied the request", redirect: req})
		return
	default:
		h.renderError(w, r, http.StatusBadRequest, errorPage("choose Allow or Deny"))
		return
	}
	// The user allowed the scopes at the resources of the request's
	// authorization details only with those tools (RFC 9396). Consents do
	// not record details, so those resources are not remembered: a later
	// request for them without details (a token a tool server may read as
	// bounded by its scopes alone) is asked again, and prompt=none for it
	// is consent_required.
	toolsOnly := req.AuthorizationDetails.Resources()
	aud := slices.DeleteFunc(slices.Clone(req.Audience), func(a string) bool { return slices.Contains(toolsOnly, a) })
	c := &sigil.Consent{UserID: user.ID, ClientID: req.ClientID, Scopes: req.Scopes, Audience: aud, GrantedAt: h.now()}
	if old, err := h.Store.Consent(ctx, user.ID, req.ClientID); err == nil {
		// A narrower request does not withdraw what was allowed before.
		c.Scopes = union(old.Scopes, req.Scopes)
		c.Audience = union(old.Audience, aud)
	}
	if err := h.Store.SaveConsent(ctx, c); err != nil {
		h.Log.ErrorContext(ctx, "consent: not stored", "err", err)
		h.authFailed(w, r, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly", redirect: req})
		return
	}
	if err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: audit.ConsentGranted, Outcome: audit.Success, ClientID: req.ClientID, Subject: user.ID,
		Scope: strings.Join(c.Scopes, " "), Audience: c.Audience,
	})); err != nil {
		h.Log.ErrorContext(ctx, "audit: consent not recorded", "err", err)
	}
	h.issueCode(w, r, req, sess)
}

// union returns a followed by the members of b it lacks.
func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func contains(l []string, x string) bool { return slices.Contains(l, x) }
