package issuer

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDeviceLimiterParallel: guesses sent together from one address get
// the burst, not as many as can be in flight: the check and the spending
// are one step, taken before the (here slow) lookup.
func TestDeviceLimiterParallel(t *testing.T) {
	l := newDeviceLimiter()
	now := time.Now()
	var looked atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if l.attempt("198.51.100.7", now) > 0 {
				return // 429
			}
			time.Sleep(5 * time.Millisecond) // DeviceByUserCode on a slow store
			looked.Add(1)
		})
	}
	wg.Wait()
	if n := looked.Load(); n > 10 {
		t.Errorf("%d guesses from one address were looked up; the burst is 10", n)
	}
}

// TestDeviceLimiterManyAddresses: many addresses (an IPv6 /48 holds
// 65,536 /64s) share the node's cap, so guesses across all of them stay
// bounded; and a found code gives its attempt back.
func TestDeviceLimiterManyAddresses(t *testing.T) {
	l := newDeviceLimiter()
	now := time.Now()
	allowed := 0
	for i := range 2 * maxLimiterKeys {
		if l.attempt(fmt.Sprintf("2001:db8:%x::/64", i), now) == 0 {
			allowed++
		}
	}
	if allowed > 100 {
		t.Errorf("%d guesses from distinct addresses at one instant; the node's cap is 100", allowed)
	}
	l2 := newDeviceLimiter()
	for range 50 {
		if l2.attempt("203.0.113.9", now) > 0 {
			t.Fatal("successful entries ran out the address's attempts")
		}
		l2.refund("203.0.113.9")
	}
}
