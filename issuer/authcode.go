package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/revocation"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// pkceVerifier is a code_verifier (RFC 7636 §4.1).
var pkceVerifier = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// authorizationCode is the authorization code grant (RFC 6749 §4.1.3)
// with PKCE (RFC 7636 §4.6) and OpenID Connect's ID token.
type authorizationCode struct{ h *Handler }

func (authorizationCode) Type() string { return sigil.GrantAuthorizationCode }

func (g authorizationCode) Exchange(ctx context.Context, req *TokenRequest) (*TokenResponse, *Error) {
	h, c, f := g.h, req.Client, req.Form
	code, verifier := f.Get("code"), f.Get("code_verifier")
	switch {
	case code == "":
		return nil, invalidRequest("code is required")
	case verifier == "":
		return nil, invalidRequest("code_verifier is required (PKCE)")
	case !pkceVerifier.MatchString(verifier):
		return nil, invalidRequest("code_verifier must be 43 to 128 unreserved characters")
	}
	// The token's identity is decided, and recorded with the redemption,
	// before anything is minted: a replay of the code, however close,
	// finds what to revoke.
	id, oerr := h.newTokenID(ctx)
	if oerr != nil {
		return nil, oerr
	}
	family := newFamilyID()
	rec, err := h.Store.RedeemCode(ctx, h.keys.storedHash("code", code), c.ID, sigil.Redemption{At: h.now(), AccessJTI: id.jti, RefreshFamily: family})
	switch {
	case errors.Is(err, sigil.ErrNotFound):
		return nil, badRequest(CodeInvalidGrant, "the code is invalid or expired")
	case errors.Is(err, sigil.ErrReplay):
		// RFC 6749 §4.1.2: a code used twice revokes what it issued.
		h.codeReplayed(ctx, c, rec)
		return nil, badRequest(CodeInvalidGrant, "the code was already used; the tokens issued from it are revoked")
	case err != nil:
		return nil, internal(err)
	}
	if rec.ClientID != c.ID { // the store looked only among c's codes
		return nil, internal(errors.New("RedeemCode returned another client's code"))
	}
	if ru := f.Get("redirect_uri"); ru != rec.RedirectURI && (ru != "" || !slices.Equal(c.RedirectURIs, []string{rec.RedirectURI})) {
		return nil, badRequest(CodeInvalidGrant, "redirect_uri does not match the authorization request")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(rec.CodeChallenge)) != 1 {
		return nil, badRequest(CodeInvalidGrant, "code_verifier does not match the code_challenge")
	}
	granted, err := authzdetails.Decode(rec.AuthorizationDetails)
	if err != nil {
		return nil, internal(err)
	}
	// RFC 9396 §6.1: the token request may narrow what the user allowed;
	// the refresh family keeps all of it.
	details, oerr := narrowDetails(granted, f.Get("authorization_details"))
	if oerr != nil {
		return nil, oerr
	}
	user, oerr := activeUser(h.Store.User(ctx, rec.UserID))
	if oerr != nil {
		return nil, oerr
	}
	return h.userTokens(ctx, userGrant{
		client: c, user: user, id: id, family: family, scopes: rec.Scopes, aud: rec.Audience,
		nonce: rec.Nonce, authTime: rec.AuthTime, acr: rec.ACR, amr: rec.AMR, proof: req.DPoP, sessionID: rec.SessionID,
		details: details, refreshDetails: granted,
	})
}

// activeUser checks the user a grant is for, as loaded; a deleted or
// disabled user's grants are dead.
func activeUser(u *sigil.User, err error) (*sigil.User, *Error) {
	if errors.Is(err, sigil.ErrNotFound) {
		return nil, badRequest(CodeInvalidGrant, "the user no longer exists")
	}
	if err != nil {
		return nil, internal(err)
	}
	if u.Disabled {
		return nil, badRequest(CodeInvalidGrant, "the user is disabled")
	}
	return u, nil
}

