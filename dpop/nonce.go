package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Nonces issues and checks server nonces (RFC 9449 §8) without storing
// them: a nonce is its issue time and a MAC over it, under a key every
// node derives from the master key, so any node accepts any node's nonce
// for Lifetime. A fresh nonce is issued every Lifetime/2; clients get it in
// the DPoP-Nonce header of responses.
type Nonces struct {
	// Key is the MAC key (32 bytes or more).
	Key []byte
	// Lifetime is how long a nonce is accepted; 0 means
	// DefaultNonceLifetime.
	Lifetime time.Duration
}

// DefaultNonceLifetime is Nonces.Lifetime when zero.
const DefaultNonceLifetime = 5 * time.Minute

const nonceMACSize = 16

func (n *Nonces) lifetime() time.Duration {
	if n.Lifetime > 0 {
		return n.Lifetime
	}
	return DefaultNonceLifetime
}

// Current returns the nonce to hand out at now: the same one for a
// stretch of Lifetime/2, so responses do not churn it.
func (n *Nonces) Current(now time.Time) string {
	step := n.lifetime() / 2
	return n.make(now.Truncate(step))
}

func (n *Nonces) make(t time.Time) string {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+nonceMACSize), uint64(t.Unix()))
	m := hmac.New(sha256.New, n.Key)
	m.Write(b)
	b = m.Sum(b)[:8+nonceMACSize]
	return base64.RawURLEncoding.EncodeToString(b)
}

// Valid reports whether nonce is one of ours, issued no more than
// Lifetime before now (and not after it).
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 8+nonceMACSize {
		return false
	}
	m := hmac.New(sha256.New, n.Key)
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:nonceMACSize], b[8:]) {
		return false
	}
	t := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	return !t.After(now) && now.Sub(t) <= n.lifetime()
}
