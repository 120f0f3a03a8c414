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
// maxLimiterKeys keys it starts over, which only ever forgives, never blocks.
type buckets struct {
	burst    float64
	interval time.Duration
	m        map[string]*bucket
}

const maxLimiterKeys = 100_000

// peek returns how long until key's bucket holds a token, spending none.
func (b *buckets) peek(key string, now time.Time) time.Duration {
	k, ok := b.m[key]
	if !ok {
		return 0
	}
	tokens := min(b.burst, k.tokens+float64(now.Sub(k.last))/float64(b.interval))
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(b.interval))
}

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

// signInLimiter limits failed sign-ins per client address (against one
// host guessing many accounts) and per username (against many hosts
// guessing one account). Only failures spend: people signing in from
// behind one proxy or NAT do not use up each other's attempts. A browser
// that signed in as a user before (it holds that user's device cookie) is
// exempt from the username's limit, so nobody can lock a user out of
// their own devices by failing on purpose (OWASP's device cookies). The
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

// wait says how long the next attempt for host and username must wait,
// zero when it may go ahead; knownDevice skips the username's limit.
func (l *signInLimiter) wait(host, username string, knownDevice bool, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.byHost.peek(host, now)
	if !knownDevice {
		w = max(w, l.byUser.peek(username, now))
	}
	return w
}

// failed spends one attempt of host's and username's buckets.
func (l *signInLimiter) failed(host, username string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byHost.take(host, now)
	l.byUser.take(username, now)
}
