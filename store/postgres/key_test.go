package postgres_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/postgres"
)

// twoNodes returns two Stores on one fresh schema, as two nodes sharing a
// database would have.
func twoNodes(t *testing.T) [2]*postgres.Store {
	dsn := freshSchema(t)
	var nodes [2]*postgres.Store
	for i := range nodes {
		nodes[i] = openStore(t, dsn)
		t.Cleanup(func() { nodes[i].Close() })
	}
	return nodes
}

func testKey(id string, state sigil.KeyState, created time.Time) *sigil.SigningKey {
	return &sigil.SigningKey{ID: id, Alg: "ES256", State: state, Public: []byte("pub-" + id),
		Sealed: []byte("sealed-" + id), CreatedAt: created}
}

// TestPromoteKeyConcurrent promotes eight next keys of one algorithm at
// once through two nodes. Each promotion must succeed, as it would one
// after the other, and leave exactly one active key.
func TestPromoteKeyConcurrent(t *testing.T) {
	ctx := t.Context()
	nodes := twoNodes(t)
	base := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := nodes[0].CreateKey(ctx, testKey("k0", sigil.KeyActive, base)); err != nil {
		t.Fatal(err)
	}
	const n = 8
	for i := 1; i <= n; i++ {
		if err := nodes[0].CreateKey(ctx, testKey(fmt.Sprint("k", i), sigil.KeyNext, base)); err != nil {
			t.Fatal(err)
		}
	}
	start := make(chan struct{})
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			<-start
			errs[i] = nodes[i%2].PromoteKey(ctx, fmt.Sprint("k", i), base.Add(time.Hour))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("PromoteKey(k%d): %v", i, err)
		}
	}
	ks, err := nodes[1].Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, k := range ks {
		switch k.State {
		case sigil.KeyActive:
			active++
		case sigil.KeyRetired:
		default:
			t.Errorf("key %s is %s after every promotion", k.ID, k.State)
		}
	}
	if active != 1 {
		t.Errorf("%d active keys, want 1", active)
	}
}

// TestKeyDeleteRace deletes a kid from one node while the other creates
// it again: the kid may end up archived or live, never both, and of
// concurrent deletes exactly one succeeds.
func TestKeyDeleteRace(t *testing.T) {
	ctx := t.Context()
	nodes := twoNodes(t)
	base := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	for round := range 20 {
		kid := fmt.Sprint("k", round)
		if err := nodes[0].CreateKey(ctx, testKey(kid, sigil.KeyNext, base)); err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var createErr error
		deleteErrs := make([]error, 4)
		wg.Go(func() {
			<-start
			createErr = nodes[1].CreateKey(ctx, testKey(kid, sigil.KeyNext, base))
		})
		for i := range deleteErrs {
			wg.Go(func() {
				<-start
				deleteErrs[i] = nodes[i%2].DeleteKey(ctx, kid)
			})
		}
		close(start)
		wg.Wait()
		if !errors.Is(createErr, sigil.ErrConflict) {
			t.Errorf("round %d: CreateKey of a live or archived kid: %v, want ErrConflict", round, createErr)
		}
		ok := 0
		for _, err := range deleteErrs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, sigil.ErrNotFound):
				t.Errorf("round %d: DeleteKey: %v, want nil or ErrNotFound", round, err)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d concurrent deletes succeeded, want 1", round, ok)
		}
	}
	live, err := nodes[0].Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 0 {
		t.Errorf("Keys = %d keys, want none", len(live))
	}
	archived, err := nodes[0].ArchivedKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(archived) != 20 {
		t.Errorf("ArchivedKeys = %d keys, want 20", len(archived))
	}
}
