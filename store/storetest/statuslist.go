package storetest

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	sigil "github.com/sigil-sts/sigil"
)

// The suite's lease times: a list leased at t is usable until t+1h and
// recycled after t+2h; a list cleared of entries waits 30 minutes.
const (
	statusUsable     = time.Hour
	statusRecycle    = 2 * time.Hour
	statusQuarantine = 30 * time.Minute
)

// statusLease asks for a list of size for holder at now, with the suite's
// lease times.
func statusLease(holder string, size int, now time.Time) sigil.StatusLease {
	return sigil.StatusLease{
		Holder:       holder,
		Size:         size,
		Now:          now,
		UsableUntil:  now.Add(statusUsable),
		RecycleAfter: now.Add(statusRecycle),
		Quarantine:   statusQuarantine,
	}
}

func lease(t *testing.T, s sigil.Store, l sigil.StatusLease) sigil.StatusList {
	t.Helper()
	got, err := s.LeaseStatusList(t.Context(), l)
	must(t, fmt.Sprintf("LeaseStatusList(%q, size %d, at %v)", l.Holder, l.Size, l.Now), err)
	return got
}

func statusList(t *testing.T, s sigil.Store, id int64) (sigil.StatusList, []sigil.StatusEntry) {
	t.Helper()
	l, es, err := s.StatusList(t.Context(), id)
	must(t, fmt.Sprintf("StatusList(%d)", id), err)
	return l, es
}

func listVersion(t *testing.T, s sigil.Store, id int64) int64 {
	t.Helper()
	v, err := s.StatusListVersion(t.Context(), id)
	must(t, fmt.Sprintf("StatusListVersion(%d)", id), err)
	return v
}

// revokeIdx sets entries idx of list id to INVALID for tokens issued at
// issued.
func revokeIdx(t *testing.T, s sigil.Store, id int64, issued time.Time, idx ...uint32) {
	t.Helper()
	must(t, fmt.Sprintf("SetTokenStatus(%d, %v, %v)", id, issued, idx),
		s.SetTokenStatus(t.Context(), id, issued, idx, sigil.StatusInvalid))
}

// wantInvalid fails t unless exactly the entries idx of list id are
// INVALID, in index order.
func wantInvalid(t *testing.T, s sigil.Store, what string, id int64, idx ...uint32) {
	t.Helper()
	var want []sigil.StatusEntry
	for _, i := range idx {
		want = append(want, sigil.StatusEntry{Index: i, Status: sigil.StatusInvalid})
	}
	_, got := statusList(t, s, id)
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: entries of list %d (-want +got):\n%s", what, id, diff)
	}
}

func testStatusListLease(t *testing.T, s sigil.Store) {
	a := lease(t, s, statusLease("node-a", 1024, base))
	want := sigil.StatusList{
		ID:           a.ID,
		Size:         1024,
		Generation:   1,
		Since:        base,
		Holder:       "node-a",
		UsableUntil:  base.Add(statusUsable),
		RecycleAfter: base.Add(statusRecycle),
		Version:      a.Version,
	}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("LeaseStatusList on an empty store (-want +got):\n%s", diff)
	}
	got, entries := statusList(t, s, a.ID)
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("StatusList after the lease (-leased +stored):\n%s", diff)
	}
	if len(entries) != 0 {
		t.Errorf("a new list has entries %v, want none", entries)
	}

	// A moment before its RecycleAfter the list is still held.
	b := lease(t, s, statusLease("node-b", 1024, a.RecycleAfter.Add(-time.Microsecond)))
	if b.ID == a.ID || b.Generation != 1 {
		t.Errorf("lease before list %d's RecycleAfter got list %d generation %d, want a new list", a.ID, b.ID, b.Generation)
	}
	// A recyclable list of another size is not taken.
	c := lease(t, s, statusLease("node-c", 2048, base.Add(10*statusRecycle)))
	if c.ID == a.ID || c.ID == b.ID || c.Generation != 1 || c.Size != 2048 {
		t.Errorf("lease of size 2048 got list %d generation %d size %d, want a new list of size 2048", c.ID, c.Generation, c.Size)
	}
	if got, _ := statusList(t, s, a.ID); !cmp.Equal(a, got) {
		t.Errorf("list %d changed by leases that did not take it: %+v, was %+v", a.ID, got, a)
	}
}

