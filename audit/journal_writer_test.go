package audit_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
)

// TestWriterJournalRecovery crashes writers with records journaled (and so
// acknowledged) at various points of their way to the store, and checks
// that the next start appends each of them exactly once.
func TestWriterJournalRecovery(t *testing.T) {
	t.Parallel() // most of the time goes to back-off sleeps and lingering
	t.Run("nothing committed", func(t *testing.T) {
		t.Parallel()
		const n = 20
		dir, path := journalFile(t)
		st := openStore(t, dir)
		down := hookStore{AuditStore: st, appendAudit: func(context.Context, sigil.JournalMark, func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
			return errStoreDown
		}}
		j := openJournal(t, path)
		id := j.ID()
		w := startWriter(t, &audit.Writer{Store: down, Journal: j, Log: quiet})
		appendRange(t, w, 1, n) // each returns once journaled
		closeWriter(t, w)       // gives up, leaving them to the journal
		if es := allEntries(t, st); len(es) != 0 {
			t.Fatalf("%d records reached a store that fails every append", len(es))
		}
		if got := journalJTIs(t, readJournal(t, path)); !slices.Equal(got, jtiRange(1, n)) {
			t.Fatalf("the journal left behind holds %v, want records 1..%d", got, n)
		}

		j = openJournal(t, path)
		if j.ID() != id {
			t.Fatalf("journal id %q after the crash, want %q", j.ID(), id)
		}
		w = startWriter(t, &audit.Writer{Store: st, Journal: j})
		wantTrail(t, st, n)
		if got := journalMark(t, st, id); got != n {
			t.Errorf("mark %d after recovery, want %d", got, n)
		}
		if got := len(readJournal(t, path)); got != 0 {
			t.Errorf("%d records in the journal after recovery, want it reset", got)
		}
		// The recovered writer numbers on from the mark.
		appendRange(t, w, n+1, n+1)
		closeWriter(t, w)
		wantTrail(t, st, n+1)
		if got := journalMark(t, st, id); got != n+1 {
			t.Errorf("mark %d, want %d", got, n+1)
		}
	})

	t.Run("all committed, crash before the reset", func(t *testing.T) {
		t.Parallel()
		const n = 30
		dir, path := journalFile(t)
		st := openStore(t, dir)
		w := startWriter(t, &audit.Writer{Store: st, Journal: openJournal(t, path)})
		appendRange(t, w, 1, n)
		flush(t, w)
		crash := snapshotJournal(t, path)
		closeWriter(t, w) // resets the journal
		crash.restore(t, path)
		if got := len(readJournal(t, path)); got != n {
			t.Fatalf("the restored journal holds %d records, want %d", got, n)
		}

		j := openJournal(t, path)
		w = startWriter(t, &audit.Writer{Store: st, Journal: j})
		wantTrail(t, st, n)
		if got := journalMark(t, st, j.ID()); got != n {
			t.Errorf("mark %d, want %d", got, n)
		}
		appendRange(t, w, n+1, n+1)
		closeWriter(t, w)
		wantTrail(t, st, n+1)
	})

	t.Run("some committed", func(t *testing.T) {
		t.Parallel()
		const committed, journaled = 10, 15
		dir, path := journalFile(t)
		st := openStore(t, dir)
		var broken atomic.Bool
		flaky := hookStore{AuditStore: st, appendAudit: func(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
			if broken.Load() {
				return errStoreDown
			}
			return st.AppendAudit(ctx, mark, build)
		}}
		j := openJournal(t, path)
		w := startWriter(t, &audit.Writer{Store: flaky, Journal: j, Log: quiet})
		appendRange(t, w, 1, committed)
		flush(t, w)
		broken.Store(true)
		appendRange(t, w, committed+1, committed+journaled)
		closeWriter(t, w)
		wantTrail(t, st, committed)
		if got := journalMark(t, st, j.ID()); got != committed {
			t.Fatalf("mark %d before the restart, want %d", got, committed)
		}

		n, err := audit.RecoverJournal(t.Context(), st, path)
		if n != journaled || err != nil {
			t.Fatalf("RecoverJournal = %d, %v; want %d, nil", n, err, journaled)
		}
		wantTrail(t, st, committed+journaled)
		if got := journalMark(t, st, j.ID()); got != committed+journaled {
			t.Errorf("mark %d, want %d", got, committed+journaled)
		}
	})

	// A store that refuses one batch until the closing writer gives up on
	// it, then takes the next (a lock held a little too long, a failover):
	// the later batch's mark must not pass the records left in the journal.
	t.Run("a later batch after one given up", func(t *testing.T) {
		t.Parallel()
		const n = 4
		dir, path := journalFile(t)
		st := openStore(t, dir)
		refusing := hookStore{AuditStore: st, appendAudit: func(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
			if mark.Seq <= 2 { // the batch holding journal record 1
				return errStoreDown
			}
			return st.AppendAudit(ctx, mark, build)
		}}
		w := startWriter(t, &audit.Writer{Store: refusing, Journal: openJournal(t, path), MaxBatch: 2, Log: quiet})
		appendRange(t, w, 1, n)
		closeWriter(t, w)

		w = startWriter(t, &audit.Writer{Store: st, Journal: openJournal(t, path)})
		closeWriter(t, w)
		wantTrail(t, st, n)
	})
}

