package issuer

import (
	"context"
	"strings"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/token"
)

// clientCredentials is the client credentials grant (RFC 6749 §4.4): a
// confidential client gets an access token for itself, so sub is its
// client_id (RFC 9068 §2.2).
type clientCredentials struct{ h *Handler }

func (clientCredentials) Type() string { return sigil.GrantClientCredentials }

func (g clientCredentials) Exchange(ctx context.Context, req *TokenRequest) (*TokenResponse, *Error) {
	c := req.Client
	if c.AuthMethod == sigil.AuthNone {
		// §4.4: only confidential clients.
		return nil, badRequest(CodeUnauthorizedClient, "public clients may not use client_credentials")
	}
	scopes, err := grantScope(c, req.Form.Get("scope"))
	if err != nil {
		return nil, err
	}
	aud, err := g.h.grantAudience(c, req.Form["resource"])
	if err != nil {
		return nil, err
	}
	return g.h.issueAccessToken(ctx, c, c.ID, scopes, aud, req.DPoP)
}

// issueAccessToken mints an RFC 9068 access token for client c about
// subject sub, bound to the proof's key when there is a DPoP proof, with
// an entry in a status list when the handler allocates them.
func (h *Handler) issueAccessToken(ctx context.Context, c *sigil.Client, sub string, scopes, aud []string, proof *dpop.Proof) (*TokenResponse, *Error) {
	ttl := c.AccessTokenTTL
	if ttl == 0 {
		ttl = h.AccessTokenTTL
	}
	ttl = min(ttl, h.MaxAccessTokenTTL)
	var status *token.Status
	var entry statuslist.Entry
	if h.StatusEntries != nil {
		var err error
		if entry, err = h.StatusEntries.Allocate(ctx); err != nil {
			return nil, internal(err)
		}
		status = &token.Status{List: &token.StatusListRef{Index: int64(entry.Index), URI: entry.URI}}
	}
	// After Allocate: the lease's start must not be later than iat.
	now := h.now()
	jti := token.NewJTI(now)
	if status != nil {
		jti = token.NewStatusJTI(now, entry.List, entry.Index)
	}
	scope := strings.Join(scopes, " ")
	claims := &token.Claims{
		Issuer:    h.Issuer,
		Subject:   sub,
		Audience:  aud,
		IssuedAt:  token.NewNumericDate(now),
		NotBefore: token.NewNumericDate(now),
		Expiry:    token.NewNumericDate(now.Add(ttl)),
		JTI:       jti,
		ClientID:  c.ID,
		Scope:     scope,
		Status:    status,
		Extra:     c.Claims,
	}
	tokenType := "Bearer"
	if proof != nil {
		claims.Confirmation = &token.Confirmation{JKT: proof.JKT}
		tokenType = "DPoP"
	}
	k, kerr := h.Keys.Active(h.AccessTokenAlg)
	if kerr != nil {
		return nil, internal(kerr)
	}
	raw, serr := token.Sign(k, token.TypeAccess, claims)
	if serr != nil {
		return nil, internal(serr)
	}
	return &TokenResponse{AccessToken: raw, TokenType: tokenType, ExpiresIn: int64(ttl.Seconds()), Scope: scope, claims: claims}, nil
}
