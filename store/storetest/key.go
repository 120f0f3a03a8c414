package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sigil "github.com/sigil-sts/sigil"
)

func newKey(id, alg string, state sigil.KeyState, created time.Time) *sigil.SigningKey {
	return &sigil.SigningKey{
		ID:        id,
		Alg:       alg,
		State:     state,
		Public:    []byte("public-" + id),
		Sealed:    []byte("sealed-" + id + "\x00\xff"),
		CreatedAt: created,
	}
}

func mustKeys(t *testing.T, s sigil.Store) []*sigil.SigningKey {
	t.Helper()
	ks, err := s.Keys(t.Context())
	must(t, "Keys", err)
	return ks
}

// keyMap indexes keys by ID.
func keyMap(ks []*sigil.SigningKey) map[string]*sigil.SigningKey {
	m := make(map[string]*sigil.SigningKey, len(ks))
	for _, k := range ks {
		m[k.ID] = k
	}
	return m
}

func testKeyRoundTrip(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	if ks := mustKeys(t, s); len(ks) != 0 {
		t.Fatalf("Keys on an empty store = %d keys, want 0", len(ks))
	}
	next := newKey("k-next", "ES256", sigil.KeyNext, base)
	active := newKey("k-active", "EdDSA", sigil.KeyActive, base.Add(time.Second))
	retired := newKey("k-retired", "RS256", sigil.KeyRetired, base.Add(2*time.Second))
	retired.RetiredAt = base.Add(3 * time.Second)
	want := []*sigil.SigningKey{next, active, retired}
	for _, k := range want {
		must(t, "CreateKey("+k.ID+")", s.CreateKey(ctx, k))
	}
	if diff := cmp.Diff(want, mustKeys(t, s)); diff != "" {
		t.Errorf("Keys round trip (-want +got):\n%s", diff)
	}
}

func testKeyConflict(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	must(t, "CreateKey", s.CreateKey(ctx, newKey("k1", "ES256", sigil.KeyNext, base)))
	dup := newKey("k1", "EdDSA", sigil.KeyNext, base.Add(time.Hour))
	wantErr(t, "CreateKey(duplicate)", s.CreateKey(ctx, dup), sigil.ErrConflict)
	ks := mustKeys(t, s)
	if len(ks) != 1 || ks[0].Alg != "ES256" {
		t.Errorf("after conflicting create Keys = %+v, want the one ES256 key", ks)
	}
}

func testKeysOrder(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	// Created out of order; two share a CreatedAt and are ordered by ID.
	keys := []*sigil.SigningKey{
		newKey("late", "ES256", sigil.KeyNext, base.Add(2*time.Hour)),
		newKey("early", "ES256", sigil.KeyRetired, base.Add(-time.Hour)),
		newKey("tie-b", "EdDSA", sigil.KeyNext, base),
		newKey("tie-a", "RS256", sigil.KeyNext, base),
		newKey("micro", "PS256", sigil.KeyNext, base.Add(time.Microsecond)),
	}
	for _, k := range keys {
		must(t, "CreateKey("+k.ID+")", s.CreateKey(ctx, k))
	}
	var got []string
	for _, k := range mustKeys(t, s) {
		got = append(got, k.ID)
	}
	want := []string{"early", "tie-a", "tie-b", "micro", "late"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Keys order (-want +got):\n%s", diff)
	}
}

// keyWant is the expected life-cycle state of a key.
type keyWant struct {
	state   sigil.KeyState
	retired time.Time
}

