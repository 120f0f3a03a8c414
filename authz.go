package sigil

import (
	"context"
	"time"
)

// The state of the authorization code flow (RFC 6749 §4.1, OpenID Connect
// Core §3.1): browser sessions, authorization codes, remembered consents,
// refresh tokens and pushed authorization requests. Every secret value a
// client or browser holds (session cookie, code, refresh token, request
// URI) is stored only as a keyed hash, so a copy of the database lets
// nobody sign in or redeem anything.

// Session is a browser sign-in session.
type Session struct {
	// ID is the keyed hash of the session cookie's value.
	ID     string
	UserID string
	// AuthTime is when the user last authenticated (OIDC auth_time).
	AuthTime time.Time
	// AMR lists the authentication methods used (RFC 8176 values).
	AMR       []string
	ExpiresAt time.Time
}

// AuthCode is an authorization code awaiting redemption, or redeemed.
type AuthCode struct {
	// Hash is the keyed hash of the code.
	Hash        string
	ClientID    string
	UserID      string
	RedirectURI string
	Scopes      []string
	Audience    []string
	Nonce       string
	// CodeChallenge is the PKCE S256 challenge (RFC 7636 §4.2).
	CodeChallenge string
	AuthTime      time.Time
	AMR           []string
	ACR           string
	SessionID     string
	ExpiresAt     time.Time
	// Redemption is set once the code has been redeemed.
	Redemption *Redemption
}

// Redemption records what one redemption of a code issued, decided before
// the tokens are minted, so that a replay of the code can revoke them
// (RFC 6749 §4.1.2) however the two requests interleave.
type Redemption struct {
	At time.Time
	// AccessJTI is the jti of the access token issued from the code.
	AccessJTI string
	// RefreshFamily is the family of the refresh token issued from the
	// code; empty when none was.
	RefreshFamily string
}

// Consent is what a user allowed a client: remembered so that the next
// authorization for no more than this skips the consent page.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	Audience  []string
	GrantedAt time.Time
}

// RefreshToken is one refresh token of a family: the chain of tokens that
// rotation derives from one grant (RFC 9700 §4.14.2).
type RefreshToken struct {
	// Hash is the keyed hash of the token.
	Hash     string
	FamilyID string
	ClientID string
	UserID   string
	Scopes   []string
	Audience []string
	AuthTime time.Time
	AMR      []string
	ACR      string
	// JKT binds the token to a DPoP key (RFC 9449 §5) for public clients;
	// empty when unbound.
	JKT string
	// AccessJTI is the jti of the access token issued with this refresh
	// token, revoked with the family.
	AccessJTI string
	CreatedAt time.Time
	// ExpiresAt is the idle expiry: unused until then, the token is dead.
	ExpiresAt time.Time
	// FamilyExpiresAt is the absolute expiry of the whole family.
	FamilyExpiresAt time.Time
	// UsedAt is when the token was rotated; zero while it is unspent.
	UsedAt time.Time
	// Revoked is set when the family was revoked.
	Revoked bool
}

// PushedRequest is a pushed authorization request (RFC 9126).
type PushedRequest struct {
	// Hash is the keyed hash of the request_uri.
	Hash     string
	ClientID string
	// Params are the request's parameters, form-encoded.
	Params    string
	ExpiresAt time.Time
}

// AuthzStore persists the authorization code flow's state. Lookups return
// ErrNotFound for records that are absent or past their expiry; callers
// need not check ExpiresAt themselves.
type AuthzStore interface {
	// CreateSession stores a new session; ErrConflict if the ID exists.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns a live session.
	Session(ctx context.Context, id string) (*Session, error)
	// DeleteSession ends a session; deleting an absent one is no error.
	DeleteSession(ctx context.Context, id string) error
	// DeleteSessions ends every session of a user (revocation, a new
	// password) and returns how many there were.
	DeleteSessions(ctx context.Context, userID string) (int, error)

	// CreateCode stores a new authorization code; ErrConflict if the hash
	// exists.
	CreateCode(ctx context.Context, c *AuthCode) error
	// RedeemCode marks an unexpired code of client clientID redeemed with
	// r and returns it, in one atomic step. A code redeemed before is
	// returned with its first Redemption and ErrReplay (even once it has
	// expired, until it is purged), and r is discarded. A code of another
	// client is ErrNotFound and stays as it was: presenting someone
	// else's code neither spends it nor revokes what it issued.
	RedeemCode(ctx context.Context, hash, clientID string, r Redemption) (*AuthCode, error)

	// SaveConsent stores c, replacing the user's consent for the client.
	SaveConsent(ctx context.Context, c *Consent) error
	// Consent returns the user's consent for a client.
	Consent(ctx context.Context, userID, clientID string) (*Consent, error)
	// Consents returns every consent of a user, ordered by client ID.
	Consents(ctx context.Context, userID string) ([]*Consent, error)
	// DeleteConsent forgets a consent; ErrNotFound if absent.
	DeleteConsent(ctx context.Context, userID, clientID string) error

	// CreateRefresh stores the first token of a family, or any token
	// outside rotation; ErrConflict if the hash exists, ErrReplay if the
	// family was revoked (RevokeRefreshFamily), even before it had a
	// token: a replayed authorization code revokes the family its first
	// redemption is about to create.
	CreateRefresh(ctx context.Context, t *RefreshToken) error
	// RefreshToken returns a token, spent or revoked ones included, until
	// its family's absolute expiry.
	RefreshToken(ctx context.Context, hash string) (*RefreshToken, error)
	// RotateRefresh spends the token oldHash at next.CreatedAt and stores
	// next in its family, in one atomic step. If the old token is spent,
	// revoked or past its idle expiry it returns ErrReplay and stores
	// nothing; ErrNotFound if it is absent.
	RotateRefresh(ctx context.Context, oldHash string, next *RefreshToken) error
	// RevokeRefreshFamily marks every token of a family revoked, remembers
	// the family as revoked (for CreateRefresh) until purged an hour
	// later, and returns the AccessJTIs recorded in it, so the caller can
	// revoke those too.
	RevokeRefreshFamily(ctx context.Context, familyID string) ([]string, error)
	// RevokeRefreshTokens revokes every family of one user at one client
	// (a withdrawn consent), of one user at any client (userID alone), or
	// of one client for any user (clientID alone), and returns their
	// AccessJTIs. Both empty is an error.
	RevokeRefreshTokens(ctx context.Context, userID, clientID string) ([]string, error)

	// PushRequest stores a pushed authorization request; ErrConflict if
	// the hash exists.
	PushRequest(ctx context.Context, p *PushedRequest) error
	// TakePushedRequest deletes a live pushed request of client clientID
	// and returns it: each request_uri works once. Another client's
	// request is ErrNotFound and stays.
	TakePushedRequest(ctx context.Context, hash, clientID string) (*PushedRequest, error)

	// PurgeAuthz deletes the records that expired before now (refresh
	// tokens once their family has; redeemed codes an hour after their
	// expiry, so replays are still caught; revoked-family marks an hour
	// after the revocation) and returns how many.
	PurgeAuthz(ctx context.Context, now time.Time) (int, error)
}
