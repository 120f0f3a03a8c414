package issuer

import (
	"context"
	"strings"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/dpop"
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
	return g.h.issueAccessToken(c, c.ID, scopes, aud, req.DPoP)
}

// issueAccessToken mints an RFC 9068 access token for client c about
// subject sub, bound to the proof's key when there is a DPoP proof.
func (h *Handler) issueAccessToken(c *sigil.Client, sub string, scopes, aud []string, proof *dpop.Proof) (*TokenResponse, *Error) {
	ttl := c.AccessTokenTTL
	if ttl == 0 {
		ttl = h.AccessTokenTTL
	}
	ttl = min(ttl, h.MaxAccessTokenTTL)
	now := h.now()
	scope := strings.Join(scopes, " ")
	claims := &token.Claims{
		Issuer:    h.Issuer,
		Subject:   sub,
		Audience:  aud,
		IssuedAt:  token.NewNumericDate(now),
		NotBefore: token.NewNumericDate(now),
		Expiry:    token.NewNumericDate(now.Add(ttl)),
		JTI:       token.NewJTI(now),
		ClientID:  c.ID,
		Scope:     scope,
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
