package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/keys"
)

// startWriter starts w and closes it at the end of the test if the test
// has not.
func startWriter(t *testing.T, w *audit.Writer) *audit.Writer {
	t.Helper()
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.Close(ctx)
	})
	return w
}

func TestWriterConcurrentAppend(t *testing.T) {
	const (
		goroutines = 64
		each       = 40
		total      = goroutines * each
	)
	sealer := keys.NewSealer(masterKey(t, 1))
	st := openStore(t, t.TempDir())
	ks := newKeySet(t, st, sealer)
	var transactions atomic.Int64
	counting := hookStore{AuditStore: st, appendAudit: func(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
		transactions.Add(1)
		return st.AppendAudit(ctx, mark, build)
	}}
	w := startWriter(t, &audit.Writer{Store: counting, Node: "node-a", Sign: audit.KeySigner(ks, alg), CheckpointEvery: 500})
	ctx := t.Context()

	var wg sync.WaitGroup
	errs := make(chan error, total)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				jti := jtiOf(g*each + i)
				if err := w.Append(ctx, sampleRecord(g*each+i, jti)); err != nil {
					errs <- err
					return
				}
				// Append returns only once the record has committed: it is
				// readable through the store at once.
				es, err := st.QueryAudit(ctx, sigil.AuditQuery{JTI: jti})
				if err != nil {
					errs <- err
					return
				}
				if len(es) != 1 {
					errs <- errors.New("record " + jti + " not readable after Append returned")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	es := allEntries(t, st)
	if len(es) != total {
		t.Fatalf("%d records, want %d", len(es), total)
	}
	checkContiguous(t, es)
	seen := jtis(t, es)
	for i := range total {
		if n := seen[jtiOf(i)]; n != 1 {
			t.Errorf("%s written %d times", jtiOf(i), n)
		}
	}
	r := verifyStore(t, st, sealer)
	if r.Problem != nil || r.Records != total || r.LastCheckpoint != total {
		t.Errorf("report %+v (problem %v), want intact, %d records, final checkpoint at %d", r, r.Problem, total, total)
	}
	// Group commit: 64 callers waiting at once share transactions.
	if n := transactions.Load(); n >= total {
		t.Errorf("%d transactions for %d records: no batching", n, total)
	} else {
		t.Logf("%d records in %d transactions", total, n)
	}
}

func TestWriterAppendIsCommitted(t *testing.T) {
	st := openStore(t, t.TempDir())
	clk := newClock()
	w := startWriter(t, &audit.Writer{Store: st, Node: "node-b", Now: clk.Now})
	ctx := t.Context()
	for i := 1; i <= 20; i++ {
		clk.Advance(time.Second)
		r := sampleRecord(i, jtiOf(i))
		r.Time, r.Node = time.Time{}, "" // the writer fills them in
		if err := w.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		es, err := st.AuditEntries(ctx, int64(i-1), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Seq != int64(i) {
			t.Fatalf("after Append %d the store holds %d records after %d", i, len(es), i-1)
		}
		got, err := audit.Decode(es[0].Body)
		if err != nil {
			t.Fatal(err)
		}
		if got.JTI != jtiOf(i) || got.Node != "node-b" || !got.Time.Equal(clk.Now()) {
			t.Fatalf("record %d = jti %q node %q time %v; want %q, node-b, %v", i, got.JTI, got.Node, got.Time, jtiOf(i), clk.Now())
		}
	}
}

func TestWriterEnqueueFlushOnClose(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		w := startWriter(t, &audit.Writer{Store: st})
		ctx := t.Context()
		for i := range 1000 {
			if err := w.Enqueue(ctx, sampleRecord(i, jtiOf(i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		es := allEntries(t, st)
		if len(es) != 1000 {
			t.Fatalf("%d records after Close, want 1000", len(es))
		}
		checkContiguous(t, es)
	})

	t.Run("queue still full when Close starts", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		release := make(chan struct{})
		entered := make(chan struct{}, 100)
		blocked := hookStore{AuditStore: st, appendAudit: func(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
			entered <- struct{}{}
			<-release
			return st.AppendAudit(ctx, mark, build)
		}}
		w := startWriter(t, &audit.Writer{Store: blocked, QueueSize: 100})
		ctx := t.Context()
		// One record for the writer to block on, then a full queue.
		for i := range 101 {
			if err := w.Enqueue(ctx, sampleRecord(i, jtiOf(i))); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				<-entered
			}
		}
		closed := make(chan error, 1)
		go func() { closed <- w.Close(ctx) }()
		// Wait until Close has shut the door. The queue is full, so a probe
		// is never accepted: it times out until Close, then fails with
		// ErrClosed.
		deadline := time.Now().Add(5 * time.Second)
		for {
			probe, cancel := context.WithTimeout(ctx, time.Millisecond)
			err := w.Enqueue(probe, sampleRecord(0, "late"))
			cancel()
			if errors.Is(err, audit.ErrClosed) {
				break
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("probe into a full queue = %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatal("Close did not start")
			}
		}
		if n := w.QueueLen(); n != 100 {
			t.Fatalf("queue holds %d records when Close starts, want 100", n)
		}
		close(release)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		es := allEntries(t, st)
		if len(es) != 101 {
			t.Fatalf("%d records after Close, want 101", len(es))
		}
		checkContiguous(t, es)
		if jtis(t, es)["late"] != 0 {
			t.Error("a record refused with ErrClosed was written")
		}
	})

	t.Run("Close gives up at the deadline", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		release := make(chan struct{})
		blocked := hookStore{AuditStore: st, appendAudit: func(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
			<-release
			return st.AppendAudit(ctx, mark, build)
		}}
		w := startWriter(t, &audit.Writer{Store: blocked})
		defer close(release)
		if err := w.Enqueue(t.Context(), sampleRecord(1, jtiOf(1))); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close with a stuck store = %v, want the deadline", err)
		}
	})
}

func TestWriterClosed(t *testing.T) {
	st := openStore(t, t.TempDir())
	w := startWriter(t, &audit.Writer{Store: st})
	ctx := t.Context()
	if err := w.Append(ctx, sampleRecord(1, jtiOf(1))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ctx, sampleRecord(2, jtiOf(2))); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := w.Enqueue(ctx, sampleRecord(3, jtiOf(3))); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if n := len(allEntries(t, st)); n != 1 {
		t.Errorf("%d records, want 1", n)
	}
}

func TestWriterBackpressure(t *testing.T) {
	st := openStore(t, t.TempDir())
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	blocked := hookStore{AuditStore: st, appendAudit: func(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
		entered <- struct{}{}
		<-release
		return st.AppendAudit(ctx, mark, build)
	}}
	const timeout = 100 * time.Millisecond
	w := startWriter(t, &audit.Writer{Store: blocked, QueueSize: 4, EnqueueTimeout: timeout})
	ctx := t.Context()

	// The first record is taken by the writer, which then blocks in the
	// store; an Append waiting for it is accepted.
	firstDone := make(chan error, 1)
	go func() { firstDone <- w.Append(ctx, sampleRecord(0, "accepted-0")) }()
	<-entered
	accepted := []string{"accepted-0"}
	// Four more fill the queue without waiting.
	for i := 1; i <= 4; i++ {
		jti := "accepted-" + string(rune('0'+i))
		if err := w.Enqueue(ctx, sampleRecord(i, jti)); err != nil {
			t.Fatalf("Enqueue %d into a queue with room: %v", i, err)
		}
		accepted = append(accepted, jti)
	}
	if n := w.QueueLen(); n != 4 {
		t.Fatalf("QueueLen = %d, want 4", n)
	}

	// The queue is full: callers wait EnqueueTimeout, then fail loudly.
	for name, call := range map[string]func(context.Context, audit.Record) error{"Enqueue": w.Enqueue, "Append": w.Append} {
		start := time.Now()
		err := call(ctx, sampleRecord(9, "refused-"+name))
		d := time.Since(start)
		if !errors.Is(err, audit.ErrBackpressure) {
			t.Errorf("%s into a full queue = %v, want ErrBackpressure", name, err)
		}
		if d < timeout || d > 20*timeout {
			t.Errorf("%s into a full queue failed after %v, want about %v", name, d, timeout)
		}
	}
	// A caller's own deadline wins over EnqueueTimeout.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	err := w.Enqueue(short, sampleRecord(9, "refused-ctx"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Enqueue with a 10ms deadline into a full queue = %v, want DeadlineExceeded", err)
	}
	select {
	case err := <-firstDone:
		t.Fatalf("Append returned %v before its record could commit", err)
	default:
	}

	// Unblocked, every accepted record is written and nothing else.
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatalf("the first Append: %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	es := allEntries(t, st)
	checkContiguous(t, es)
	seen := jtis(t, es)
	for _, jti := range accepted {
		if seen[jti] != 1 {
			t.Errorf("accepted record %s written %d times", jti, seen[jti])
		}
	}
	if len(es) != len(accepted) {
		t.Errorf("%d records written, want the %d accepted: %v", len(es), len(accepted), seen)
	}
}

func TestWriterStoreFailure(t *testing.T) {
	boom := errors.New("disk on fire")
	fs := &failingStore{err: boom}
	var logBuf bytes.Buffer
	w := startWriter(t, &audit.Writer{Store: fs, Log: slog.New(slog.NewJSONHandler(&logBuf, nil))})
	ctx := t.Context()

	queued := sampleRecord(1, "queued-jti")
	want, err := audit.Encode(&queued)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Enqueue(ctx, queued); err != nil {
		t.Fatalf("Enqueue = %v; the failure comes later, from the store", err)
	}
	waited := sampleRecord(2, "waited-jti")
	start := time.Now()
	err = w.Append(ctx, waited)
	if !errors.Is(err, boom) {
		t.Fatalf("Append over a failing store = %v, want %v", err, boom)
	}
	// Retried: four attempts, 50+200+450ms of back-off in between.
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("Append failed after %v, before the retries could run", d)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := fs.calls.Load(); n < 4 || n%4 != 0 {
		t.Errorf("%d AppendAudit calls, want 4 per batch", n)
	}

	// The record nobody waited for is in the log in full; the one whose
	// caller got the error is not logged as lost.
	var logged []string
	sc := bufio.NewScanner(&logBuf)
	for sc.Scan() {
		var line struct {
			Msg    string `json:"msg"`
			Record string `json:"record"`
			Err    string `json:"err"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if line.Record != "" {
			logged = append(logged, line.Record)
			if !strings.Contains(line.Err, boom.Error()) {
				t.Errorf("log line %q does not carry the store error", sc.Text())
			}
		}
	}
	if !slices.Equal(logged, []string{string(want)}) {
		t.Errorf("logged records %q, want exactly the queued one %s", logged, want)
	}
}

func TestWriterCheckpoints(t *testing.T) {
	sealer := keys.NewSealer(masterKey(t, 1))
	st := openStore(t, t.TempDir())
	ks := newKeySet(t, st, sealer)
	clk := newClock()
	w := startWriter(t, &audit.Writer{
		Store: st, Node: "node-a", Sign: audit.KeySigner(ks, alg),
		CheckpointEvery: 10, CheckpointInterval: time.Hour, Now: clk.Now,
	})
	ctx := t.Context()
	for i := 1; i <= 25; i++ {
		if err := w.Append(ctx, sampleRecord(i, jtiOf(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Every ten records, and the final one on Close.
	if got, want := checkpointSeqs(t, st), []int64{10, 20, 25}; !slices.Equal(got, want) {
		t.Fatalf("checkpoints at %v, want %v", got, want)
	}
	es := allEntries(t, st)
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active, err := ks.Active(alg)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range cps {
		if !bytes.Equal(cp.Hash, es[cp.Seq-1].Hash) {
			t.Errorf("checkpoint %d hash %x, record hash %x", cp.Seq, cp.Hash, es[cp.Seq-1].Hash)
		}
		if kid := jwsKID(t, cp.JWS); kid != active.ID {
			t.Errorf("checkpoint %d signed by %q, want the active key %q", cp.Seq, kid, active.ID)
		}
	}
	r := verifyStore(t, st, sealer)
	if r.Problem != nil || r.Checkpoints != 3 || r.LastCheckpoint != 25 {
		t.Errorf("report %+v (problem %v)", r, r.Problem)
	}
}

func TestWriterCheckpointInterval(t *testing.T) {
	sealer := keys.NewSealer(masterKey(t, 1))
	st := openStore(t, t.TempDir())
	ks := newKeySet(t, st, sealer)
	clk := newClock()
	// The writer acknowledges a batch before it decides whether to
	// checkpoint, and asks the clock only for that decision (the records
	// carry their own time, the ticker is an hour away). Counting the calls
	// tells the test when the decision for its last Append has been made,
	// so that advancing the clock cannot overtake it.
	var nowCalls atomic.Int64
	now := func() time.Time { nowCalls.Add(1); return clk.Now() }
	w := startWriter(t, &audit.Writer{
		Store: st, Sign: audit.KeySigner(ks, alg),
		CheckpointEvery: 1000, CheckpointInterval: time.Hour, Now: now,
	})
	ctx := t.Context()
	appendN := func(from, to int) {
		for i := from; i <= to; i++ {
			if err := w.Append(ctx, sampleRecord(i, jtiOf(i))); err != nil {
				t.Fatal(err)
			}
			// One call at Start, then one per batch.
			deadline := time.Now().Add(5 * time.Second)
			for nowCalls.Load() < int64(1+i) {
				if time.Now().After(deadline) {
					t.Fatalf("the writer asked the clock %d times after record %d, want %d", nowCalls.Load(), i, 1+i)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	appendN(1, 3)
	clk.Advance(59 * time.Minute)
	appendN(4, 4) // not yet an hour: no checkpoint
	clk.Advance(2 * time.Minute)
	cpTime := clk.Now()
	appendN(5, 5) // an hour since Start: checkpoint at 5
	appendN(6, 7) // no time has passed since
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := checkpointSeqs(t, st), []int64{5, 7}; !slices.Equal(got, want) {
		t.Fatalf("checkpoints at %v, want %v (interval at 5, final at 7)", got, want)
	}
	if !cps[0].CreatedAt.Equal(cpTime) {
		t.Errorf("checkpoint 5 created at %v, want the injected %v", cps[0].CreatedAt, cpTime)
	}
	if r := verifyStore(t, st, sealer); r.Problem != nil {
		t.Error(r.Problem)
	}
}

func TestWriterCheckpointFailure(t *testing.T) {
	st := openStore(t, t.TempDir())
	var logBuf bytes.Buffer
	w := startWriter(t, &audit.Writer{
		Store: st, CheckpointEvery: 2, CheckpointInterval: time.Hour,
		Sign: func([]byte) (string, error) { return "", errors.New("hsm unplugged") },
		Log:  slog.New(slog.NewTextHandler(&logBuf, nil)),
	})
	ctx := t.Context()
	for i := 1; i <= 5; i++ {
		if err := w.Append(ctx, sampleRecord(i, jtiOf(i))); err != nil {
			t.Fatalf("Append with a failing signer: %v", err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(allEntries(t, st)); n != 5 {
		t.Errorf("%d records, want 5", n)
	}
	if got := checkpointSeqs(t, st); len(got) != 0 {
		t.Errorf("checkpoints %v, want none", got)
	}
	if !strings.Contains(logBuf.String(), "hsm unplugged") {
		t.Errorf("the signing failure is not logged: %s", logBuf.String())
	}
}

// TestDirectAndWriter interleaves a CLI (Direct, its own Store on the
// file) and a server (Writer): one chain, contiguous, that verifies.
func TestDirectAndWriter(t *testing.T) {
	sealer := keys.NewSealer(masterKey(t, 1))
	dir := t.TempDir()
	server := openStore(t, dir)
	cli := openStore(t, dir)
	ks := newKeySet(t, server, sealer)
	w := startWriter(t, &audit.Writer{Store: server, Node: "server", Sign: audit.KeySigner(ks, alg), CheckpointEvery: 25})
	d := audit.Direct{Store: cli, Node: "cli"}
	ctx := t.Context()

	n := 0
	next := func() audit.Record {
		n++
		r := sampleRecord(n, jtiOf(n))
		r.Node = "" // each appender names its own
		return r
	}
	for range 50 {
		if err := d.Append(ctx, next()); err != nil {
			t.Fatal(err)
		}
		if err := w.Append(ctx, next()); err != nil {
			t.Fatal(err)
		}
	}
	// And at the same time.
	var wg sync.WaitGroup
	var mu sync.Mutex
	recs := make([]audit.Record, 0, 200)
	for range 200 {
		recs = append(recs, next())
	}
	errs := make(chan error, len(recs))
	for i, r := range recs {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				err = d.Enqueue(ctx, r)
			} else {
				err = w.Append(ctx, r)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	es := allEntries(t, server)
	if len(es) != n {
		t.Fatalf("%d records, want %d", len(es), n)
	}
	checkContiguous(t, es)
	nodes := map[string]int{}
	for _, e := range es {
		r, err := audit.Decode(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		nodes[r.Node]++
	}
	if nodes["cli"] != n/2 || nodes["server"] != n/2 {
		t.Errorf("records by node %v, want %d each", nodes, n/2)
	}
	r := verifyStore(t, cli, sealer)
	if r.Problem != nil || r.Records != int64(n) || r.Checkpoints == 0 {
		t.Errorf("report %+v (problem %v), want intact with checkpoints", r, r.Problem)
	}
}
