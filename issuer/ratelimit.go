package issuer

import (
	"sync"
	"time"
)

// bucket is a token bucket: it holds up to burst tokens and gains one
// every interval.
type bucket struct {
	tokens float64
	last   time.Time
}

// buckets is a set of token buckets by key, bounded in memory: past
// maxKeys it starts over, which only ever forgives, never blocks.
type buckets struct {
	burst    float64
	interval time.Duration
	m        map[string]*bucket
}

const maxLimiterKeys = 100_000

// take spends one token of key's bucket, or returns how long until one is
// available.
func (b *buckets) take(key string, now time.Time) time.Duration {
	if b.m == nil || len(b.m) >= maxLimiterKeys {
		b.m = map[string]*bucket{}
	}
	k, ok := b.m[key]
	if !ok {
		k = &bucket{tokens: b.burst, last: now}
		b.m[key] = k
	}
	k.tokens = min(b.burst, k.tokens+float64(now.Sub(k.last))/float64(b.interval))
	k.last = now
	if k.tokens < 1 {
		return time.Duration((1 - k.tokens) * float64(b.interval))
	}
	k.tokens--
	return 0
}

// signInLimiter limits sign-in attempts per client address (against one
// host guessing many accounts) and per username (against many hosts
// guessing one account). A successful sign-in refills the username's
// bucket, so its owner is not locked out by their own typos once in. The
// limits are per node; several nodes multiply them.
type signInLimiter struct {
	mu     sync.Mutex
	byHost buckets
	byUser buckets
}

func newSignInLimiter() *signInLimiter {
	return &signInLimiter{
		byHost: buckets{burst: 20, interval: 3 * time.Second},
		byUser: buckets{burst: 10, interval: 30 * time.Second},
	}
}

// take spends one attempt for host and username, or returns how long to
// wait. A refused attempt spends nothing.
func (l *signInLimiter) take(host, username string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if wait := l.byHost.take(host, now); wait > 0 {
		return wait
	}
	if wait := l.byUser.take(username, now); wait > 0 {
		l.byHost.m[host].tokens++ // give the host's token back
		return wait
	}
	return 0
}

// succeeded forgets the username's failed attempts.
func (l *signInLimiter) succeeded(username string) {
	l.mu.Lock()
	delete(l.byUser.m, username)
	l.mu.Unlock()
}
