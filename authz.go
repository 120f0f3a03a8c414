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
	// AuthorizationDetails are the RFC 9396 details the user allowed, as
	// compact JSON (package authzdetails); empty for none.
	AuthorizationDetails string
	ExpiresAt            time.Time
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

// RefreshFamily is the refresh state of one grant: the chain of refresh
// tokens that rotation derives from it (RFC 9700 §4.14.2), kept as one
// record rotated in place. Only the family's current token is live: a
// rotation moves Generation on and replaces TokenHash, and a token of an
// earlier generation presented again is reuse.
type RefreshFamily struct {
	// ID is random and not secret: the family's tokens carry it.
	ID       string
	ClientID string
	UserID   string
	Scopes   []string
	Audience []string
	AuthTime time.Time
	AMR      []string
	ACR      string
	// JKT binds the family's tokens to a DPoP key (RFC 9449 §5) for
	// public clients; empty when unbound.
	JKT string
	// AuthorizationDetails are the RFC 9396 details granted to the family,
	// as compact JSON (package authzdetails); empty for none. A refresh
	// may narrow an access token's, never the family's.
	AuthorizationDetails string
	// Generation counts the family's rotations: 0 for its first token.
	Generation int64
	// TokenHash is the keyed hash of the current token.
	TokenHash string
	CreatedAt time.Time
	// RotatedAt is when the family last rotated; zero before it has.
	RotatedAt time.Time
	// IdleExpiresAt is when the current token dies unused.
	IdleExpiresAt time.Time
	// ExpiresAt is the absolute expiry of the whole family.
	ExpiresAt time.Time
	// Revoked is set when the family was revoked.
	Revoked bool
}

// IssuedToken is an access token issued from a refresh family: revoking
// the family revokes it too, until it expires.
type IssuedToken struct {
	JTI       string
	ExpiresAt time.Time
}

// RefreshRotation asks AuthzStore.RotateRefresh to move a family from the
// token presented to the next one.
type RefreshRotation struct {
	FamilyID string
	// Generation and TokenHash name the token presented: the family
	// rotates only while it is still the current one.
	Generation int64
	TokenHash  string
	// NextHash is the keyed hash of the new token, of generation
	// Generation+1.
	NextHash string
	At       time.Time
	// IdleExpiresAt is the new token's idle expiry; the caller caps it at
	// the family's ExpiresAt.
	IdleExpiresAt time.Time
	// Access is the access token issued with the new token.
	Access IssuedToken
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

	// CreateRefreshFamily stores a new family, whose current token is
	// f.TokenHash of generation 0, and access, the access token issued
	// with it. ErrConflict if the ID exists; ErrReplay, storing nothing,
	// if RevokeRefreshFamily revoked the ID before it existed: a replayed
	// authorization code revokes the family its first redemption is about
	// to create. A zero f.CreatedAt is set to the current time.
	CreateRefreshFamily(ctx context.Context, f *RefreshFamily, access IssuedToken) error
	// RefreshFamily returns a family, revoked ones included, until its
	// ExpiresAt; ErrNotFound after it, if it is absent, or if only a
	// revocation before its creation recorded it.
	RefreshFamily(ctx context.Context, id string) (*RefreshFamily, error)
	// RotateRefresh moves family r.FamilyID from its token r.Generation
	// (hash r.TokenHash) to the next and records r.Access, in one atomic
	// step: of concurrent rotations from one token, in any process,
	// exactly one succeeds. ErrReplay, changing nothing, if that token is
	// not the current one any more (the family rotated), the family is
	// revoked, or the token is past its idle expiry at r.At; ErrNotFound
	// if the family is absent or expired.
	RotateRefresh(ctx context.Context, r RefreshRotation) error
	// RevokeRefreshFamily marks a family revoked and returns the JTIs of
	// the unexpired access tokens issued from it, so the caller can revoke
	// those too. An ID not stored yet is recorded as revoked for an hour,
	// so CreateRefreshFamily refuses it.
	RevokeRefreshFamily(ctx context.Context, id string) ([]string, error)
	// RevokeRefreshTokens revokes every family of one user at one client
	// (a withdrawn consent), of one user at any client (userID alone), or
	// of one client for any user (clientID alone), and returns the JTIs
	// of their unexpired access tokens. Both empty is an error.
	RevokeRefreshTokens(ctx context.Context, userID, clientID string) ([]string, error)

	// PushRequest stores a pushed authorization request; ErrConflict if
	// the hash exists.
	PushRequest(ctx context.Context, p *PushedRequest) error
	// TakePushedRequest deletes a live pushed request of client clientID
	// and returns it: each request_uri works once. Another client's
	// request is ErrNotFound and stays.
	TakePushedRequest(ctx context.Context, hash, clientID string) (*PushedRequest, error)

	// PurgeAuthz deletes the records that expired before now (refresh
	// families at their ExpiresAt, however long idle, with their access
	// tokens; the access tokens of a live family at theirs; redeemed codes
	// and device authorizations an hour after their expiry, so replays are
	// still caught and late polls answered expired_token; families
	// revoked before they existed an hour after the revocation) and
	// returns how many, access tokens not counted.
	PurgeAuthz(ctx context.Context, now time.Time) (int, error)
}

// The device authorization grant (RFC 8628): a device without a browser
// shows the user a short code to enter at the verification page, and
// polls the token endpoint until the user has decided.

