// Package secret generates client secrets and checks them against their
// stored keyed hashes.
//
// Generated secrets carry 256 bits of entropy, so a slow password hash buys
// nothing (nobody can brute-force 2^256) and would cap the token endpoint at
// tens of requests per second per core. A keyed hash (HMAC-SHA-256 under a
// key derived from the master key) is the right tool: a stolen database
// alone does not let an attacker test guesses offline, and a check costs
// well under a microsecond. Comparison is constant-time.
package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
)

// Value is a secret in clear. It cannot be compared with == (compare hashes
// through Hasher.Equal) and prints as "[REDACTED]" so it never reaches a log
// by accident. The zero value is the empty secret.
type Value struct {
	_ [0]func() // makes Value incomparable
	v string
}

// New wraps s as a secret value.
func New(s string) Value { return Value{v: s} }

// Generate returns a new secret with 256 bits from crypto/rand, encoded as
// 43 base64url characters.
func Generate() Value {
	var b [32]byte
	rand.Read(b[:]) // crypto/rand.Read never fails; it panics instead
	return Value{v: base64.RawURLEncoding.EncodeToString(b[:])}
}

// Reveal returns the secret in clear. Call it only to show the secret once
// to its owner or to send it over the wire.
func (s Value) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Value) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer without revealing the secret.
func (s Value) String() string { return "[REDACTED]" }

// GoString implements fmt.GoStringer without revealing the secret.
func (s Value) GoString() string { return "secret.Value([REDACTED])" }

// Hasher computes keyed hashes of secrets. It is safe for concurrent use.
type Hasher struct {
	key []byte
}

// NewHasher returns a Hasher keyed with key, which must be at least 32 bytes
// (derive it from the master key).
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < 32 {
		return nil, errors.New("secret: hash key shorter than 32 bytes")
	}
	return &Hasher{key: append([]byte(nil), key...)}, nil
}

// Hash returns HMAC-SHA-256(key, s).
func (h *Hasher) Hash(s Value) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(s.v))
	return m.Sum(nil)
}

// Equal reports, in time independent of the contents, whether presented
// hashes to stored. An empty stored hash never matches.
func (h *Hasher) Equal(stored []byte, presented Value) bool {
	got := h.Hash(presented)
	ok := subtle.ConstantTimeCompare(stored, got) == 1
	return ok && len(stored) > 0
}
