package keys_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
)

// memStore is an in-memory sigil.KeyStore with the semantics the
// interface documents. Its fail field, when set, makes every call fail.
type memStore struct {
	mu   sync.Mutex
	keys []*sigil.SigningKey // oldest first
	fail error
}

var _ sigil.KeyStore = (*memStore)(nil)

func (m *memStore) CreateKey(_ context.Context, k *sigil.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.find(k.ID) != nil {
		return fmt.Errorf("key %s: %w", k.ID, sigil.ErrConflict)
	}
	c := *k
	m.keys = append(m.keys, &c)
	return nil
}

func (m *memStore) Keys(context.Context) ([]*sigil.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	out := make([]*sigil.SigningKey, len(m.keys))
	for i, k := range m.keys {
		c := *k
		out[i] = &c
	}
	return out, nil
}

func (m *memStore) PromoteKey(_ context.Context, kid string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	k := m.find(kid)
	switch {
	case k == nil:
		return sigil.ErrNotFound
	case k.State == sigil.KeyActive:
		return nil
	case k.State == sigil.KeyRetired:
		return sigil.ErrConflict
	}
	for _, o := range m.keys {
		if o.Alg == k.Alg && o.State == sigil.KeyActive {
			o.State, o.RetiredAt = sigil.KeyRetired, at
		}
	}
	k.State = sigil.KeyActive
	return nil
}

func (m *memStore) DeleteKey(_ context.Context, kid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	i := slices.IndexFunc(m.keys, func(k *sigil.SigningKey) bool { return k.ID == kid })
	if i < 0 {
		return sigil.ErrNotFound
	}
	m.keys = slices.Delete(m.keys, i, i+1)
	return nil
}

func (m *memStore) find(kid string) *sigil.SigningKey {
	for _, k := range m.keys {
		if k.ID == kid {
			return k
		}
	}
	return nil
}

// states returns kid → state of the stored keys.
func (m *memStore) states() map[string]sigil.KeyState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]sigil.KeyState{}
	for _, k := range m.keys {
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