// testStatusListLeaseConcurrent races 16 leases at one instant, when 4
// lists are recyclable: the 4 are each taken once, 12 new lists are
// created, and no list is handed out twice.
func testStatusListLeaseConcurrent(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	const recyclable, n = 4, 16
	old := make(map[int64]bool)
	for range recyclable {
		old[lease(t, s, statusLease("old", 64, base)).ID] = true
	}
	now := base.Add(statusRecycle)
	start := make(chan struct{})
	lists := make([]sigil.StatusList, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			lists[i], errs[i] = s.LeaseStatusList(ctx, statusLease(fmt.Sprint("node-", i), 64, now))
		})
	}
	close(start)
	wg.Wait()
	held := make(map[int64]string)
	reused := 0
	for i, l := range lists {
		if errs[i] != nil {
			t.Errorf("LeaseStatusList from goroutine %d: %v", i, errs[i])
			continue
		}
		holder := fmt.Sprint("node-", i)
		if other, ok := held[l.ID]; ok {
			t.Errorf("list %d leased to both %s and %s", l.ID, other, holder)
		}
		held[l.ID] = holder
		wantGen := int64(1)
		if old[l.ID] {
			reused++
			wantGen = 2
		}
		if l.Generation != wantGen || l.Holder != holder || !l.Since.Equal(now) {
			t.Errorf("%s got list %d generation %d holder %q since %v, want generation %d holder %q since %v",
				holder, l.ID, l.Generation, l.Holder, l.Since, wantGen, holder, now)
		}
	}
	if reused != recyclable {
		t.Errorf("%d of %d recyclable lists were leased again, want all", reused, recyclable)
	}
	all, err := s.StatusLists(ctx)
	must(t, "StatusLists", err)
	if len(all) != n {
		t.Errorf("StatusLists has %d lists after %d leases with %d recycled, want %d", len(all), n, recyclable, n)
	}
}

func testStatusListRecycle(t *testing.T, s sigil.Store) {
	a := lease(t, s, statusLease("node-a", 64, base))
	at := a.RecycleAfter
	if b := lease(t, s, statusLease("node-b", 64, at.Add(-time.Microsecond))); b.ID == a.ID {
		t.Errorf("list %d leased again a moment before its RecycleAfter", a.ID)
	}
	got := lease(t, s, statusLease("node-c", 64, at))
	want := sigil.StatusList{
		ID:           a.ID,
		Size:         64,
		Generation:   2,
		Since:        at,
		Holder:       "node-c",
		UsableUntil:  at.Add(statusUsable),
		RecycleAfter: at.Add(statusRecycle),
		Version:      got.Version,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lease at RecycleAfter (-want +got):\n%s", diff)
	}
	if got.Version == a.Version {
		t.Errorf("Version stayed %d when the list was leased again", a.Version)
	}
	if stored, _ := statusList(t, s, a.ID); !cmp.Equal(got, stored) {
		t.Errorf("StatusList after recycling = %+v, want %+v", stored, got)
	}
	if c := lease(t, s, statusLease("node-d", 64, at)); c.ID == a.ID {
		t.Errorf("list %d leased twice at %v", a.ID, at)
	}

	// The oldest RecycleAfter goes first, whatever the order of creation.
	t0 := base.Add(24 * time.Hour)
	x := lease(t, s, statusLease("x", 32, t0))
	y := lease(t, s, statusLease("y", 32, t0.Add(-time.Hour)))
	later := t0.Add(10 * statusRecycle)
	for i, want := range []int64{y.ID, x.ID} {
		if got := lease(t, s, statusLease("z", 32, later)); got.ID != want {
			t.Errorf("lease %d at %v got list %d, want %d (oldest RecycleAfter first)", i+1, later, got.ID, want)
		}
	}
	if got := lease(t, s, statusLease("z", 32, later)); got.ID == x.ID || got.ID == y.ID || got.Generation != 1 {
		t.Errorf("third lease got list %d generation %d, want a new list", got.ID, got.Generation)
	}
}

func testStatusListQuarantine(t *testing.T, s sigil.Store) {
	a := lease(t, s, statusLease("node-a", 64, base))
	revokeIdx(t, s, a.ID, base, 3, 9)
	dirty := listVersion(t, s, a.ID)
	now := a.RecycleAfter
	if b := lease(t, s, statusLease("node-b", 64, now)); b.ID == a.ID {
		t.Fatalf("list %d with INVALID entries was leased again", a.ID)
	}
	got, entries := statusList(t, s, a.ID)
	if len(entries) != 0 {
		t.Errorf("entries of a quarantined list = %v, want none", entries)
	}
	if !got.RecycleAfter.Equal(now.Add(statusQuarantine)) {
		t.Errorf("RecycleAfter of a quarantined list = %v, want %v", got.RecycleAfter, now.Add(statusQuarantine))
	}
	if got.Generation != 1 {
		t.Errorf("Generation of a quarantined list = %d, want 1", got.Generation)
	}
	if got.Version == dirty {
		t.Errorf("Version stayed %d when the entries were cleared", dirty)
	}

	if c := lease(t, s, statusLease("node-c", 64, now.Add(statusQuarantine-time.Microsecond))); c.ID == a.ID {
		t.Errorf("list %d leased a moment before its quarantine ended", a.ID)
	}
	end := now.Add(statusQuarantine)
	d := lease(t, s, statusLease("node-d", 64, end))
	if d.ID != a.ID || d.Generation != 2 || !d.Since.Equal(end) {
		t.Errorf("lease at the end of quarantine got list %d generation %d since %v, want list %d generation 2 since %v",
			d.ID, d.Generation, d.Since, a.ID, end)
	}
	wantInvalid(t, s, "after quarantine", a.ID)
}

