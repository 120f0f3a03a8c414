package issuer

import (
	"context"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/verify"
)

// ClientCache keeps clients read from the store in memory, so the token
// endpoint does not query the store on every request. Watch empties it
// whenever the store's version changes, so a change made by the CLI, the
// admin API or another node is seen within one poll interval; Invalidate
// empties it at once after a change made through this process. Unknown ids
// are not cached, so ids an attacker makes up cannot fill memory.
type ClientCache struct {
	Store sigil.ClientStore

	mu  sync.RWMutex
	m   map[string]*cachedClient
	gen uint64 // incremented by Invalidate
}

type cachedClient struct {
	client *sigil.Client
	jwks   verify.KeySet // parsed JWKS for private_key_jwt
	err    error         // from parsing JWKS
}

// maxCachedClients bounds the cache; past it, the cache starts over.
const maxCachedClients = 100_000

// Client returns the client id, from memory when it can.
func (c *ClientCache) Client(ctx context.Context, id string) (*cachedClient, error) {
	c.mu.RLock()
	e, ok := c.m[id]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return e, nil
	}
	cl, err := c.Store.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	e = &cachedClient{client: cl}
	if len(cl.JWKS) > 0 {
		e.jwks, e.err = verify.ParseJWKS(cl.JWKS)
	}
	c.mu.Lock()
	// A read that overlapped an Invalidate may have seen the client as it
	// was before the change (an old secret, a deleted client): use it for
	// this request, which raced with the change anyway, but do not cache it.
	if c.gen == gen {
		if c.m == nil || len(c.m) >= maxCachedClients {
			c.m = map[string]*cachedClient{}
		}
		c.m[id] = e
	}
	c.mu.Unlock()
	return e, nil
}

// Invalidate empties the cache.
func (c *ClientCache) Invalidate() {
	c.mu.Lock()
	c.m = nil
	c.gen++
	c.mu.Unlock()
}

// Watch polls version every interval and empties the cache when the value
// changes, until ctx ends.
func (c *ClientCache) Watch(ctx context.Context, version func(context.Context) (int64, error), interval time.Duration) {
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
