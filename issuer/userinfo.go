package issuer

import (
	"errors"
	"net/http"
	"slices"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/verify"
)

// userInfo serves the UserInfo endpoint (OpenID Connect Core §5.3) behind
// the access-token check of package verify (RFC 6750, and RFC 9449 for
// DPoP-bound tokens): the user's claims the token's scopes release.
func (h *Handler) userInfo() http.Handler {
	m := &verify.Middleware{
		Verifier: h.verifier,
		DPoP:     h.dpop,
		URI:      func(*http.Request) string { return h.endpoint(PathUserInfo) },
	}
	return m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		claims, _ := verify.ClaimsFrom(ctx)
		c, why, err := h.activeToken(ctx, "", claims)
		if err != nil {
			writeError(w, r, h.Log, err)
			return
		}
		if why != "" {
			challenge(w, claims.BoundKey() != "", http.StatusUnauthorized, "invalid_token", "the access token is not active", "")
			return
		}
		if !slices.Contains(c.Scopes(), ScopeOpenID) {
			challenge(w, c.BoundKey() != "", http.StatusForbidden, "insufficient_scope", "the access token lacks the openid scope", ScopeOpenID)
			return
		}
		u, err := h.Store.User(ctx, c.Subject)
		if errors.Is(err, sigil.ErrNotFound) || err == nil && u.Disabled {
			challenge(w, c.BoundKey() != "", http.StatusUnauthorized, "invalid_token", "the token's user no longer exists or is disabled", "")
			return
		}
		if err != nil {
			writeError(w, r, h.Log, internal(err))
			return
		}
		out := identityClaims(u, c.Scopes())
		out["sub"] = u.ID
		httpx.NoStore(w)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		httpx.WriteJSON(w, http.StatusOK, out)
	}))
}

// challenge answers a refused resource request (RFC 6750 §3, RFC 9449 §7.1).
func challenge(w http.ResponseWriter, dpopBound bool, status int, code, desc, scope string) {
	scheme := "Bearer"
	if dpopBound {
		scheme = "DPoP"
	}
	v := scheme + ` error="` + code + `", error_description="` + desc + `"`
	if scope != "" {
		v += `, scope="` + scope + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	httpx.NoStore(w)
	w.WriteHeader(status)
}