func testKeyPromote(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	retiredAt := base.Add(-24 * time.Hour)
	oldRetired := newKey("es-old", "ES256", sigil.KeyRetired, base.Add(-48*time.Hour))
	oldRetired.RetiredAt = retiredAt
	keys := []*sigil.SigningKey{
		oldRetired,
		newKey("es-active", "ES256", sigil.KeyActive, base.Add(-time.Hour)),
		newKey("es-next", "ES256", sigil.KeyNext, base),
		newKey("ed-active", "EdDSA", sigil.KeyActive, base.Add(-time.Hour)),
		newKey("ed-next", "EdDSA", sigil.KeyNext, base),
	}
	for _, k := range keys {
		must(t, "CreateKey("+k.ID+")", s.CreateKey(ctx, k))
	}

	at := base.Add(10 * time.Minute)
	must(t, "PromoteKey(es-next)", s.PromoteKey(ctx, "es-next", at))
	want := map[string]keyWant{
		"es-old":    {sigil.KeyRetired, retiredAt}, // already retired: untouched
		"es-active": {sigil.KeyRetired, at},
		"es-next":   {sigil.KeyActive, time.Time{}},
		"ed-active": {sigil.KeyActive, time.Time{}}, // other algorithm: untouched
		"ed-next":   {sigil.KeyNext, time.Time{}},
	}
	check := func(step string) {
		t.Helper()
		got := keyMap(mustKeys(t, s))
		if len(got) != len(want) {
			t.Fatalf("%s: %d keys, want %d", step, len(got), len(want))
		}
		for id, w := range want {
			k := got[id]
			if k == nil {
				t.Errorf("%s: key %s missing", step, id)
				continue
			}
			if k.State != w.state || !k.RetiredAt.Equal(w.retired) {
				t.Errorf("%s: key %s = %s retired at %v, want %s retired at %v",
					step, id, k.State, k.RetiredAt, w.state, w.retired)
			}
		}
	}
	check("after promoting es-next")

	// Promoting the active key again is a no-op: nothing else moves.
	must(t, "PromoteKey(es-next) again", s.PromoteKey(ctx, "es-next", at.Add(time.Hour)))
	check("after promoting es-next again")

	// The other algorithm rotates on its own.
	must(t, "PromoteKey(ed-next)", s.PromoteKey(ctx, "ed-next", at.Add(time.Minute)))
	want["ed-active"] = keyWant{sigil.KeyRetired, at.Add(time.Minute)}
	want["ed-next"] = keyWant{sigil.KeyActive, time.Time{}}
	check("after promoting ed-next")

	// Other fields survive promotion.
	got := keyMap(mustKeys(t, s))["es-next"]
	if diff := cmp.Diff(keys[2].Public, got.Public); diff != "" {
		t.Errorf("promoted key Public changed (-want +got):\n%s", diff)
	}
	if !got.CreatedAt.Equal(base) || got.Alg != "ES256" {
		t.Errorf("promoted key = %+v, want CreatedAt %v and Alg ES256", got, base)
	}
}

func testKeyPromoteEdges(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	retired := newKey("gone", "ES256", sigil.KeyRetired, base.Add(-time.Hour))
	retired.RetiredAt = base.Add(-time.Minute)
	must(t, "CreateKey(gone)", s.CreateKey(ctx, retired))
	must(t, "CreateKey(first)", s.CreateKey(ctx, newKey("first", "ES256", sigil.KeyNext, base)))

	wantErr(t, "PromoteKey(missing)", s.PromoteKey(ctx, "missing", base), sigil.ErrNotFound)
	wantErr(t, "PromoteKey(retired)", s.PromoteKey(ctx, "gone", base), sigil.ErrConflict)
	ks := keyMap(mustKeys(t, s))
	if k := ks["gone"]; k.State != sigil.KeyRetired || !k.RetiredAt.Equal(retired.RetiredAt) {
		t.Errorf("after failed promotion key gone = %s retired at %v, want retired at %v", k.State, k.RetiredAt, retired.RetiredAt)
	}
	if k := ks["first"]; k.State != sigil.KeyNext {
		t.Errorf("failed promotion changed key first to %s", k.State)
	}

	// With no active key for the algorithm, promotion just activates.
	must(t, "PromoteKey(first)", s.PromoteKey(ctx, "first", base))
	ks = keyMap(mustKeys(t, s))
	if k := ks["first"]; k.State != sigil.KeyActive || !k.RetiredAt.IsZero() {
		t.Errorf("key first = %s retired at %v, want active", k.State, k.RetiredAt)
	}
	if k := ks["gone"]; !k.RetiredAt.Equal(retired.RetiredAt) {
		t.Errorf("promotion moved RetiredAt of an already retired key to %v", k.RetiredAt)
	}
}