// testStatusListQuarantineAhead checks that a lease clears a recyclable
// list with entries and goes on to take the next one without.
func testStatusListQuarantineAhead(t *testing.T, s sigil.Store) {
	e := lease(t, s, statusLease("e", 16, base))
	f := lease(t, s, statusLease("f", 16, base.Add(time.Hour)))
	revokeIdx(t, s, e.ID, base, 0)
	now := f.RecycleAfter
	got := lease(t, s, statusLease("g", 16, now))
	if got.ID != f.ID || got.Generation != 2 {
		t.Errorf("lease got list %d generation %d, want list %d generation 2", got.ID, got.Generation, f.ID)
	}
	cleared, entries := statusList(t, s, e.ID)
	if len(entries) != 0 || !cleared.RecycleAfter.Equal(now.Add(statusQuarantine)) {
		t.Errorf("list %d ahead of the one leased: entries %v, RecycleAfter %v; want none and %v",
			e.ID, entries, cleared.RecycleAfter, now.Add(statusQuarantine))
	}
}

// testStatusListQuarantineZero checks that a list cleared of entries is
// skipped by the lease that clears it even without a quarantine.
func testStatusListQuarantineZero(t *testing.T, s sigil.Store) {
	a := lease(t, s, statusLease("a", 8, base))
	revokeIdx(t, s, a.ID, base, 7)
	req := statusLease("b", 8, a.RecycleAfter)
	req.Quarantine = 0
	if b := lease(t, s, req); b.ID == a.ID {
		t.Errorf("lease that cleared list %d took it", a.ID)
	}
	wantInvalid(t, s, "after a lease without quarantine", a.ID)
	if c := lease(t, s, statusLease("c", 8, a.RecycleAfter)); c.ID != a.ID || c.Generation != 2 {
		t.Errorf("next lease got list %d generation %d, want list %d generation 2", c.ID, c.Generation, a.ID)
	}
}

func testStatusListSetStatus(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	a := lease(t, s, statusLease("node-a", 16, base))
	b := lease(t, s, statusLease("node-b", 16, base))
	issued := base.Add(time.Minute)

	revokeIdx(t, s, a.ID, issued, 9, 0, 15)
	wantInvalid(t, s, "first revocation", a.ID, 0, 9, 15)
	wantInvalid(t, s, "other list", b.ID)
	v := listVersion(t, s, a.ID)
	if v == a.Version {
		t.Errorf("Version stayed %d when entries changed", v)
	}

	// Nothing changes: the same status again, no indexes, duplicates.
	revokeIdx(t, s, a.ID, issued, 9)
	revokeIdx(t, s, a.ID, issued)
	revokeIdx(t, s, a.ID, issued, 0, 0, 15)
	if got := listVersion(t, s, a.ID); got != v {
		t.Errorf("Version moved from %d to %d without an entry changing", v, got)
	}
	revokeIdx(t, s, a.ID, issued, 4, 4, 9)
	wantInvalid(t, s, "second revocation", a.ID, 0, 4, 9, 15)
	if got := listVersion(t, s, a.ID); got == v {
		t.Errorf("Version stayed %d when entry 4 changed", v)
	}
	v = listVersion(t, s, a.ID)

	// Refused calls change nothing, not even the valid indexes among them.
	for _, tt := range []struct {
		name   string
		idx    []uint32
		status uint8
	}{
		{"index = size", []uint32{5, 16}, sigil.StatusInvalid},
		{"largest index", []uint32{5, math.MaxUint32}, sigil.StatusInvalid},
		{"back to VALID", []uint32{9}, sigil.StatusValid},
		{"new entry VALID", []uint32{5}, sigil.StatusValid},
	} {
		if err := s.SetTokenStatus(ctx, a.ID, issued, tt.idx, tt.status); err == nil {
			t.Errorf("SetTokenStatus(%s: %v, status %d) succeeded, want an error", tt.name, tt.idx, tt.status)
		}
	}
	wantInvalid(t, s, "after refused calls", a.ID, 0, 4, 9, 15)
	if got := listVersion(t, s, a.ID); got != v {
		t.Errorf("Version moved from %d to %d on refused calls", v, got)
	}

	unknown := max(a.ID, b.ID) + 1
	wantErr(t, "SetTokenStatus(unknown list)", s.SetTokenStatus(ctx, unknown, issued, []uint32{0}, sigil.StatusInvalid), sigil.ErrNotFound)
	_, _, err := s.StatusList(ctx, unknown)
	wantErr(t, "StatusList(unknown list)", err, sigil.ErrNotFound)
	_, err = s.StatusListVersion(ctx, unknown)
	wantErr(t, "StatusListVersion(unknown list)", err, sigil.ErrNotFound)
}