func TestWriterJournalRotation(t *testing.T) {
	t.Parallel() // most of the time goes to back-off sleeps and lingering
	t.Run("segments rotate and go", func(t *testing.T) {
		t.Parallel()
		const total, every = 2000, 200
		dir, path := journalFile(t)
		st := openStore(t, dir)
		j := openJournal(t, path)
		w := startWriter(t, &audit.Writer{Store: st, Journal: j, JournalRotateSize: 4096})
		most := 0
		for i := every; i <= total; i += every {
			appendRange(t, w, i-every+1, i)
			flush(t, w)
			// Read while the writer runs: what it keeps is bounded by what
			// is not yet known to be in the store, not by the run's length.
			most = max(most, len(readJournal(t, path)))
			for _, f := range journalFiles(t, path) {
				switch strings.TrimPrefix(f, filepath.Base(path)) {
				case "", ".old", ".lock", ".new":
				default:
					t.Fatalf("journal file %s", f)
				}
			}
		}
		if most > 3*every {
			t.Errorf("the journal held up to %d records with a flush every %d: the segments do not rotate and go", most, every)
		}
		t.Logf("the journal held at most %d records", most)
		closeWriter(t, w)
		wantTrail(t, st, total)
		if got := journalMark(t, st, j.ID()); got != total {
			t.Errorf("mark %d, want %d", got, total)
		}
		if files := journalFiles(t, path); !slices.Equal(files, []string{"audit.journal", "audit.journal.lock"}) {
			t.Errorf("journal files after Close: %v, want the current segment and the lock", files)
		}
		if got := len(readJournal(t, path)); got != 0 {
			t.Errorf("%d records in the journal after Close, want none", got)
		}
	})

	// A crash copy of both segments, taken while the old one holds records
	// the store does not have yet (behind records it has) and the current
	// one more.
	for _, tc := range []struct {
		name    string
		storeUp bool // the store came back and took everything before the crash
	}{
		{"crash copy, store down", false},
		{"crash copy, store caught up", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const k, batch = 200, 10
			dir, path := journalFile(t)
			st := openStore(t, dir)
			// The store pauses on the first append after pausing is set,
			// and once down takes only the appends budget allows.
			var pausing, down atomic.Bool
			var budget atomic.Int64
			entered := make(chan struct{}, 1)
			resume := make(chan struct{})
			refused := make(chan struct{}, 1)
			hook := hookStore{AuditStore: st, appendAudit: func(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
				if pausing.CompareAndSwap(true, false) {
					entered <- struct{}{}
					<-resume
					return st.AppendAudit(ctx, mark, build)
				}
				if down.Load() && budget.Add(-1) < 0 {
					select {
					case refused <- struct{}{}:
					default:
					}
					return errStoreDown
				}
				return st.AppendAudit(ctx, mark, build)
			}}
			j := openJournal(t, path)
			w := startWriter(t, &audit.Writer{Store: hook, Journal: j, JournalRotateSize: 4096, MaxBatch: batch, Log: quiet})
			resumeOnce := sync.OnceFunc(func() { close(resume) })
			t.Cleanup(resumeOnce)
			for i := 50; i <= k; i += 50 {
				appendRange(t, w, i-49, i)
				flush(t, w)
			}
			// The writer takes a batch of k+1.. and pauses in the store
			// while k+11..k+40 are queued behind it. It commits the batch,
			// then rotates (they are more than 4096 bytes): the old segment
			// ends at k+40. It commits one more batch of ten, and the store
			// goes down: the old segment holds records not in the store.
			pausing.Store(true)
			appendRange(t, w, k+1, k+batch)
			receive(t, entered, "the paused batch")
			appendRange(t, w, k+batch+1, k+40)
			budget.Store(1)
			down.Store(true)
			resumeOnce()
			// The writer, retrying the refused batch, touches the segments
			// no more. k+41..k+60 go to the current segment.
			receive(t, refused, "a refused batch")
			appendRange(t, w, k+41, k+60)
			mark := journalMark(t, st, j.ID())
			if mark <= k+1 || mark >= k+40 {
				t.Fatalf("mark %d, want two batches after %d", mark, k)
			}
			old := journalJTIs(t, readJournal(t, path+".old")) // ReadJournal(p) reads p.old, then p
			if !slices.Contains(old, jtiOf(k+40)) {
				t.Fatalf("the old segment holds %d records (%v), want it to hold record %d, not in the store", len(old), old, k+40)
			}
			all := journalJTIs(t, readJournal(t, path))
			if all[len(all)-1] != jtiOf(k+60) {
				t.Fatalf("the journal ends at %s, want %s", all[len(all)-1], jtiOf(k+60))
			}
			crash := snapshotJournal(t, path)

			if tc.storeUp {
				down.Store(false)
				flush(t, w)
				wantTrail(t, st, k+60)
			}
			closeWriter(t, w)
			crash.restore(t, path)

			n, err := audit.RecoverJournal(t.Context(), st, path)
			if err != nil {
				t.Fatal(err)
			}
			want := int64(k+60) - mark
			if tc.storeUp {
				want = 0
			}
			if n != want {
				t.Errorf("RecoverJournal appended %d records, want %d", n, want)
			}
			// Both segments are done with: the journal starts afresh.
			if files := journalFiles(t, path); !slices.Equal(files, []string{"audit.journal", "audit.journal.lock"}) {
				t.Errorf("journal files after recovery: %v, want the current segment and the lock", files)
			}
			if got := len(readJournal(t, path)); got != 0 {
				t.Errorf("%d records in the journal after recovery, want none", got)
			}
			wantTrail(t, st, k+60)
			if got := journalMark(t, st, j.ID()); got != k+60 {
				t.Errorf("mark %d, want %d", got, k+60)
			}
		})
	}
}

