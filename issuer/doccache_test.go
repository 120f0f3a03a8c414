package issuer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestDocCacheBounds: past its bounds the cache evicts one entry at a
// time: a host at its share loses its own least recently used document,
// a full cache its least recently used one, and failures, kept apart,
// only other failures.
func TestDocCacheBounds(t *testing.T) {
	c := newDocCache(4, 2, 2)
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	put := func(id, host string, s int, err error) {
		t.Helper()
		call, leader := c.lookup(id, at(s))
		if !leader {
			t.Fatalf("lookup(%s) found an answer", id)
		}
		var cc *cachedClient
		if err == nil {
			cc = &cachedClient{}
		}
		c.settle(id, host, call, cc, err, at(s), time.Hour, time.Hour, time.Minute)
	}
	cached := func(ids ...string) {
		t.Helper()
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.docs) != len(ids) {
			t.Errorf("%d documents cached, want %v", len(c.docs), ids)
		}
		for _, id := range ids {
			if c.docs[id] == nil {
				t.Errorf("%s not cached, want %v", id, ids)
			}
		}
	}
	use := func(id string, s int) {
		t.Helper()
		if call, leader := c.lookup(id, at(s)); leader || call.err != nil {
			t.Fatalf("lookup(%s): not a cached document", id)
		}
	}

	put("a1", "a", 0, nil)
	put("a2", "a", 1, nil)
	use("a1", 2)
	put("a3", "a", 3, nil) // host a at its share: a2, its least recently used, goes
	cached("a1", "a3")
	put("b1", "b", 4, nil)
	put("c1", "c", 5, nil)
	use("a3", 6)
	use("b1", 7)
	use("c1", 8)
	put("d1", "d", 9, nil) // full: a1, the least recently used, goes
	cached("a3", "b1", "c1", "d1")

	for i := range 10 {
		put(fmt.Sprintf("junk%d", i), "a", 10+i, &documentError{public: "404"})
	}
	cached("a3", "b1", "c1", "d1")
	c.mu.Lock()
	if len(c.failures) != 2 || c.failures["junk9"] == nil || c.perHost["a"] != 1 {
		t.Errorf("failures %d (junk9 kept: %v), host a's documents %d; want 2, true, 1", len(c.failures), c.failures["junk9"] != nil, c.perHost["a"])
	}
	c.mu.Unlock()

	// A document gone (a definitive failure) is dropped with its count.
	put("a3", "a", 4000, &documentError{public: "404"}) // past its max-age: fetched again
	cached("b1", "c1", "d1")
	c.mu.Lock()
	if _, ok := c.perHost["a"]; ok {
		t.Errorf("host a still counts %d documents", c.perHost["a"])
	}
	c.mu.Unlock()
}

// TestSlotsPerHost: a host gets at most its share of the fetch slots,
// another host still gets one, and a wait for a slot ends at its budget.
func TestSlotsPerHost(t *testing.T) {
	s := newSlots(3, 2)
	ctx := context.Background()
	var held []func()
	for range 2 {
		release, err := s.acquire(ctx, "slow.example", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	start := time.Now()
	if _, err := s.acquire(ctx, "slow.example", 50*time.Millisecond); !errors.Is(err, errBusy) {
		t.Errorf("third slot for one host: %v, want errBusy", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the wait took %s, past its 50ms budget", d)
	}
	other, err := s.acquire(ctx, "other.example", 50*time.Millisecond)
	if err != nil {
		t.Fatalf("another host's slot: %v", err)
	}
	if _, err := s.acquire(ctx, "third.example", 50*time.Millisecond); !errors.Is(err, errBusy) {
		t.Errorf("a slot past the total: %v, want errBusy", err)
	}
	other()
	held[0]()
	release, err := s.acquire(ctx, "slow.example", 50*time.Millisecond)
	if err != nil {
		t.Fatalf("a slot given back is not taken again: %v", err)
	}
	release()
	held[1]()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.hosts) != 0 || len(s.all) != 0 {
		t.Errorf("after every release: %d hosts, %d slots held", len(s.hosts), len(s.all))
	}
}