func testKeyDelete(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	must(t, "CreateKey(a)", s.CreateKey(ctx, newKey("a", "ES256", sigil.KeyRetired, base)))
	must(t, "CreateKey(b)", s.CreateKey(ctx, newKey("b", "ES256", sigil.KeyActive, base.Add(time.Second))))
	must(t, "DeleteKey(a)", s.DeleteKey(ctx, "a"))
	wantErr(t, "DeleteKey(a) again", s.DeleteKey(ctx, "a"), sigil.ErrNotFound)
	wantErr(t, "DeleteKey(missing)", s.DeleteKey(ctx, "missing"), sigil.ErrNotFound)
	wantErr(t, "PromoteKey(a) after delete", s.PromoteKey(ctx, "a", base), sigil.ErrNotFound)
	ks := mustKeys(t, s)
	if len(ks) != 1 || ks[0].ID != "b" {
		t.Errorf("after delete Keys = %+v, want only b", ks)
	}
	// The kid stays taken by the archived key: a checkpoint's kid must
	// name one key for ever.
	wantErr(t, "CreateKey(a) again", s.CreateKey(ctx, newKey("a", "EdDSA", sigil.KeyNext, base)), sigil.ErrConflict)
	if ks := mustKeys(t, s); len(ks) != 1 {
		t.Errorf("a refused CreateKey of an archived kid stored it: Keys = %+v", ks)
	}
}

// testKeyArchive checks that DeleteKey keeps every field of the key in the
// archive, ordered by CreatedAt then ID whatever the order of deletion.
func testKeyArchive(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	archived, err := s.ArchivedKeys(ctx)
	must(t, "ArchivedKeys(empty)", err)
	if len(archived) != 0 {
		t.Fatalf("ArchivedKeys on an empty store = %d keys, want 0", len(archived))
	}
	retired := newKey("es-retired", "ES256", sigil.KeyRetired, base.Add(-2*time.Hour))
	retired.RetiredAt = base.Add(-time.Hour)
	active := newKey("es-active", "ES256", sigil.KeyActive, base.Add(-time.Hour))
	tieB := newKey("tie-b", "EdDSA", sigil.KeyNext, base)
	tieA := newKey("tie-a", "RS256", sigil.KeyNext, base)
	kept := newKey("kept", "PS256", sigil.KeyNext, base.Add(time.Hour))
	for _, k := range []*sigil.SigningKey{retired, active, tieB, tieA, kept} {
		must(t, "CreateKey("+k.ID+")", s.CreateKey(ctx, k))
	}
	for _, id := range []string{"tie-b", "es-active", "tie-a", "es-retired"} {
		must(t, "DeleteKey("+id+")", s.DeleteKey(ctx, id))
	}
	archived, err = s.ArchivedKeys(ctx)
	must(t, "ArchivedKeys", err)
	if diff := cmp.Diff([]*sigil.SigningKey{retired, active, tieA, tieB}, archived); diff != "" {
		t.Errorf("ArchivedKeys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*sigil.SigningKey{kept}, mustKeys(t, s)); diff != "" {
		t.Errorf("Keys after archiving (-want +got):\n%s", diff)
	}
	// An archived key is gone from the live set.
	wantErr(t, "DeleteKey(archived)", s.DeleteKey(ctx, "tie-a"), sigil.ErrNotFound)
	wantErr(t, "PromoteKey(archived)", s.PromoteKey(ctx, "tie-a", base), sigil.ErrNotFound)
	// The archive does not count towards one active key per algorithm.
	must(t, "CreateKey(new active ES256)", s.CreateKey(ctx, newKey("es-new", "ES256", sigil.KeyActive, base)))
	archived, err = s.ArchivedKeys(ctx)
	must(t, "ArchivedKeys", err)
	if len(archived) != 4 {
		t.Errorf("ArchivedKeys after more calls = %d keys, want 4", len(archived))
	}
}
