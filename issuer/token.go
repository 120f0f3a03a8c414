package issuer

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/internal/httpx"
)

// Grant is one grant type at the token endpoint. The shared phases (form
// parsing, client authentication, the grant-type check, writing the
// response) run before and after it.
type Grant interface {
	// Type is the grant_type value.
	Type() string
	// Exchange turns an authenticated request into a token response.
	Exchange(ctx context.Context, req *TokenRequest) (*TokenResponse, *Error)
}

// TokenRequest is a parsed token request from an authenticated client.
type TokenRequest struct {
	Client *sigil.Client
	Form   url.Values
}

// TokenResponse is the successful response (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(w, r)
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	client, oerr := h.authenticate(r.Context(), r, form, h.endpoint(PathToken))
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	gt := form.Get("grant_type")
	g, ok := h.grants[gt]
	switch {
	case gt == "":
		oerr = invalidRequest("grant_type is required")
	case !ok:
		oerr = badRequest(CodeUnsupportedGrantType, "grant_type "+gt+" is not supported")
	case !client.HasGrant(gt):
		oerr = badRequest(CodeUnauthorizedClient, "the client may not use grant_type "+gt)
	}
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	resp, oerr := g.Exchange(r.Context(), &TokenRequest{Client: client, Form: form})
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	httpx.NoStore(w)
	httpx.WriteJSON(w, http.StatusOK, resp)
}

// grantScope decides the granted scopes: the requested ones, each of which
// the client must be allowed (else invalid_scope), or the client's default
// scopes when none is requested (RFC 6749 §3.3).
func grantScope(c *sigil.Client, requested string) ([]string, *Error) {
	if strings.TrimSpace(requested) == "" {
		return c.DefaultScopes, nil
	}
	var out []string
	for _, s := range strings.Split(requested, " ") {
		if s == "" {
			continue
		}
		if !validScopeToken(s) {
			return nil, badRequest(CodeInvalidScope, "malformed scope value")
		}
		if !contains(c.Scopes, s) {
			return nil, badRequest(CodeInvalidScope, "scope "+s+" is not allowed for this client")
		}
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// validScopeToken checks RFC 6749 §3.3: 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
			return false
		}
	}
	return s != ""
}

// grantAudience decides aud from the resource parameters (RFC 8707 §2):
// each must be an absolute URI without fragment and one of the client's
// audiences (else invalid_target). Without any, the client's first audience
// or, if it has none, the issuer.
func (h *Handler) grantAudience(c *sigil.Client, resources []string) ([]string, *Error) {
	if len(resources) == 0 {
		if len(c.Audiences) > 0 {
			return c.Audiences[:1], nil
		}
		return []string{h.Issuer}, nil
	}
	var out []string
	for _, res := range resources {
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || strings.Contains(res, "#") {
			return nil, badRequest(CodeInvalidTarget, "resource must be an absolute URI without a fragment")
		}
		if !c.HasAudience(res) {
			return nil, badRequest(CodeInvalidTarget, "resource "+res+" is not allowed for this client")
		}
		if !contains(out, res) {
			out = append(out, res)
		}
	}
	return out, nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
