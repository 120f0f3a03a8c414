package issuer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/issuer"
)

// fakeClients is a sigil.ClientStore whose Client is a function field.
type fakeClients struct {
	client func(ctx context.Context, id string) (*sigil.Client, error)
}

func (f *fakeClients) Client(ctx context.Context, id string) (*sigil.Client, error) {
	return f.client(ctx, id)
}
func (f *fakeClients) CreateClient(context.Context, *sigil.Client) error           { return nil }
func (f *fakeClients) Clients(context.Context) ([]*sigil.Client, error)            { return nil, nil }
func (f *fakeClients) UpdateClient(context.Context, *sigil.Client) error           { return nil }
func (f *fakeClients) UpdateClientIf(context.Context, *sigil.Client, []byte) error { return nil }
func (f *fakeClients) DeleteClient(context.Context, string) error                  { return nil }

func TestClientCache(t *testing.T) {
	ctx := context.Background()

	t.Run("caches", func(t *testing.T) {
		var calls atomic.Int32
		cache := &issuer.Cache{Clients: &fakeClients{client: func(context.Context, string) (*sigil.Client, error) {
			calls.Add(1)
			return &sigil.Client{ID: "a"}, nil
		}}}
		for range 3 {
			if _, err := cache.Client(ctx, "a"); err != nil {
				t.Fatal(err)
			}
		}
		if calls.Load() != 1 {
			t.Errorf("%d store reads, want 1", calls.Load())
		}
		cache.Invalidate()
		cache.Client(ctx, "a")
		if calls.Load() != 2 {
			t.Errorf("%d store reads after Invalidate, want 2", calls.Load())
		}
	})

	t.Run("unknown-not-cached", func(t *testing.T) {
		var calls atomic.Int32
		cache := &issuer.Cache{Clients: &fakeClients{client: func(context.Context, string) (*sigil.Client, error) {
			calls.Add(1)
			return nil, sigil.ErrNotFound
		}}}
		cache.Client(ctx, "x")
		cache.Client(ctx, "x")
		if calls.Load() != 2 {
			t.Errorf("%d store reads, want 2: unknown ids must not be cached", calls.Load())
		}
	})

	t.Run("read-racing-invalidate-not-cached", func(t *testing.T) {
		// A read that started before a change and finished after its
		// Invalidate returns the old client; it must not stay cached, or
		// an old secret (or a deleted client) would work until the next
		// change.
		var calls atomic.Int32
		inRead, release := make(chan struct{}), make(chan struct{})
		cache := &issuer.Cache{Clients: &fakeClients{client: func(context.Context, string) (*sigil.Client, error) {
			if calls.Add(1) == 1 {
				close(inRead)
				<-release
			}
			return &sigil.Client{ID: "a"}, nil
		}}}
		done := make(chan struct{})
		go func() {
			defer close(done)
			cache.Client(ctx, "a")
		}()
		<-inRead
		cache.Invalidate()
		close(release)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("read never finished")
		}
		cache.Client(ctx, "a")
		if calls.Load() != 2 {
			t.Errorf("%d store reads, want 2: the stale read was cached", calls.Load())
		}
	})
}
