package sigil

import (
	"context"
	"time"
)

// RevocationKind says what a revocation matches.
type RevocationKind string

// Revocation kinds.
const (
	// RevokeJTI revokes one token by its jti.
	RevokeJTI RevocationKind = "jti"
	// RevokeClient revokes every token issued to a client at or before the
	// revocation's cutoff.
	RevokeClient RevocationKind = "client"
	// RevokeSubject revokes every token whose sub matches, issued at or
	// before the cutoff.
	RevokeSubject RevocationKind = "subject"
)

// Revocation is a durable revocation record.
type Revocation struct {
	Kind  RevocationKind
	Value string // the jti, client_id or subject
	// Cutoff is the revocation time: tokens whose iat is at or before it
	// (whole seconds, since iat has second precision) are revoked. For
	// RevokeJTI it is informational.
	Cutoff time.Time
	// ExpiresAt is when the record may be purged: the latest exp of any
	// token it can match.
	ExpiresAt time.Time
}

// TokenRef names what a revocation check needs to know about a token.
type TokenRef struct {
	JTI      string
	ClientID string
	Subject  string
	IssuedAt time.Time
}

// RevocationStore persists revocations.
type RevocationStore interface {
	// Revoke records r. Revoking the same (kind, value) again moves the
	// cutoff and expiry forward, never back.
	Revoke(ctx context.Context, r Revocation) error
	// Revoked reports whether any stored revocation matches t.
	Revoked(ctx context.Context, t TokenRef) (bool, error)
	// PurgeRevocations deletes records that expired before now and
	// returns how many it deleted.
	PurgeRevocations(ctx context.Context, now time.Time) (int, error)
}

// ReplayCache remembers one-time identifiers (client-assertion jti, later
// DPoP proof jti) until they expire, shared by every node on the store.
type ReplayCache interface {
	// MarkJTI records key until exp. It returns ErrReplay when key is
	// already recorded and has not expired; the check and the write are one
	// atomic step.
	MarkJTI(ctx context.Context, key string, exp time.Time) error
	// PurgeReplay deletes entries that expired before now and returns how
	// many it deleted.
	PurgeReplay(ctx context.Context, now time.Time) (int, error)
}
