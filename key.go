package sigil

import (
	"context"
	"time"
)

// KeyState is the life-cycle state of a signing key.
type KeyState string

// Key states. A key is created next (published in JWKS, not signing),
// becomes active once the pre-publication delay has passed (the previous
// active key of the same algorithm becomes retired at that moment), and is
// removed once every token it signed has expired.
const (
	KeyNext    KeyState = "next"
	KeyActive  KeyState = "active"
	KeyRetired KeyState = "retired"
)

// SigningKey is a stored signing key. The private half is sealed (encrypted
// with AES-256-GCM by package keys) and never leaves the process in clear.
type SigningKey struct {
	// ID is the kid, unique and immutable.
	ID string
	// Alg is the JWS algorithm fixed for this key: ES256, EdDSA, RS256, PS256.
	Alg string
	// State is next, active or retired.
	State KeyState
	// Public is the public key in PKIX DER.
	Public []byte
	// Sealed is the encrypted PKCS #8 private key.
	Sealed []byte
	// CreatedAt is when the key was added (and published).
	CreatedAt time.Time
	// RetiredAt is when the key stopped signing; zero unless retired.
	RetiredAt time.Time
}

// KeyStore persists signing keys.
type KeyStore interface {
	// CreateKey stores a new key; ErrConflict if the kid exists.
	CreateKey(ctx context.Context, k *SigningKey) error
	// Keys returns every stored key, oldest first.
	Keys(ctx context.Context) ([]*SigningKey, error)
	// PromoteKey makes the next key kid active and, in the same
	// transaction, retires (at time at) every other active key with the
	// same algorithm. ErrNotFound if kid is absent; promoting a key that is
	// already active is a no-op, promoting a retired key ErrConflict.
	PromoteKey(ctx context.Context, kid string, at time.Time) error
	// DeleteKey removes a key from the published set; ErrNotFound if
	// absent. The store keeps it, public and sealed halves, in an archive
	// (ArchivedKeys), so audit checkpoints it signed stay verifiable.
	DeleteKey(ctx context.Context, kid string) error
	// ArchivedKeys returns the keys DeleteKey removed, oldest first.
	ArchivedKeys(ctx context.Context) ([]*SigningKey, error)
}
