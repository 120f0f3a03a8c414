package statuslist_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/store/sqlite"
	"github.com/sigil-sts/sigil/token"
)

// The helpers below are shared by the allocator, invalidation and
// publisher tests.

// t0 is the start of every injected clock. It has a sub-millisecond part,
// so that a lease's Since truncated to the millisecond differs from it.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

const baseURI = "https://sigil.example/statuslists/"

// clock is an injected time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

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

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// openStore opens a real SQLite store in a fresh directory, closed at the
// end of the test.
func openStore(tb testing.TB) *sqlite.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "store"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// newAllocator returns an allocator of lists of size entries over st,
// leasing for a minute with five minutes of retention and two of
// quarantine, on clk.
func newAllocator(st sigil.StatusListStore, holder string, size int, clk *clock) *statuslist.Allocator {
	return &statuslist.Allocator{
		Store: st, Holder: holder, BaseURI: baseURI, Size: size,
		Lease: time.Minute, Retention: 5 * time.Minute, Quarantine: 2 * time.Minute,
		Now: clk.Now,
	}
}

func allocate(tb testing.TB, a *statuslist.Allocator) statuslist.Entry {
	tb.Helper()
	e, err := a.Allocate(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// list returns list id as stored, with its non-VALID entries.
func list(tb testing.TB, st sigil.StatusListStore, id uint32) (sigil.StatusList, []sigil.StatusEntry) {
	tb.Helper()
	l, entries, err := st.StatusList(context.Background(), int64(id))
	if err != nil {
		tb.Fatal(err)
	}
	return l, entries
}

// invalidate runs statuslist.Invalidate and checks that it counted want
// identifiers.
func invalidate(tb testing.TB, st sigil.StatusListStore, want int, jtis ...string) {
	tb.Helper()
	n, err := statuslist.Invalidate(context.Background(), st, jtis...)
	if err != nil {
		tb.Fatal(err)
	}
	if n != want {
		tb.Errorf("Invalidate counted %d identifiers, want %d", n, want)
	}
}

// invalid returns INVALID entries at idx, as StatusList reports them.
func invalid(idx ...uint32) []sigil.StatusEntry {
	var es []sigil.StatusEntry
	for _, i := range idx {
		es = append(es, sigil.StatusEntry{Index: i, Status: sigil.StatusInvalid})
	}
	return es
}

// TestAllocateWithinLease: a lease hands out distinct indexes below Size,
// with the list's URI, until half the list is used; the next entry comes
// from another list. The size is not a multiple of 8 or 64, so an index
// drawn from the rounded-up bitmap would show.
func TestAllocateWithinLease(t *testing.T) {
	const size = 1000
	st := openStore(t)
	a := newAllocator(st, "node-a", size, newClock())
	seen := map[uint32]bool{}
	first := allocate(t, a)
	for i := range size / 2 {
		e := first
		if i > 0 {
			e = allocate(t, a)
		}
		if e.List != first.List {
			t.Fatalf("entry %d is in list %d, want list %d until half of it is used", i, e.List, first.List)
		}
		if e.Index >= size {
			t.Fatalf("entry %d: index %d, want < %d", i, e.Index, size)
		}
		if seen[e.Index] {
			t.Fatalf("entry %d: index %d handed out twice in one lease", i, e.Index)
		}
		seen[e.Index] = true
		if want := baseURI + strconv.FormatUint(uint64(e.List), 10); e.URI != want {
			t.Fatalf("entry %d: URI %q, want %q", i, e.URI, want)
		}
	}
	next := allocate(t, a)
	if next.List == first.List {
		t.Fatalf("entry %d is still in list %d: want a new list past half of %d entries", size/2, first.List, size)
	}
	if want := baseURI + strconv.FormatUint(uint64(next.List), 10); next.URI != want {
		t.Fatalf("URI %q, want %q", next.URI, want)
	}
}

// TestAllocateSwitchesAtUsableUntil: the allocator takes a new list once
// its lease's UsableUntil is reached, not before.
func TestAllocateSwitchesAtUsableUntil(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	a := newAllocator(st, "node-a", 1024, clk)
	first := allocate(t, a)
	l, _ := list(t, st, first.List)

	clk.Set(l.UsableUntil.Add(-time.Nanosecond))
	if e := allocate(t, a); e.List != first.List {
		t.Fatalf("1ns before UsableUntil: list %d, want %d", e.List, first.List)
	}
	clk.Set(l.UsableUntil)
	e := allocate(t, a)
	if e.List == first.List {
		t.Fatalf("at UsableUntil: still list %d, want a new one", e.List)
	}
	nl, _ := list(t, st, e.List)
	if !nl.Since.Equal(l.UsableUntil) || nl.Holder != "node-a" {
		t.Errorf("new lease: Since %v holder %q, want %v and node-a", nl.Since, nl.Holder, l.UsableUntil)
	}
}

// TestAllocatorsDoNotShareLists: two servers allocating concurrently from
// one store never get the same list, and every list records its holder.
func TestAllocatorsDoNotShareLists(t *testing.T) {
	const (
		size    = 16 // 8 entries per lease
		workers = 4  // goroutines per allocator
		each    = 40 // entries per goroutine
	)
	st := openStore(t)
	clk := newClock()
	holders := []string{"node-a", "node-b"}
	var (
		mu    sync.Mutex
		owner = map[uint32]string{} // list -> holder
		taken = map[[2]uint32]bool{}
		wg    sync.WaitGroup
	)
	for _, h := range holders {
		a := newAllocator(st, h, size, clk)
		for range workers {
			wg.Go(func() {
				for range each {
					e, err := a.Allocate(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if o, ok := owner[e.List]; ok && o != h {
						t.Errorf("list %d allocated from by %s and %s", e.List, o, h)
					}
					owner[e.List] = h
					if k := [2]uint32{e.List, e.Index}; taken[k] {
						t.Errorf("entry %d of list %d handed out twice", e.Index, e.List)
					} else {
						taken[k] = true
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	lists, err := st.StatusLists(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Each allocator filled workers*each/(size/2) leases.
	if want := len(holders) * workers * each / (size / 2); len(lists) != want {
		t.Errorf("%d lists leased, want %d", len(lists), want)
	}
	for _, l := range lists {
		if want := owner[uint32(l.ID)]; l.Holder != want || l.Generation != 1 {
			t.Errorf("list %d: holder %q generation %d, want %q and 1", l.ID, l.Holder, l.Generation, want)
		}
	}
}

// TestLeaseTimes: the lease in the store begins at the allocation time
// truncated to the millisecond, as jti times are, so that a token issued
// after Allocate is never taken for an earlier generation's; it ends
// Lease later, and the list may be recycled Retention after that.
func TestLeaseTimes(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	a := newAllocator(st, "node-a", 1024, clk)
	e := allocate(t, a)
	issued := clk.Now() // the issuer reads its clock after Allocate
	l, _ := list(t, st, e.List)
	want := sigil.StatusList{
		ID: int64(e.List), Size: 1024, Generation: 1, Holder: "node-a",
		Since:        t0.Truncate(time.Millisecond),
		UsableUntil:  t0.Truncate(time.Millisecond).Add(a.Lease),
		RecycleAfter: t0.Truncate(time.Millisecond).Add(a.Lease + a.Retention),
		Version:      l.Version,
	}
	if diff := cmp.Diff(want, l); diff != "" {
		t.Errorf("stored lease (-want +got):\n%s", diff)
	}
	jtiTime, _, _, ok := token.StatusOfJTI(token.NewStatusJTI(issued, e.List, e.Index))
	if !ok || jtiTime.Before(l.Since) {
		t.Errorf("a token issued after Allocate has jti time %v, before the lease's Since %v", jtiTime, l.Since)
	}
}

// TestLeaseSinceAfterClockStepsBack: when the wall clock steps back (an
// NTP correction) between two leases, tokens issued under the second must
// still not predate its Since, or their jtis revoke nothing. (An earlier
// Allocator kept Since from going back, and so moved it past the tokens.)
func TestLeaseSinceAfterClockStepsBack(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	a := newAllocator(st, "node-a", 2, clk) // one entry per lease
	clk.Advance(time.Second)
	allocate(t, a)
	clk.Set(t0) // the clock steps back a second
	e := allocate(t, a)
	issued := clk.Now()
	l, _ := list(t, st, e.List)
	if jtiTime, _, _, _ := token.StatusOfJTI(token.NewStatusJTI(issued, e.List, e.Index)); jtiTime.Before(l.Since) {
		t.Errorf("a token issued after Allocate at %v predates its lease's Since %v", jtiTime, l.Since)
	}
	invalidate(t, st, 1, token.NewStatusJTI(issued, e.List, e.Index))
	if _, entries := list(t, st, e.List); !cmp.Equal(entries, invalid(e.Index)) {
		t.Errorf("revoking the token by its jti left list %d with entries %v, want %v", e.List, entries, invalid(e.Index))
	}
}

// TestAllocateNeedsRetention: without a retention the allocator could not
// say when a list may be recycled, so it leases nothing.
func TestAllocateNeedsRetention(t *testing.T) {
	for _, r := range []time.Duration{0, -time.Minute} {
		t.Run(r.String(), func(t *testing.T) {
			st := openStore(t)
			a := newAllocator(st, "node-a", 1024, newClock())
			a.Retention = r
			if e, err := a.Allocate(context.Background()); err == nil {
				t.Fatalf("Allocate with retention %v = %+v, want an error", r, e)
			}
			if lists, err := st.StatusLists(context.Background()); err != nil || len(lists) != 0 {
				t.Errorf("lists after the failed Allocate: %v, %v; want none", lists, err)
			}
		})
	}
}

// TestAllocateRecycles: a list is leased again only after RecycleAfter; a
// list with revoked entries is first cleared and quarantined; the new
// generation starts all VALID, and an old generation's jti does not
// reach it.
func TestAllocateRecycles(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := newClock()
	a := newAllocator(st, "node-a", 8, clk)

	// Generation 1 of the first list: one token, revoked.
	old := allocate(t, a)
	oldJTI := token.NewStatusJTI(clk.Now(), old.List, old.Index)
	invalidate(t, st, 1, oldJTI)
	gen1, _ := list(t, st, old.List)

	// Just before RecycleAfter the list is not leased again (here to
	// another server).
	clk.Set(gen1.RecycleAfter.Add(-time.Millisecond))
	if e := allocate(t, newAllocator(st, "node-b", 8, clk)); e.List == old.List {
		t.Fatalf("list %d leased again before its RecycleAfter %v", e.List, gen1.RecycleAfter)
	}
	// At RecycleAfter it has a revoked entry: that is cleared and the
	// list quarantined, so another list is leased.
	clk.Set(gen1.RecycleAfter)
	if e := allocate(t, a); e.List == old.List {
		t.Fatalf("list %d with revoked entries leased again without quarantine", e.List)
	}
	q, entries := list(t, st, old.List)
	if len(entries) != 0 || q.Generation != 1 || !q.RecycleAfter.Equal(gen1.RecycleAfter.Add(a.Quarantine)) {
		t.Fatalf("quarantined list: %+v entries %v; want no entries, generation 1, RecycleAfter %v",
			q, entries, gen1.RecycleAfter.Add(a.Quarantine))
	}

	// After the quarantine (and past the current lease) it is recycled.
	clk.Set(q.RecycleAfter)
	e := allocate(t, a)
	if e.List != old.List {
		lists, _ := st.StatusLists(ctx)
		t.Fatalf("after quarantine: list %d, want list %d recycled; lists %+v", e.List, old.List, lists)
	}
	gen2, entries := list(t, st, e.List)
	if gen2.Generation != 2 || !gen2.Since.Equal(q.RecycleAfter.Truncate(time.Millisecond)) || len(entries) != 0 {
		t.Fatalf("recycled list: %+v entries %v; want generation 2 since %v, no entries", gen2, entries, q.RecycleAfter)
	}
	// The new generation hands out half of the list afresh, distinct.
	seen := map[uint32]bool{e.Index: true}
	for range 3 {
		f := allocate(t, a)
		if f.List != old.List || seen[f.Index] {
			t.Fatalf("entry %+v: want a fresh index in list %d (have %v)", f, old.List, seen)
		}
		seen[f.Index] = true
	}

	// The old generation's jtis, naming a position, change nothing and
	// count for nothing, even when a live token now holds that index.
	invalidate(t, st, 0, oldJTI, token.NewStatusJTI(t0, old.List, e.Index))
	if _, entries := list(t, st, old.List); len(entries) != 0 {
		t.Fatalf("an old generation's jtis set entries %v of the recycled list", entries)
	}
}

// TestAllocateRandom: indexes are drawn at random over the whole list,
// independently for each allocator; Size zero means DefaultSize. The
// bounds below are more than five standard deviations wide.
func TestAllocateRandom(t *testing.T) {
	const n = 1000
	st := openStore(t)
	clk := newClock()
	draw := func(holder string) []uint32 {
		a := newAllocator(st, holder, 0, clk)
		idx := make([]uint32, n)
		var list uint32
		for i := range idx {
			e := allocate(t, a)
			if i == 0 {
				list = e.List
			} else if e.List != list {
				t.Fatalf("entry %d in list %d, want %d", i, e.List, list)
			}
			idx[i] = e.Index
		}
		return idx
	}
	a, b := draw("node-a"), draw("node-b")

	lists, err := st.StatusLists(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lists {
		if l.Size != statuslist.DefaultSize {
			t.Errorf("list %d has %d entries, want DefaultSize", l.ID, l.Size)
		}
	}

	// In a random sequence about half the steps go up (499.5 ± 9.1).
	up := 0
	for i := 1; i < n; i++ {
		if a[i] > a[i-1] {
			up++
		}
	}
	if up < 400 || up > 600 {
		t.Errorf("%d of %d steps go up, want about half: indexes look ordered", up, n-1)
	}
	// Each sixteenth of the list gets about 62.5 ± 7.7 of the indexes.
	var buckets [16]int
	for _, i := range a {
		buckets[i/(statuslist.DefaultSize/16)]++
	}
	for k, c := range buckets {
		if c < 20 || c > 110 {
			t.Errorf("sixteenth %d of the list got %d of %d indexes, want about %d: %v", k, c, n, n/16, buckets)
			break
		}
	}
	// Two allocators do not draw the same sequence (a fixed seed would).
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	if same > 5 {
		t.Errorf("two allocators drew the same index at %d of %d positions", same, n)
	}
}

// TestClockStepsBackDuringLease: when the clock steps back behind the
// current lease's start, the next entry comes from a new lease that began
// no later than the token's issue time, so revoking it by jti works.
func TestClockStepsBackDuringLease(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	a := newAllocator(st, "node-a", 1024, clk)
	clk.Advance(2 * time.Second)
	first := allocate(t, a)
	clk.Advance(-2 * time.Second) // an NTP step back, within the lease
	e := allocate(t, a)
	issued := clk.Now()
	l, _ := list(t, st, e.List)
	if e.List == first.List || issued.Before(l.Since) {
		t.Fatalf("after the step back: list %d (first %d) with Since %v, token issued %v; want a new lease no later than the token", e.List, first.List, l.Since, issued)
	}
	invalidate(t, st, 1, token.NewStatusJTI(issued, e.List, e.Index))
	if _, entries := list(t, st, e.List); !cmp.Equal(entries, invalid(e.Index)) {
		t.Errorf("revoking the token by its jti left entries %v, want %v", entries, invalid(e.Index))
	}
}
