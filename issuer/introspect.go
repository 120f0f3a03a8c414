package issuer

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/token"
)

// inactive is the whole answer for any token that is not active, whatever
// the reason (RFC 7662 §2.2): the caller learns nothing more.
var inactive = []byte(`{"active":false}`)

// serveIntrospect answers RFC 7662. The caller authenticates as a client;
// it may introspect tokens issued to itself, and a resource server client
// (Introspect) tokens whose aud includes one of its audiences. Any other
// token reads as inactive.
func (h *Handler) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(w, r)
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	caller, oerr := h.authenticate(r.Context(), r, form, h.endpoint(PathIntrospect))
	if oerr == nil && caller.AuthMethod == sigil.AuthNone {
		// Anyone can claim a public client's id.
		oerr = invalidClient(false, errors.New("public clients may not introspect"))
	}
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	raw := form.Get("token")
	if raw == "" {
		writeError(w, r, h.Log, invalidRequest("token is required"))
		return
	}
	httpx.NoStore(w)
	c, why, err := h.activeToken(r.Context(), raw, nil)
	if err != nil {
		writeError(w, r, h.Log, err)
		return
	}
	if why == "" && !mayIntrospect(caller, c) {
		why = "not_permitted"
	}
	if why != "" {
		h.inactiveIntrospection(r.Context(), caller.ID, why, c)
		httpx.WriteRawJSON(w, http.StatusOK, inactive)
		return
	}
	tokenType := "Bearer"
	if c.BoundKey() != "" {
		tokenType = "DPoP" // RFC 9449 §6.2
	}
	httpx.WriteJSON(w, http.StatusOK, introspection{Claims: c, Active: true, TokenType: tokenType})
}

// activeToken checks whether raw is an active access token of this
// issuer: it verifies, its client still exists, and it is not revoked. For
// an inactive token it says why ("invalid", "client_deleted", "revoked"),
// with the claims when they verified. It returns an error only when the
// store fails.
//
// Claims already verified (by the userinfo endpoint's middleware) may be
// given instead of raw.
func (h *Handler) activeToken(ctx context.Context, raw string, verified *token.Claims) (*token.Claims, string, error) {
	c := verified
	if c == nil {
		var err error
		if c, err = h.verifier.Verify(ctx, raw); err != nil {
			return nil, "invalid", nil
		}
	}
	if _, err := h.client(ctx, c.ClientID); err != nil {
		if errors.Is(err, sigil.ErrNotFound) {
			return c, "client_deleted", nil // its tokens die with it
		}
		return nil, "", internal(err)
	}
	revoked, err := h.Store.Revoked(ctx, sigil.TokenRef{JTI: c.JTI, ClientID: c.ClientID, Subject: c.Subject, IssuedAt: c.IssuedAt.Time()})
	if err != nil {
		return nil, "", internal(err)
	}
	if revoked {
		return c, "revoked", nil
	}
	return c, "", nil
}

func mayIntrospect(caller *sigil.Client, c *token.Claims) bool {
	if caller.ID == c.ClientID {
		return true
	}
	if !caller.Introspect {
		return false
	}
	for _, a := range c.Audience {
		if caller.HasAudience(a) {
			return true
		}
	}
	return false
}

// introspection is the RFC 7662 §2.2 response for an active token: the
// token's claims plus active and token_type.
type introspection struct {
	*token.Claims
	Active    bool
	TokenType string
}

// responseMembers are the members the introspection response sets itself
// that are not registered claims. A client's extra claim of the same name,
// or of a name differing only in case, is left out: a member twice in one
// object is read differently by different JSON parsers (Go's takes the
// last and matches struct fields case-insensitively, so "Active":false
// from a client's claims would hide an active token, or the reverse
// elsewhere).
var responseMembers = []string{"active", "token_type"}

func isResponseMember(name string) bool {
	return slices.ContainsFunc(responseMembers, func(m string) bool { return strings.EqualFold(m, name) })
}

func (i introspection) MarshalJSON() ([]byte, error) {
	c := *i.Claims
	for k := range c.Extra {
		if isResponseMember(k) {
			extra := make(map[string]any, len(c.Extra))
			for name, v := range c.Extra {
				if !isResponseMember(name) {
					extra[name] = v
				}
			}
			c.Extra = extra
			break
		}
	}
	b, err := c.MarshalJSON()
	if err != nil {
		return nil, err
	}
	head := `{"active":true,"token_type":"` + i.TokenType + `"`
	if len(b) > 2 {
		head += ","
	}
	return append([]byte(head), b[1:]...), nil
}