// TestWriterJournalFullBatchesDoNotLinger: with a journal the writer
// gathers records for its linger, but a full batch is written at once.
// Lingering anyway capped the trail at MaxBatch records per linger (about
// ten thousand a second in production), and the queue then held requests
// back. The linger here is an hour, so only full batches reach the store
// until Close (or a leftover wake-up).
func TestWriterJournalFullBatchesDoNotLinger(t *testing.T) {
	t.Parallel()
	const batch, n = 10, 45
	dir, path := journalFile(t)
	st := openStore(t, dir)
	w := startWriter(t, &audit.Writer{Store: st, Journal: openJournal(t, path), MaxBatch: batch, JournalLinger: time.Hour})
	appendRange(t, w, 1, n)
	// A wake-up left over from a full batch may end one later linger
	// early too, so the store may hold more.
	const full = n / batch * batch
	deadline := time.Now().Add(10 * time.Second)
	for {
		head, err := st.AuditHead(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if head.Seq >= full {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store holds %d records after 10 s, want at least the %d of the full batches", head.Seq, full)
		}
		time.Sleep(5 * time.Millisecond)
	}
	closeWriter(t, w)
	wantTrail(t, st, n)
}

// TestWriterJournalBackpressure: a record the caller is told failed is not
// in the journal, so no restart appends it behind the caller's back.
func TestWriterJournalBackpressure(t *testing.T) {
	t.Parallel() // most of the time goes to back-off sleeps and lingering
	padded := func(i int) audit.Record {
		r := sampleRecord(i, jtiOf(i))
		r.Detail = map[string]string{"pad": strings.Repeat("x", 100<<10)}
		return r
	}
	plain := func(i int) audit.Record { return sampleRecord(i, jtiOf(i)) }
	for _, tc := range []struct {
		name   string
		queue  int
		record func(i int) audit.Record
		want   error // wrapped besides ErrBackpressure
		taken  int   // records accepted before the refusal, 0: any
	}{
		// The writer holds record 1 in the stuck store; two fill the queue.
		{name: "queue full", queue: 2, record: plain, taken: 3},
		// Records of 100 KiB fill the segment long before the queue.
		{name: "journal segment full", queue: 1000, record: padded, want: audit.ErrJournalFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, path := journalFile(t)
			st := openStore(t, dir)
			entered := make(chan struct{}, 1)
			gate := make(chan struct{})
			gated := hookStore{AuditStore: st, appendAudit: func(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-gate
				return st.AppendAudit(ctx, mark, build)
			}}
			w := startWriter(t, &audit.Writer{Store: gated, Journal: openJournal(t, path), QueueSize: tc.queue, EnqueueTimeout: 20 * time.Millisecond})
			open := sync.OnceFunc(func() { close(gate) })
			t.Cleanup(open)
			ctx := t.Context()

			// Each accepted record, with the body the writer encoded.
			var accepted [][]byte
			take := func(i int) error {
				r := tc.record(i)
				if err := w.Append(ctx, r); err != nil {
					return err
				}
				b, err := audit.Encode(&r)
				if err != nil {
					t.Fatal(err)
				}
				accepted = append(accepted, b)
				return nil
			}
			if err := take(1); err != nil {
				t.Fatal(err)
			}
			receive(t, entered, "the writer to reach the store")
			var refusal error
			for i := 2; i <= 500 && refusal == nil; i++ {
				refusal = take(i)
			}
			if !errors.Is(refusal, audit.ErrBackpressure) || (tc.want != nil && !errors.Is(refusal, tc.want)) {
				t.Fatalf("Append after %d records = %v, want ErrBackpressure (and %v)", len(accepted), refusal, tc.want)
			}
			if tc.taken != 0 && len(accepted) != tc.taken {
				t.Errorf("refused after %d records, want %d", len(accepted), tc.taken)
			}
			recs := readJournal(t, path)
			if len(recs) != len(accepted) {
				t.Fatalf("the journal holds %d records, want exactly the %d accepted", len(recs), len(accepted))
			}
			for i, rec := range recs {
				if rec.Seq != int64(i+1) || !bytes.Equal(rec.Body, accepted[i]) {
					t.Fatalf("journal record %d = seq %d %.80q, want seq %d %.80q", i, rec.Seq, rec.Body, i+1, accepted[i])
				}
			}

			// Once the store moves, the caller's retry is taken, and the
			// trail holds it once.
			open()
			flush(t, w)
			if err := take(len(accepted) + 1); err != nil {
				t.Fatalf("retry after the store caught up: %v", err)
			}
			closeWriter(t, w)
			wantBodies(t, st, accepted)
		})
	}
}
