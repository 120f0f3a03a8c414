package keys_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/sqlite"
)

// newStore returns a real embedded store in a fresh directory.
func newStore(tb testing.TB) sigil.KeyStore {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// failingStore is a KeyStore whose every call fails with err, for the
// error paths a real store cannot be made to take on demand.
type failingStore struct{ err error }

func (f failingStore) CreateKey(context.Context, *sigil.SigningKey) error  { return f.err }
func (f failingStore) Keys(context.Context) ([]*sigil.SigningKey, error)   { return nil, f.err }
func (f failingStore) PromoteKey(context.Context, string, time.Time) error { return f.err }
func (f failingStore) DeleteKey(context.Context, string) error             { return f.err }

// states returns kid → state of the keys in store.
func states(tb testing.TB, store sigil.KeyStore) map[string]sigil.KeyState {
	tb.Helper()
	ks, err := store.Keys(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]sigil.KeyState{}
	for _, k := range ks {
		out[k.ID] = k.State
	}
	return out
}

// clock is an injected time source for Set.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
func (f failingStore) ArchivedKeys(context.Context) ([]*sigil.SigningKey, error) { return nil, f.err }
