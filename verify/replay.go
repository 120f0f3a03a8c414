package verify

import (
	"context"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
)

// MemoryReplay is a sigil.ReplayCache in memory, for a resource server's
// DPoP proofs: they only need to be unique per server within the proof
// window (RFC 9449 §11.1), so no shared store is involved. It holds at most
// Max entries (0 means DefaultMaxReplay); when full, it drops the entries
// that expired and, if still full, refuses new proofs rather than forget
// live ones. The zero value is ready to use.
type MemoryReplay struct {
	Max int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu        sync.Mutex
	seen      map[string]time.Time
	nextPurge int // purge expired entries when seen grows to this size
}

// DefaultMaxReplay bounds a MemoryReplay whose Max is zero.
const DefaultMaxReplay = 1 << 20

var _ sigil.ReplayCache = (*MemoryReplay)(nil)

// MarkJTI implements sigil.ReplayCache.
func (m *MemoryReplay) MarkJTI(_ context.Context, key string, exp time.Time) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	if e, ok := m.seen[key]; ok && now.Before(e) {
		return sigil.ErrReplay
	}
	// Expired entries go when the map has doubled since the last purge:
	// amortised, each insert pays for a constant number of visits.
	if len(m.seen) >= max(m.nextPurge, 1024) || len(m.seen) >= m.max() {
		m.purge(now)
		m.nextPurge = 2 * len(m.seen)
		if len(m.seen) >= m.max() {
			return sigil.ErrReplay // full of live proofs: fail closed
		}
	}
	m.seen[key] = exp
	return nil
}

// PurgeReplay implements sigil.ReplayCache.
func (m *MemoryReplay) PurgeReplay(_ context.Context, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.purge(now), nil
}

func (m *MemoryReplay) purge(now time.Time) int {
	n := 0
	for k, e := range m.seen {
		if !now.Before(e) {
			delete(m.seen, k)
			n++
		}
	}
	return n
}

func (m *MemoryReplay) max() int {
	if m.Max > 0 {
		return m.Max
	}
	return DefaultMaxReplay
}

func (m *MemoryReplay) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}