// userGrant is what the code and refresh grants issue tokens for.
type userGrant struct {
	client *sigil.Client
	user   *sigil.User
	id     tokenID
	// family is the refresh family a new refresh token starts; unused
	// when from is set.
	family string
	scopes []string
	// refreshScopes are the new refresh token's scopes when they differ
	// from the access token's (a refresh that narrowed the scope).
	refreshScopes []string
	aud           []string
	nonce         string
	authTime      time.Time
	acr           string
	amr           []string
	proof         *dpop.Proof
	// details are the access token's authorization details (RFC 9396),
	// refreshDetails the refresh family's: what was granted, which a
	// narrowing request does not change.
	details, refreshDetails authzdetails.List
	// sessionID is the browser session of a code grant, for the ID
	// token's sid.
	sessionID string
	// from is the refresh family being rotated, as read when its token
	// was presented; nil for a new family.
	from *sigil.RefreshFamily
	// fromHash is the keyed hash of the token presented from it.
	fromHash string
}

// userTokens issues the tokens of a user grant: the access token, an ID
// token when openid was granted, and a refresh token when offline_access
// was and the client may refresh.
func (h *Handler) userTokens(ctx context.Context, g userGrant) (*TokenResponse, *Error) {
	resp, oerr := h.mintAccessToken(g.client, accessGrant{
		id: g.id, sub: g.user.ID, scopes: g.scopes, aud: g.aud, proof: g.proof,
		extra: entitlements(g.user), authTime: g.authTime, mayAct: userMayAct(g.user), details: g.details,
	})
	if oerr != nil {
		return nil, oerr
	}
	if slices.Contains(g.scopes, ScopeOpenID) {
		var idClaims *token.Claims
		resp.IDToken, idClaims, oerr = h.signIDToken(idTokenGrant{
			client: g.client, user: g.user, scopes: g.scopes, nonce: g.nonce, authTime: g.authTime,
			acr: g.acr, amr: g.amr, accessToken: resp.AccessToken, sessionID: g.sessionID,
		})
		if oerr != nil {
			return nil, oerr
		}
		resp.idTokenJTI = idClaims.JTI
	}
	refreshScopes := g.scopes
	if g.refreshScopes != nil {
		refreshScopes = g.refreshScopes
	}
	if !slices.Contains(refreshScopes, ScopeOfflineAccess) || !g.client.HasGrant(sigil.GrantRefreshToken) {
		return resp, nil
	}
	now := h.now()
	// Recorded until no verifier accepts it any more: exp plus the leeway
	// and a minute for clock steps, as revokeJTIs sizes its records.
	access := sigil.IssuedToken{JTI: g.id.jti, ExpiresAt: time.Unix(int64(resp.claims.Expiry), 0).Add(h.leeway() + time.Minute)}
	var (
		value    string
		err      error
		f        *sigil.RefreshFamily
		rotation sigil.RefreshRotation
	)
	if g.from == nil {
		f = &sigil.RefreshFamily{
			ID: g.family, ClientID: g.client.ID, UserID: g.user.ID, Scopes: refreshScopes, Audience: g.aud,
			AuthTime: g.authTime, AMR: g.amr, ACR: g.acr, CreatedAt: now, ExpiresAt: now.Add(h.RefreshTokenMaxTTL),
			AuthorizationDetails: g.refreshDetails.Encode(),
		}
		f.IdleExpiresAt = earlier(now.Add(h.RefreshTokenIdleTTL), f.ExpiresAt)
		if g.client.AuthMethod == sigil.AuthNone && g.proof != nil {
			// RFC 9449 §5: a public client's refresh token is bound to its
			// DPoP key.
			f.JKT = g.proof.JKT
		}
		value = h.keys.newRefreshToken(f.ID, 0)
		f.TokenHash = h.keys.storedHash("refresh", value)
		err = h.Store.CreateRefreshFamily(ctx, f, access)
	} else {
		from := g.from
		value = h.keys.newRefreshToken(from.ID, from.Generation+1)
		rotation = sigil.RefreshRotation{
			FamilyID: from.ID, Generation: from.Generation, TokenHash: g.fromHash,
			NextHash: h.keys.storedHash("refresh", value), At: now,
			IdleExpiresAt: earlier(now.Add(h.RefreshTokenIdleTTL), from.ExpiresAt), Access: access,
		}
		err = h.Store.RotateRefresh(ctx, rotation)
	}
	switch {
	case errors.Is(err, sigil.ErrReplay) && g.from == nil:
		// The family was revoked before it was stored: the code was
		// replayed while this redemption ran (codeReplayed).
		return nil, badRequest(CodeInvalidGrant, "the code was used twice; the tokens issued from it are revoked")
	case errors.Is(err, sigil.ErrReplay):
		return nil, h.rotationRefused(ctx, g)
	case errors.Is(err, sigil.ErrNotFound):
		// The family expired, or its user was deleted, meanwhile.
		if g.from != nil {
			h.families.forget(g.from.ID)
		}
		return nil, badRequest(CodeInvalidGrant, "the refresh token expired")
	case err != nil:
		return nil, internal(err)
	}
	if g.from == nil {
		if oerr := h.checkNewFamily(ctx, g); oerr != nil {
			return nil, oerr
		}
		h.families.put(*f)
	} else {
		next := *g.from
		next.Generation, next.TokenHash, next.RotatedAt, next.IdleExpiresAt = rotation.Generation+1, rotation.NextHash, rotation.At, rotation.IdleExpiresAt
		h.families.put(next)
	}
	resp.RefreshToken = value
	return resp, nil
}

