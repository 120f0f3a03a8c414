package verify

import (
	"context"
	"crypto"
	"crypto/sha256"
	"sync"

	"github.com/sigil-sts/sigil/token"
)

// ParseCache remembers tokens whose signature verified, so that a token
// presented again (an agent's actor token, a user's token exchanged for
// one tool after another) skips the signature check, about two ES256
// signings of CPU time. Everything else Verify checks (typ, iss, aud,
// times, status) runs on every call. An entry is used only while the key
// that verified it still resolves, by the same kid, to the same public
// key and algorithm: a key removed from the set stops its tokens at once.
//
// Entries are keyed by the SHA-256 of the whole token. It holds at most
// 2×size entries: two maps, the older dropped whole when the newer fills.
type ParseCache struct {
	size int

	mu        sync.Mutex
	cur, prev map[[sha256.Size]byte]parsed
}

type parsed struct {
	hdr    *token.Header
	claims *token.Claims
	pub    crypto.PublicKey
}

// NewParseCache returns a cache of about size tokens (twice that at most).
func NewParseCache(size int) *ParseCache {
	return &ParseCache{size: max(size, 1)}
}

// parse is token.Parse through the cache. The claims returned are a copy
// of the cached ones; their Extra map and nested values are shared and
// must not be modified.
func (pc *ParseCache) parse(ctx context.Context, raw string, keys token.KeySource) (*token.Header, *token.Claims, error) {
	sum := sha256.Sum256([]byte(raw))
	pc.mu.Lock()
	e, ok := pc.cur[sum]
	if !ok {
		e, ok = pc.prev[sum]
	}
	pc.mu.Unlock()
	if ok {
		pub, alg, err := keys.Lookup(ctx, e.hdr.KID)
		if eq, can := pub.(interface{ Equal(crypto.PublicKey) bool }); err == nil && alg == e.hdr.Alg && can && eq.Equal(e.pub) {
			c := *e.claims
			return e.hdr, &c, nil
		}
		// The key is gone or changed: verify afresh.
	}
	hdr, claims, err := token.Parse(ctx, raw, keys)
	if err != nil {
		return nil, nil, err
	}
	pub, _, err := keys.Lookup(ctx, hdr.KID)
	if err != nil {
		return hdr, claims, nil // verified, but not cacheable
	}
	c := *claims
	pc.mu.Lock()
	if len(pc.cur) >= pc.size || pc.cur == nil {
		pc.prev, pc.cur = pc.cur, make(map[[sha256.Size]byte]parsed)
	}
	pc.cur[sum] = parsed{hdr: hdr, claims: &c, pub: pub}
	pc.mu.Unlock()
	return hdr, claims, nil
}