// DeviceState is where a device authorization stands. It only moves
// forward: pending to approved or denied, approved to redeemed.
type DeviceState string

// The device authorization states.
const (
	DevicePending  DeviceState = "pending"
	DeviceApproved DeviceState = "approved"
	DeviceDenied   DeviceState = "denied"
	DeviceRedeemed DeviceState = "redeemed"
)

// DeviceAuthorization is one device authorization request (RFC 8628
// §3.1) and what became of it. Both of its codes are stored only as
// keyed hashes.
type DeviceAuthorization struct {
	// DeviceCodeHash is the keyed hash of the device_code the client polls
	// with.
	DeviceCodeHash string
	// UserCodeHash is the keyed hash of the user_code, normalised (upper
	// case, without the dash).
	UserCodeHash string
	ClientID     string
	Scopes       []string
	Audience     []string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	// Interval is the least time between two polls (RFC 8628 §3.2); each
	// slow_down adds five seconds to it (§3.5).
	Interval time.Duration
	// LastPoll is when the client last polled; zero before it has.
	LastPoll time.Time
	State    DeviceState
	// The decision, set when the state leaves pending: who decided, and
	// (when approved) how they had signed in.
	UserID    string
	DecidedAt time.Time
	AuthTime  time.Time
	AMR       []string
	ACR       string
	SessionID string
	// Redemption is set once the approved authorization was redeemed.
	Redemption *Redemption
}

// DeviceDecision is the user's answer to a device authorization.
type DeviceDecision struct {
	// Approve allows the request; false denies it.
	Approve   bool
	UserID    string
	At        time.Time
	AuthTime  time.Time
	AMR       []string
	ACR       string
	SessionID string
}

// DevicePoll is one poll of the token endpoint with a device code.
type DevicePoll struct {
	At time.Time
	// Redemption is recorded if this poll redeems an approved
	// authorization: the tokens' identity is decided before they are
	// minted, as for codes.
	Redemption Redemption
}

// DevicePollOutcome is what a poll found.
type DevicePollOutcome int

// The outcomes of a poll.
const (
	// DevicePollPending: the user has not decided (authorization_pending).
	DevicePollPending DevicePollOutcome = iota
	// DevicePollSlowDown: the poll came sooner than Interval after the
	// last one; Interval grew by DeviceSlowDownStep (slow_down).
	DevicePollSlowDown
	// DevicePollDenied: the user denied the request (access_denied).
	DevicePollDenied
	// DevicePollExpired: the authorization expired before it was
	// redeemed (expired_token).
	DevicePollExpired
	// DevicePollRedeemed: this poll redeemed the approved authorization
	// with its Redemption; the caller issues the tokens.
	DevicePollRedeemed
)

// DeviceSlowDownStep is what each slow_down adds to the polling interval
// (RFC 8628 §3.5).
const DeviceSlowDownStep = 5 * time.Second

// Polled applies poll p to d as it was read, at now (the store's clock,
// for the expiry), and returns the record as it must be stored and the
// outcome. Both stores run it inside the transaction that read d, so the
// state machine is written once. A redeemed d is the caller's ErrReplay,
// not an outcome.
func (d DeviceAuthorization) Polled(p DevicePoll, now time.Time) (DeviceAuthorization, DevicePollOutcome) {
	next := d
	next.LastPoll = p.At
	switch {
	case d.State == DeviceDenied:
		return next, DevicePollDenied
	case !now.Before(d.ExpiresAt):
		return next, DevicePollExpired
	case d.State == DeviceApproved:
		r := p.Redemption
		next.State, next.Redemption = DeviceRedeemed, &r
		return next, DevicePollRedeemed
	case !d.LastPoll.IsZero() && p.At.Sub(d.LastPoll) < d.Interval:
		next.Interval += DeviceSlowDownStep
		return next, DevicePollSlowDown
	}
	return next, DevicePollPending
}

// DeviceStore persists device authorizations (RFC 8628). Lookups return
// ErrNotFound for records that are absent or past their expiry, except
// PollDevice, which reports expiry as an outcome.
type DeviceStore interface {
	// CreateDevice stores a new, pending device authorization;
	// ErrConflict if either of its hashes exists.
	CreateDevice(ctx context.Context, d *DeviceAuthorization) error
	// DeviceByUserCode returns the live, pending authorization with user
	// code hash userCodeHash; ErrNotFound for any other (absent, expired,
	// decided), so the verification page says nothing about which.
	DeviceByUserCode(ctx context.Context, userCodeHash string) (*DeviceAuthorization, error)
	// DecideDevice moves the live, pending authorization userCodeHash to
	// approved or denied with d, in one atomic step, and returns it:
	// of concurrent decisions exactly one succeeds. ErrNotFound if it is
	// absent, expired or decided already.
	DecideDevice(ctx context.Context, userCodeHash string, d DeviceDecision) (*DeviceAuthorization, error)
	// PollDevice applies p to the authorization deviceCodeHash of client
	// clientID (DeviceAuthorization.Polled) in one atomic step, and
	// returns the record as stored afterwards and the outcome: of
	// concurrent polls of an approved authorization, in any process,
	// exactly one redeems it. A redeemed one is returned with its first
	// Redemption and ErrReplay, changing nothing. Another client's
	// authorization is ErrNotFound and stays as it was.
	PollDevice(ctx context.Context, deviceCodeHash, clientID string, p DevicePoll) (*DeviceAuthorization, DevicePollOutcome, error)
}