// testStatusListOldGeneration checks that tokens issued before the
// current generation began leave the list alone.
func testStatusListOldGeneration(t *testing.T, s sigil.Store) {
	a := lease(t, s, statusLease("node-a", 16, base))
	since := a.RecycleAfter
	a = lease(t, s, statusLease("node-b", 16, since))
	if a.Generation != 2 {
		t.Fatalf("lease at RecycleAfter got generation %d, want 2", a.Generation)
	}
	revokeIdx(t, s, a.ID, base, 1)
	revokeIdx(t, s, a.ID, since.Add(-time.Microsecond), 2)
	wantInvalid(t, s, "tokens of generation 1", a.ID)
	if got := listVersion(t, s, a.ID); got != a.Version {
		t.Errorf("Version moved from %d to %d for tokens of generation 1", a.Version, got)
	}
	revokeIdx(t, s, a.ID, since, 3)
	revokeIdx(t, s, a.ID, since.Add(time.Hour), 4)
	wantInvalid(t, s, "tokens of generation 2", a.ID, 3, 4)
}

func testStatusListsOrder(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	lists, err := s.StatusLists(ctx)
	must(t, "StatusLists", err)
	if len(lists) != 0 {
		t.Errorf("StatusLists on an empty store = %+v, want none", lists)
	}
	var want []sigil.StatusList
	for i, size := range []int{64, 8, 64, 1 << 20} {
		want = append(want, lease(t, s, statusLease(fmt.Sprint("node-", i), size, base.Add(time.Duration(i)*time.Hour))))
	}
	// Leasing the first list again and revoking on another leaves the
	// order alone.
	want[0] = lease(t, s, statusLease("again", 64, want[0].RecycleAfter))
	revokeIdx(t, s, want[1].ID, base.Add(time.Hour), 2)
	want[1].Version = listVersion(t, s, want[1].ID)
	sort.Slice(want, func(i, j int) bool { return want[i].ID < want[j].ID })
	lists, err = s.StatusLists(ctx)
	must(t, "StatusLists", err)
	if diff := cmp.Diff(want, lists); diff != "" {
		t.Errorf("StatusLists (-want +got):\n%s", diff)
	}
}

// testStatusListVersion checks that a list's Version takes a new value
// with every change, never one seen before, and only then.
func testStatusListVersion(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	a := lease(t, s, statusLease("node-a", 16, base))
	seen := map[int64]string{a.Version: "the first lease"}
	cur := a.Version
	check := func(what string, moved bool) {
		t.Helper()
		v := listVersion(t, s, a.ID)
		if l, _ := statusList(t, s, a.ID); l.Version != v {
			t.Errorf("after %s: StatusList has Version %d, StatusListVersion %d", what, l.Version, v)
		}
		switch {
		case !moved && v != cur:
			t.Errorf("Version moved from %d to %d after %s", cur, v, what)
		case moved && seen[v] != "":
			t.Errorf("Version after %s is %d, as after %s", what, v, seen[v])
		}
		seen[v], cur = what, v
	}
	check("reading it", false)
	_, err := s.StatusLists(ctx)
	must(t, "StatusLists", err)
	check("listing lists", false)
	revokeIdx(t, s, a.ID, base, 1)
	check("a revocation", true)
	revokeIdx(t, s, a.ID, base, 1)
	check("the same revocation", false)
	lease(t, s, statusLease("node-b", 16, a.RecycleAfter))
	check("clearing entries", true)
	lease(t, s, statusLease("node-c", 16, a.RecycleAfter.Add(statusQuarantine)))
	check("a new lease", true)
	revokeIdx(t, s, a.ID, base, 2)
	check("a revocation from an old generation", false)
}
