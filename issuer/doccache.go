package issuer

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Bounds on what the document cache keeps.
const (
	// maxDocuments bounds the documents cached; past it, expired ones
	// go first, then the least recently used.
	maxDocuments = 10_000
	// maxDocumentsPerHost bounds those from one host: a host serving
	// many documents evicts its own least recently used, not other
	// hosts' documents.
	maxDocumentsPerHost = 1_000
	// maxDocumentFailures bounds the failures remembered, apart from the
	// documents: made-up URLs, each one a failure, can evict only other
	// failures, never a working client's document.
	maxDocumentFailures = 1_000
)

// docCache holds the clients of fetched documents, the recent definitive
// failures, and the fetches in flight, each by client_id URL. It never
// starts over: past its bounds it evicts one entry at a time. Safe for
// concurrent use.
type docCache struct {
	maxDocs, maxPerHost, maxFailures int

	mu       sync.Mutex
	docs     map[string]*docEntry
	perHost  map[string]int // docs entries per host
	failures map[string]*docFailure
	fetching map[string]*fetchCall
}

// docEntry is a document's client and how long it may be used.
type docEntry struct {
	host       string
	client     *cachedClient
	expires    time.Time // the end of its max-age
	staleUntil time.Time // how long it may be served while refetches fail
	retry      time.Time // after a failed refetch, served stale until then
	used       time.Time // when last served, for eviction
}

// docFailure is a definitive failure remembered until expires.
type docFailure struct {
	err     error
	expires time.Time
}

// fetchCall is a lookup's answer: a fetch that callers for the same URL
// share, or a cached answer (done already closed).
type fetchCall struct {
	done   chan struct{} // closed when client and err are set
	client *cachedClient
	err    error
}

// closedDone is the done channel of answers from the cache.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newDocCache(maxDocs, maxPerHost, maxFailures int) *docCache {
	return &docCache{maxDocs: maxDocs, maxPerHost: maxPerHost, maxFailures: maxFailures,
		docs: map[string]*docEntry{}, perHost: map[string]int{}, failures: map[string]*docFailure{}, fetching: map[string]*fetchCall{}}
}

// get returns the client of document URL id: from the cache, or fetched
// and converted by convert. Concurrent requests for one URL share one
// fetch, which does not end with the request that started it.
func (d *ClientDocuments) get(ctx context.Context, id string, now func() time.Time, convert func([]byte) (*cachedClient, error)) (*cachedClient, error) {
	d.once.Do(d.init)
	if err := d.checkDocumentURL(id); err != nil {
		return nil, docError(nil, "%v", err)
	}
	call, leader := d.cache.lookup(id, now())
	if !leader {
		select {
		case <-call.done:
			return call.client, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	host := fetchHost(id)
	body, ttl, err := d.fetch(context.WithoutCancel(ctx), id, host)
	var c *cachedClient
	if err == nil {
		c, err = convert(body)
	}
	d.cache.settle(id, host, call, c, err, now(), ttl, d.MaxStale, d.FailureTTL)
	return call.client, call.err
}

// fetchHost is the host a client_id URL is fetched from, for the
// per-host bounds: its name in lower case, without the port (one host's
// ports share its bounds).
func fetchHost(id string) string {
	u, err := url.Parse(id)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// lookup returns id's answer: the cached document or failure when there
// is a current one, else the fetch of it in flight, else a new fetch,
// which the caller (leader) must make and settle.
func (c *docCache) lookup(id string, t time.Time) (call *fetchCall, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.docs[id]; e != nil && (t.Before(e.expires) || t.Before(e.retry) && t.Before(e.staleUntil)) {
		e.used = t
		return &fetchCall{done: closedDone, client: e.client}, false
	}
	if f := c.failures[id]; f != nil && t.Before(f.expires) {
		return &fetchCall{done: closedDone, err: f.err}, false
	}
	if call := c.fetching[id]; call != nil {
		return call, false
	}
	call = &fetchCall{done: make(chan struct{})}
	c.fetching[id] = call
	return call, true
}

// settle ends the fetch call of id with its outcome at time t and
// answers everyone waiting for it:
//   - a document is cached for ttl;
//   - a failure that may pass (an *unavailableError: Sigil busy, the
//     network, the server's 5xx) is not remembered, and a copy expired
//     less than maxStale ago is served instead (stale-if-error), without
//     another fetch for failureTTL;
//   - any other failure (the document gone or unusable) drops the copy
//     and is remembered for failureTTL.
func (c *docCache) settle(id, host string, call *fetchCall, client *cachedClient, err error, t time.Time, ttl, maxStale, failureTTL time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.fetching, id)
	var unavailable *unavailableError
	switch {
	case err == nil:
		delete(c.failures, id)
		c.putDoc(id, &docEntry{host: host, client: client, expires: t.Add(ttl), staleUntil: t.Add(ttl + maxStale), used: t})
	case errors.As(err, &unavailable):
		if e := c.docs[id]; e != nil && t.Before(e.staleUntil) {
			e.used, e.retry = t, t.Add(failureTTL)
			client, err = e.client, nil
		}
	default:
		c.dropDoc(id)
		c.putFailure(id, &docFailure{err: err, expires: t.Add(failureTTL)}, t)
	}
	call.client, call.err = client, err
	close(call.done)
}

// putDoc caches e as id's document, evicting to stay within the bounds:
// the host's least recently used document when the host has its share,
// else documents past any use (stale too long) and, if that is not
// enough, the least recently used one.
func (c *docCache) putDoc(id string, e *docEntry) {
	if old := c.docs[id]; old != nil && old.host == e.host {
		c.docs[id] = e
		return
	}
	c.dropDoc(id)
	switch {
	case c.perHost[e.host] >= c.maxPerHost:
		c.evictLRU(func(o *docEntry) bool { return o.host == e.host })
	case len(c.docs) >= c.maxDocs:
		for oid, o := range c.docs {
			if !e.used.Before(o.staleUntil) {
				c.dropDoc(oid)
			}
		}
		if len(c.docs) >= c.maxDocs {
			c.evictLRU(func(*docEntry) bool { return true })
		}
	}
	c.docs[id] = e
	c.perHost[e.host]++
}

// evictLRU drops the least recently used document that match selects.
// It scans the cache: it runs only when a new document arrives at a
// bound, after a fetch, which costs far more.
func (c *docCache) evictLRU(match func(*docEntry) bool) {
	var oldest string
	var at time.Time
	for id, e := range c.docs {
		if match(e) && (oldest == "" || e.used.Before(at)) {
			oldest, at = id, e.used
		}
	}
	if oldest != "" {
		c.dropDoc(oldest)
	}
}

// dropDoc removes id's document, if cached.
func (c *docCache) dropDoc(id string) {
	e := c.docs[id]
	if e == nil {
		return
	}
	delete(c.docs, id)
	if c.perHost[e.host]--; c.perHost[e.host] <= 0 {
		delete(c.perHost, e.host)
	}
}

// putFailure remembers f for id, evicting expired failures and, if that
// is not enough, the one closest to expiry.
func (c *docCache) putFailure(id string, f *docFailure, t time.Time) {
	if _, ok := c.failures[id]; !ok && len(c.failures) >= c.maxFailures {
		for oid, o := range c.failures {
			if !t.Before(o.expires) {
				delete(c.failures, oid)
			}
		}
		if len(c.failures) >= c.maxFailures {
			var first string
			var at time.Time
			for oid, o := range c.failures {
				if first == "" || o.expires.Before(at) {
					first, at = oid, o.expires
				}
			}
			delete(c.failures, first)
		}
	}
	c.failures[id] = f
}