// rotationRefused answers a rotation the store refused (ErrReplay): the
// token presented was current when read, or cached, but is not any more.
// A family revoked meanwhile is refused as revoked; otherwise another
// request, here or on another node, rotated from the same token first,
// which is reuse (RFC 9700 §4.14.2) and revokes the family.
func (h *Handler) rotationRefused(ctx context.Context, g userGrant) *Error {
	h.families.forget(g.from.ID)
	f, err := h.Store.RefreshFamily(ctx, g.from.ID)
	switch {
	case errors.Is(err, sigil.ErrNotFound):
		return badRequest(CodeInvalidGrant, "the refresh token expired")
	case err != nil:
		return internal(err)
	case f.Revoked:
		return badRequest(CodeInvalidGrant, "the refresh token was revoked")
	case f.Generation == g.from.Generation && !h.now().Before(f.IdleExpiresAt):
		return badRequest(CodeInvalidGrant, "the refresh token expired")
	case f.Generation < g.from.Generation || (f.Generation == g.from.Generation && f.TokenHash != g.fromHash):
		// The store is behind the token (restored from a backup): not
		// evidence of theft, as refreshToken.Exchange judges it too.
		return badRequest(CodeInvalidGrant, "the refresh token is invalid or expired")
	}
	h.refreshReplayed(ctx, g.client, g.from.ID, "concurrent use")
	return badRequest(CodeInvalidGrant, "the refresh token was already used; its family is revoked")
}

// leeway is the clock skew the handler's verifiers tolerate.
func (h *Handler) leeway() time.Duration {
	if h.Leeway > 0 {
		return h.Leeway
	}
	return verify.DefaultLeeway
}

// earlier returns the earlier of two times.
func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// checkNewFamily closes the window between a code's redemption and its
// refresh token's creation: a revocation of the user or client (sigil
// revoke), or a withdrawn consent, that ran in between revoked every
// family but this one, which did not exist yet. The revocation record is
// written before the families are revoked, so one of the two always sees
// the other; the family is revoked here if the check finds it.
func (h *Handler) checkNewFamily(ctx context.Context, g userGrant) *Error {
	revoked, err := h.Store.Revoked(ctx, sigil.TokenRef{ClientID: g.client.ID, Subject: g.user.ID, IssuedAt: g.id.iat})
	if err != nil {
		return internal(err)
	}
	if !revoked {
		_, err := h.Store.Consent(ctx, g.user.ID, g.client.ID)
		switch {
		case errors.Is(err, sigil.ErrNotFound):
			revoked = true
		case err != nil:
			return internal(err)
		}
	}
	if !revoked {
		return nil
	}
	jtis, err := h.Store.RevokeRefreshFamily(ctx, g.family)
	if err != nil {
		return internal(err)
	}
	h.revokeJTIs(ctx, append(jtis, g.id.jti))
	return badRequest(CodeInvalidGrant, "the grant was revoked while the code was redeemed")
}

