package issuer

import (
	"context"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/authzdetails"
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
	// Bounded by the client's registration: every resource must be one
	// of its audiences (detailsAudience).
	details, err := parseDetails(req.Form.Get("authorization_details"))
	if err != nil {
		return nil, err
	}
	aud, err := g.h.detailsAudience(c, req.Form["resource"], details)
	if err != nil {
		return nil, err
	}
	return g.h.issueAccessToken(ctx, c, c.ID, scopes, aud, req.DPoP, details)
}

// issueAccessToken mints an RFC 9068 access token for client c about
// subject sub, bound to the proof's key when there is a DPoP proof, with
// an entry in a status list when the handler allocates them, carrying
// details (nil for none).
func (h *Handler) issueAccessToken(ctx context.Context, c *sigil.Client, sub string, scopes, aud []string, proof *dpop.Proof, details authzdetails.List) (*TokenResponse, *Error) {
	id, err := h.newTokenID(ctx)
	if err != nil {
		return nil, err
	}
	return h.mintAccessToken(c, accessGrant{id: id, sub: sub, scopes: scopes, aud: aud, proof: proof, extra: c.Claims, details: details})
}

// tokenID is an access token's identity, decided before the token is
// minted so it can be recorded first (an authorization code's redemption).
type tokenID struct {
	jti    string
	status *token.Status
	iat    time.Time
}

// newTokenID allocates a status list entry, when the handler allocates
// them, and the jti that carries it.
func (h *Handler) newTokenID(ctx context.Context) (tokenID, *Error) {
	var id tokenID
	var entry statuslist.Entry
	if h.StatusEntries != nil {
		var err error
		if entry, err = h.StatusEntries.Allocate(ctx); err != nil {
			return id, internal(err)
		}
		id.status = &token.Status{List: &token.StatusListRef{Index: int64(entry.Index), URI: entry.URI}}
	}
	// After Allocate: the lease's start must not be later than iat.
	id.iat = h.now()
	id.jti = token.NewJTI(id.iat)
	if id.status != nil {
		id.jti = token.NewStatusJTI(id.iat, entry.List, entry.Index)
	}
	return id, nil
}

// accessGrant is what one access token says.
type accessGrant struct {
	id     tokenID
	sub    string
	scopes []string
	aud    []string
	proof  *dpop.Proof
	extra  map[string]any
	// authTime is the user's authentication, for tokens issued for a user.
	authTime time.Time
	// act is the delegation chain of a token exchange; mayAct names who
	// may act for the subject (a user's may_act claim).
	act, mayAct *token.Actor
	// notAfter, when set, caps the expiry: an exchanged token never
	// outlives its subject token.
	notAfter time.Time
	// details are the token's authorization details (RFC 9396); nil for
	// none.
	details authzdetails.List
}

// accessTTL is the lifetime of client c's access tokens (and ID tokens):
// its own, or the server default, capped by the maximum.
func (h *Handler) accessTTL(c *sigil.Client) time.Duration {
	ttl := c.AccessTokenTTL
	if ttl == 0 {
		ttl = h.AccessTokenTTL
	}
	return min(ttl, h.MaxAccessTokenTTL)
}

// mintAccessToken signs an access token for client c.
func (h *Handler) mintAccessToken(c *sigil.Client, g accessGrant) (*TokenResponse, *Error) {
	ttl := h.accessTTL(c)
	now := g.id.iat
	if !g.notAfter.IsZero() && g.notAfter.Before(now.Add(ttl)) {
		ttl = g.notAfter.Sub(now).Truncate(time.Second)
	}
	scope := strings.Join(g.scopes, " ")
	claims := &token.Claims{
		Issuer:    h.Issuer,
		Subject:   g.sub,
		Audience:  g.aud,
		IssuedAt:  token.NewNumericDate(now),
		NotBefore: token.NewNumericDate(now),
		Expiry:    token.NewNumericDate(now.Add(ttl)),
		JTI:       g.id.jti,
		ClientID:  c.ID,
		Scope:     scope,
		Status:    g.id.status,
		Act:       g.act,
		MayAct:    g.mayAct,
		Extra:     g.extra,

		AuthorizationDetails: g.details,
	}
	if !g.authTime.IsZero() {
		claims.AuthTime = token.NewNumericDate(g.authTime)
	}
	tokenType := "Bearer"
	if g.proof != nil {
		claims.Confirmation = &token.Confirmation{JKT: g.proof.JKT}
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
	return &TokenResponse{AccessToken: raw, TokenType: tokenType, ExpiresIn: int64(ttl.Seconds()), Scope: scope,
		AuthorizationDetails: g.details, claims: claims}, nil
}
