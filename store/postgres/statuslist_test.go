package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

// TestStatusListLeaseTwoStores races leases from two Stores, with a pool
// each, on one schema, as two nodes would, while revocations hit the
// recyclable lists: every recyclable list is leased again exactly once,
// and a list leased again starts its new generation without entries.
func TestStatusListLeaseTwoStores(t *testing.T) {
	ctx := t.Context()
	dsn := freshSchema(t)
	stores := []sigil.Store{openClosed(t, dsn), openClosed(t, dsn)}
	base := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	lease := func(holder string, now time.Time) sigil.StatusLease {
		return sigil.StatusLease{Holder: holder, Size: 64, Now: now,
			UsableUntil: now.Add(time.Hour), RecycleAfter: now.Add(2 * time.Hour), Quarantine: 0}
	}
	const recyclable, n = 8, 32
	old := map[int64]bool{}
	var ids []int64
	for i := range recyclable {
		l, err := stores[i%2].LeaseStatusList(ctx, lease("old", base))
		if err != nil {
			t.Fatal(err)
		}
		old[l.ID] = true
		ids = append(ids, l.ID)
	}
	now := base.Add(2 * time.Hour)
	start := make(chan struct{})
	var wg sync.WaitGroup
	lists := make([]sigil.StatusList, n)
	for i := range n {
		s := stores[i%2]
		wg.Go(func() {
			<-start
			l, err := s.LeaseStatusList(ctx, lease(fmt.Sprint("node-", i), now))
			if err != nil {
				t.Errorf("LeaseStatusList: %v", err)
			}
			lists[i] = l
		})
		// Tokens of the old generation, revoked as the lists are leased
		// again: each either lands before the lease, which then clears
		// it, or finds the new generation and changes nothing.
		wg.Go(func() {
			<-start
			id := ids[i%recyclable]
			if err := s.SetTokenStatus(ctx, id, base, []uint32{uint32(i)}, sigil.StatusInvalid); err != nil {
				t.Errorf("SetTokenStatus: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	held := map[int64]int{}
	for i, l := range lists {
		if j, ok := held[l.ID]; ok {
			t.Errorf("list %d leased to both node-%d and node-%d", l.ID, j, i)
		}
		held[l.ID] = i
		if old[l.ID] {
			if _, entries, err := stores[0].StatusList(ctx, l.ID); err != nil {
				t.Fatal(err)
			} else if len(entries) != 0 && l.Generation > 1 {
				t.Errorf("list %d leased again (generation %d) with entries %v", l.ID, l.Generation, entries)
			}
		}
	}
	all, err := stores[0].StatusLists(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		if old[l.ID] && l.Generation == 1 && l.Holder != "" {
			t.Errorf("recyclable list %d neither leased again nor quarantined: %+v", l.ID, l)
		}
	}
}
