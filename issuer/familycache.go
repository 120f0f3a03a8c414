package issuer

import (
	"sync"

	"github.com/sigil-sts/sigil"
)

// familyCache remembers the refresh families this process last rotated
// or created, as it left them, so that the next refresh of a family
// skips the store read: under the load test's writes that read cost a
// quarter of a refresh's CPU time (issuer's BenchmarkRefreshHandlerParallel
// profile; figures in BENCHMARKS.md).
//
// The cache decides nothing. An entry is used only when the token
// presented is the one it names as current, and the rotation that follows
// is conditional, in the store, on that token still being current and
// the family live and unrevoked; a family changed elsewhere (another
// node rotated it, sigil revoke revoked it) makes the rotation fail, and
// the handler then reads the store to find out why. What an entry keeps
// that the store could change behind it (generation, token hash, idle
// expiry, revocation) is exactly what that condition checks; the rest of
// a family never changes.
//
// It holds at most 2×familyCacheSize entries: two maps, the older dropped
// whole when the newer fills, so recently used families stay.
type familyCache struct {
	mu        sync.Mutex
	cur, prev map[string]sigil.RefreshFamily
}

const familyCacheSize = 1 << 16

// get returns the cached family id, if any.
func (c *familyCache) get(id string) (sigil.RefreshFamily, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.cur[id]
	if !ok {
		f, ok = c.prev[id]
	}
	return f, ok
}

// put caches f as its current state.
func (c *familyCache) put(f sigil.RefreshFamily) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= familyCacheSize || c.cur == nil {
		c.prev, c.cur = c.cur, make(map[string]sigil.RefreshFamily)
	}
	c.cur[f.ID] = f
	delete(c.prev, f.ID)
}

// forget drops family id.
func (c *familyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cur, id)
	delete(c.prev, id)
}
