package issuer

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"slices"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/token"
)

// TypeIDToken is the typ header of ID tokens: plain JWT, which every
// OpenID Connect client accepts.
const TypeIDToken = "JWT"

// Claims each OpenID Connect scope releases (Core §5.4). Every other user
// claim is an entitlement and goes into access tokens instead.
var (
	profileClaims = []string{
		"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
		"profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
	}
	emailClaims = []string{"email", "email_verified"}
)

// identityClaims are the user's claims the granted scopes release to the
// client (ID token and UserInfo). preferred_username defaults to the
// username.
func identityClaims(u *sigil.User, scopes []string) map[string]any {
	out := map[string]any{}
	if slices.Contains(scopes, ScopeProfile) {
		for _, k := range profileClaims {
			if v, ok := u.Claims[k]; ok {
				out[k] = v
			}
		}
		if _, ok := out["preferred_username"]; !ok {
			out["preferred_username"] = u.Username
		}
	}
	if slices.Contains(scopes, ScopeEmail) {
		for _, k := range emailClaims {
			if v, ok := u.Claims[k]; ok {
				out[k] = v
			}
		}
	}
	return out
}

// entitlements are the user's claims that are neither profile nor email
// claims: groups and ABAC attributes, carried in access tokens for the
// resource servers' policies.
func entitlements(u *sigil.User) map[string]any {
	var out map[string]any
	for k, v := range u.Claims {
		if slices.Contains(profileClaims, k) || slices.Contains(emailClaims, k) {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		out[k] = v
	}
	return out
}

// idTokenGrant is what an ID token says about one authentication.
type idTokenGrant struct {
	client   *sigil.Client
	user     *sigil.User
	scopes   []string
	nonce    string
	authTime time.Time
	acr      string
	amr      []string
	// accessToken is the access token issued with it, for at_hash.
	accessToken string
	// sessionID is the browser session the user signed in with; empty
	// for ID tokens from a refresh.
	sessionID string
	// act is the delegation chain of an ID token from a token exchange,
	// whose expiry notAfter caps.
	act      *token.Actor
	notAfter time.Time
}

// issueIDToken signs an ID token (OpenID Connect Core §2, §3.1.3.6).
func (h *Handler) issueIDToken(g idTokenGrant) (string, *Error) {
	raw, _, oerr := h.signIDToken(g)
	return raw, oerr
}

// signIDToken is issueIDToken, returning the claims signed too.
func (h *Handler) signIDToken(g idTokenGrant) (string, *token.Claims, *Error) {
	k, err := h.Keys.Active(h.IDTokenAlg)
	if err != nil {
		return "", nil, internal(err)
	}
	now := h.now()
	extra := identityClaims(g.user, g.scopes)
	if g.accessToken != "" {
		extra["at_hash"] = leftHalfHash(k.Alg, g.accessToken)
	}
	if g.sessionID != "" {
		extra["sid"] = h.sid(g.sessionID)
	}
	claims := &token.Claims{
		Issuer:          h.Issuer,
		Subject:         g.user.ID,
		Audience:        token.Audience{g.client.ID},
		IssuedAt:        token.NewNumericDate(now),
		Expiry:          token.NewNumericDate(now.Add(h.accessTTL(g.client))),
		AuthTime:        token.NewNumericDate(g.authTime),
		ACR:             g.acr,
		AMR:             g.amr,
		AuthorizedParty: g.client.ID,
		Nonce:           g.nonce,
		JTI:             token.NewJTI(now),
		Act:             g.act,
		Extra:           extra,
	}
	if !g.notAfter.IsZero() && claims.Expiry.Time().After(g.notAfter) {
		claims.Expiry = token.NewNumericDate(g.notAfter)
	}
	raw, err := token.Sign(k, TypeIDToken, claims)
	if err != nil {
		return "", nil, internal(err)
	}
	return raw, claims, nil
}

// sid is the session identifier ID tokens carry (OpenID Connect
// Front-Channel Logout §3, used by RP-Initiated Logout): derived from the
// stored session id, which it does not reveal.
func (h *Handler) sid(sessionID string) string {
	return h.keys.storedHash("sid", sessionID)[:22]
}

// leftHalfHash is at_hash (Core §3.1.3.6): the left half of the hash of
// the token's ASCII form, with the hash of the ID token's algorithm,
// base64url.
func leftHalfHash(alg, value string) string {
	var f func() hash.Hash
	switch alg {
	case "ES384", "RS384", "PS384":
		f = sha512.New384
	case "ES512", "RS512", "PS512", "EdDSA": // EdDSA: SHA-512, as Ed25519 uses
		f = sha512.New
	default:
		f = sha256.New
	}
	d := f()
	d.Write([]byte(value))
	sum := d.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
