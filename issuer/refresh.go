package issuer

import (
	"context"
	"crypto/subtle"
	"errors"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/token"
)

// refreshToken is the refresh token grant (RFC 6749 §6) with rotation:
// every use spends the token and returns a new one of the same family, and
// a spent token presented again revokes the family (RFC 9700 §4.14.2).
type refreshToken struct{ h *Handler }

func (refreshToken) Type() string { return sigil.GrantRefreshToken }

func (g refreshToken) Exchange(ctx context.Context, req *TokenRequest) (*TokenResponse, *Error) {
	h, c := g.h, req.Client
	value := req.Form.Get("refresh_token")
	if value == "" {
		return nil, invalidRequest("refresh_token is required")
	}
	family, generation, ok := h.keys.parseRefreshToken(value)
	if !ok {
		return nil, badRequest(CodeInvalidGrant, "the refresh token is invalid or expired")
	}
	hash := h.keys.storedHash("refresh", value)
	rt, oerr := h.refreshFamily(ctx, family, generation, hash)
	if oerr != nil {
		return nil, oerr
	}
	if rt.ClientID != c.ID {
		// Bound to the client it was issued to (RFC 6749 §10.4).
		return nil, badRequest(CodeInvalidGrant, "the refresh token was issued to another client")
	}
	now := h.now()
	switch {
	case rt.Revoked:
		return nil, badRequest(CodeInvalidGrant, "the refresh token was revoked")
	case generation < rt.Generation:
		// An authentic token of an earlier generation: spent, and
		// presented again (RFC 9700 §4.14.2).
		h.refreshReplayed(ctx, c, rt.ID, "spent token presented again")
		return nil, badRequest(CodeInvalidGrant, "the refresh token was already used; its family is revoked")
	case generation > rt.Generation || subtle.ConstantTimeCompare([]byte(hash), []byte(rt.TokenHash)) != 1:
		// Authentic but never stored: a rotation whose response was
		// issued but whose commit failed, or a store restored from
		// an older backup. Not evidence of theft.
		return nil, badRequest(CodeInvalidGrant, "the refresh token is invalid or expired")
	case !now.Before(rt.IdleExpiresAt):
		return nil, badRequest(CodeInvalidGrant, "the refresh token expired")
	}
	if rt.JKT != "" && (req.DPoP == nil || req.DPoP.JKT != rt.JKT) {
		return nil, badRequest(CodeInvalidDPoPProof, "the refresh token is bound to a DPoP key; prove possession of it")
	}
	scopes := rt.Scopes
	if s := req.Form.Get("scope"); s != "" {
		// Scope can only narrow (RFC 6749 §6), and only the access token's:
		// the new refresh token keeps the scope of the one it replaces.
		scopes = nil
		for _, x := range token.SplitScope(s) {
			if !contains(rt.Scopes, x) {
				return nil, badRequest(CodeInvalidScope, "scope "+x+" was not granted to this refresh token")
			}
			if !contains(scopes, x) {
				scopes = append(scopes, x)
			}
		}
	}
	// The family keeps what was granted; the access token may narrow it
	// (RFC 9396 §6.2), never widen it or add details to a family without.
	granted, err := authzdetails.Decode(rt.AuthorizationDetails)
	if err != nil {
		return nil, internal(err)
	}
	details, oerr := narrowDetails(granted, req.Form.Get("authorization_details"))
	if oerr != nil {
		return nil, oerr
	}
	// From the cache: disabling or deleting the user revokes the family,
	// which the rotation checks in the store (Cache).
	user, oerr := activeUser(h.Cache.User(ctx, rt.UserID))
	if oerr != nil {
		return nil, oerr
	}
	// No consent lookup: withdrawing a consent revokes its refresh
	// families (RevokeRefreshTokens), which the checks above refuse.
	id, oerr := h.newTokenID(ctx)
	if oerr != nil {
		return nil, oerr
	}
	proof := req.DPoP
	return h.userTokens(ctx, userGrant{
		client: c, user: user, id: id, scopes: scopes, refreshScopes: rt.Scopes, aud: rt.Audience,
		details: details, refreshDetails: granted,
		authTime: rt.AuthTime, acr: rt.ACR, amr: rt.AMR, proof: proof, from: rt, fromHash: hash,
	})
}

// refreshFamily returns the family of a token presented: from the cache
// when it names this token as current (familyCache says why that is
// safe), else from the store.
func (h *Handler) refreshFamily(ctx context.Context, id string, generation int64, hash string) (*sigil.RefreshFamily, *Error) {
	if f, ok := h.families.get(id); ok && f.Generation == generation && f.TokenHash == hash {
		return &f, nil
	}
	f, err := h.Store.RefreshFamily(ctx, id)
	switch {
	case errors.Is(err, sigil.ErrNotFound):
		return nil, badRequest(CodeInvalidGrant, "the refresh token is invalid or expired")
	case err != nil:
		return nil, internal(err)
	}
	return f, nil
}
