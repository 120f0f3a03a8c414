package postgres_test

import (
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/postgres"
	"github.com/sigil-sts/sigil/store/storetest"
)

// openClosed opens a Store on dsn and closes it when the test ends.
func openClosed(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s := openStore(t, dsn)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestAuditTwoStores appends from two Stores, with a pool each, on one
// schema, as two nodes would: the lock on audit_head taken when the head
// is read makes one chain of it.
func TestAuditTwoStores(t *testing.T) {
	dsn := freshSchema(t)
	a, b := openClosed(t, dsn), openClosed(t, dsn)
	storetest.AppendConcurrently(t, []sigil.AuditStore{a, b}, 16, 8)
	ha, err := a.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	hb, err := b.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ha.Seq != hb.Seq || string(ha.Hash) != string(hb.Hash) {
		t.Errorf("the stores see different heads: %d %x and %d %x", ha.Seq, ha.Hash, hb.Seq, hb.Hash)
	}
}

// TestAuditRollback checks that a batch failing in the database, or a
// build that panics, leaves nothing written and the head unlocked.
func TestAuditRollback(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, freshSchema(t))
	if err := s.AppendAudit(ctx, sigil.JournalMark{}, storetest.Chain([]byte(`{"event":"a"}`))); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"event":"b"`, ``, `not json`, "{\"event\":\"\x00\"}", "{\"event\":\"\xff\"}"} {
		err := s.AppendAudit(ctx, sigil.JournalMark{Journal: "j", Seq: 1}, storetest.Chain([]byte(`{"event":"ok"}`), []byte(`{"event":"ok"}`), []byte(bad)))
		if err == nil {
			t.Errorf("AppendAudit with body %q succeeded, want an error", bad)
		}
		wantAudit(t, s, 1)
	}

	func() {
		defer func() {
			if recover() == nil {
				t.Error("a panic in build did not reach the caller")
			}
		}()
		s.AppendAudit(ctx, sigil.JournalMark{}, func(sigil.AuditHead) ([]sigil.AuditEntry, error) { panic("build") })
	}()
	// A transaction left open would hold the lock on audit_head: the
	// next append would wait until its context ends.
	start := time.Now()
	if err := s.AppendAudit(ctx, sigil.JournalMark{Journal: "j", Seq: 1}, storetest.Chain([]byte(`{"event":"c"}`))); err != nil {
		t.Fatalf("AppendAudit after a panicking build: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("AppendAudit after a panicking build took %v: the lock was held", d)
	}
	wantAudit(t, s, 2)
}

// wantAudit fails t unless the head and the records read back both end
// at want.
func wantAudit(t *testing.T, s *postgres.Store, want int64) {
	t.Helper()
	h, err := s.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != want {
		t.Errorf("head Seq = %d, want %d", h.Seq, want)
	}
	es, err := s.AuditEntries(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(es)) != want || (want > 0 && es[len(es)-1].Seq != want) {
		t.Errorf("audit holds %d records, want %d", len(es), want)
	}
}