// codeReplayed revokes what the first redemption of a code issued and
// records the replay.
func (h *Handler) codeReplayed(ctx context.Context, c *sigil.Client, rec *sigil.AuthCode) {
	jtis := []string{rec.Redemption.AccessJTI}
	if rec.Redemption.RefreshFamily != "" {
		more, err := h.Store.RevokeRefreshFamily(ctx, rec.Redemption.RefreshFamily)
		if err != nil {
			h.Log.ErrorContext(ctx, "code replay: refresh family not revoked", "err", err)
		}
		jtis = append(jtis, more...)
	}
	h.revokeJTIs(ctx, jtis)
	if err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: audit.CodeReplayed, Outcome: audit.Failure, Reason: CodeInvalidGrant, ClientID: c.ID,
		Subject: rec.UserID, JTI: rec.Redemption.AccessJTI,
	})); err != nil {
		h.Log.ErrorContext(ctx, "audit: code replay not recorded", "err", err)
	}
}

// refreshReplayed revokes a refresh token family after reuse of one of
// its spent tokens (RFC 9700 §4.14.2) and records it.
func (h *Handler) refreshReplayed(ctx context.Context, c *sigil.Client, family, why string) {
	h.families.forget(family)
	jtis, err := h.Store.RevokeRefreshFamily(ctx, family)
	if err != nil {
		h.Log.ErrorContext(ctx, "refresh replay: family not revoked", "err", err)
	}
	h.revokeJTIs(ctx, jtis)
	if err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: audit.RefreshReplayed, Outcome: audit.Failure, Reason: CodeInvalidGrant, ClientID: c.ID,
		Detail: map[string]string{"why": why, "revoked_access_tokens": strconv.Itoa(len(jtis))},
	})); err != nil {
		h.Log.ErrorContext(ctx, "audit: refresh replay not recorded", "err", err)
	}
}

// revokeJTIs revokes access tokens by jti: a revocation record for
// introspection and the flipped status list bit for resource servers; and
// then the tokens exchanged from them, at any depth, which takes
// revocation.DefaultSettle at least. These are a grant's tokens revoked
// after a replay or at the user's request: rare enough to wait for.
// Errors are logged: the caller is already refusing a request.
//
// The work outlives the request: the client may hang up while the chain
// settles (a thief replaying a code need not wait for the answer), and
// nothing would ever retry it, the code being spent or the family gone.
func (h *Handler) revokeJTIs(ctx context.Context, jtis []string) {
	jtis = slices.DeleteFunc(slices.Clone(jtis), func(j string) bool { return j == "" })
	if len(jtis) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	r := h.revoker()
	if _, err := r.JTIs(ctx, jtis); err != nil {
		h.Log.ErrorContext(ctx, "revocation not stored", "err", err)
	}
	if _, err := r.Chain(ctx, jtis); err != nil {
		h.Log.ErrorContext(ctx, "tokens exchanged from revoked ones not revoked", "err", err)
	}
}

// revoker revokes tokens for this issuer: records that outlive any
// access token issued before now, and this process's audit queue flushed
// before each search for exchanged tokens.
func (h *Handler) revoker() *revocation.Revoker {
	r := &revocation.Revoker{Store: h.Store, Lifetime: h.MaxAccessTokenTTL + h.leeway() + time.Minute, Now: h.Now}
	if f, ok := h.Audit.(interface{ Flush(context.Context) error }); ok {
		r.Flush = f.Flush
	}
	return r
}
