package issuer

import (
	"context"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/verify"
)

// Cache keeps clients and users read from the store in memory, so the
// token endpoint does not query the store for them on every request.
// Watch empties it whenever the store's version changes (every write to
// clients or users moves it), so a change made by the CLI, the admin API
// or another node is seen within one poll interval; Invalidate empties it
// at once after a change made through this process. Unknown ids are not
// cached, so ids an attacker makes up cannot fill memory.
//
// A user cached a poll interval too long cannot outlive what matters:
// disabling or deleting a user revokes their refresh families, which
// the store checks on every rotation. Only claim changes wait for the
// poll, as client changes do.
type Cache struct {
	Clients sigil.ClientStore
	Users   sigil.UserStore

	mu      sync.RWMutex
	clients map[string]*cachedClient
	users   map[string]*sigil.User
	gen     uint64 // incremented by Invalidate
}

type cachedClient struct {
	client *sigil.Client
	jwks   verify.KeySet // parsed JWKS for private_key_jwt
	err    error         // from parsing JWKS
}

// maxCached bounds each of the cache's maps; past it, the map starts
// over.
const maxCached = 100_000

// Client returns the client id, from memory when it can.
func (c *Cache) Client(ctx context.Context, id string) (*cachedClient, error) {
	return cached(c, &c.clients, id, func() (*cachedClient, error) {
		cl, err := c.Clients.Client(ctx, id)
		if err != nil {
			return nil, err
		}
		e := &cachedClient{client: cl}
		if len(cl.JWKS) > 0 {
			e.jwks, e.err = verify.ParseJWKS(cl.JWKS)
		}
		return e, nil
	})
}

// User returns the user id, from memory when it can. The user is shared:
// callers must not modify it.
func (c *Cache) User(ctx context.Context, id string) (*sigil.User, error) {
	return cached(c, &c.users, id, func() (*sigil.User, error) { return c.Users.User(ctx, id) })
}

// cached returns m's entry for id, or load's result, which it keeps.
func cached[T any](c *Cache, m *map[string]T, id string, load func() (T, error)) (T, error) {
	c.mu.RLock()
	e, ok := (*m)[id]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return e, nil
	}
	e, err := load()
	if err != nil {
		return e, err
	}
	c.mu.Lock()
	// A read that overlapped an Invalidate may have seen the record as it
	// was before the change (an old secret, a deleted client): use it for
	// this request, which raced with the change anyway, but do not cache it.
	if c.gen == gen {
		if *m == nil || len(*m) >= maxCached {
			*m = map[string]T{}
		}
		(*m)[id] = e
	}
	c.mu.Unlock()
	return e, nil
}

// Invalidate empties the cache.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.clients, c.users = nil, nil
	c.gen++
	c.mu.Unlock()
}

// Watch polls version every interval and empties the cache when the value
// changes, until ctx ends.
func (c *Cache) Watch(ctx context.Context, version func(context.Context) (int64, error), interval time.Duration) {
	last, _ := version(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			v, err := version(ctx)
			if err == nil && v != last {
				last = v
				c.Invalidate()
			}
		}
	}
}
