package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
)

// Errors from Append and Enqueue.
var (
	// ErrBackpressure: the queue stayed full for EnqueueTimeout.
	ErrBackpressure = errors.New("audit: queue full")
	// ErrClosed: the writer is shutting down.
	ErrClosed = errors.New("audit: writer closed")
)

// Appender is what the rest of Sigil writes records through: Writer on a
// server, Direct in a CLI command.
type Appender interface {
	// Append writes r and returns once it is durable: committed, or in the
	// writer's journal (see Journal), from which a crash cannot lose it.
	Append(ctx context.Context, r Record) error
	// Enqueue accepts r for writing without waiting for the commit. It
	// still never drops r: a full queue makes it wait, then fail.
	Enqueue(ctx context.Context, r Record) error
}

// Defaults for Writer's zero fields.
const (
	DefaultQueueSize          = 8192
	DefaultMaxBatch           = 1024
	DefaultEnqueueTimeout     = 5 * time.Second
	DefaultCheckpointEvery    = 10_000
	DefaultCheckpointInterval = 10 * time.Second
)

// Linger is how long the writer waits to fill a batch under concurrent
// load, and lingerAfter the previous batch size that counts as such load.
// With a journal nobody waits for the batch, so the writer gathers records
// for JournalLinger instead (Flush, Close and a full batch cut it short;
// after a Flush it still gathers for Linger, so that the token exchanges
// of a moment, which each wait for their record's commit, share one):
// at ten thousand tokens a second a batch of a thousand records, whose
// commit rewrites each index's last page once instead of forty times. The store
// then trails the journal by that much, which only a reader in another
// process can see. The writer starts a new journal segment once the
// current one passes JournalRotateSize.
const (
	Linger            = 2 * time.Millisecond
	lingerAfter       = 4
	JournalLinger     = 100 * time.Millisecond
	JournalRotateSize = 4 << 20
	// journalPrefault is how far ahead of the journal's end the writer
	// readies pages after each batch: more than a batch gathered over
	// JournalLinger at ten thousand records a second.
	journalPrefault = 2 << 20
	// appendTimeout bounds one batch's append.
	appendTimeout = 10 * time.Second
)

// Writer appends records in batches (group commit) from one goroutine, off
// the request path. Set the fields, call Start, and Close on shutdown.
type Writer struct {
	Store sigil.AuditStore
	// Node names this process in its records.
	Node string
	// QueueSize bounds the records waiting to be written.
	QueueSize int
	// MaxBatch bounds the records written in one transaction.
	MaxBatch int
	// EnqueueTimeout is how long a caller waits for room in a full queue
	// before failing with ErrBackpressure.
	EnqueueTimeout time.Duration
	// Sign signs checkpoint payloads (see KeySigner); nil writes none.
	Sign func(payload []byte) (string, error)
	// CheckpointEvery and CheckpointInterval say when to checkpoint: after
	// that many records or that much time with new records, whichever
	// comes first.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Log receives write failures; nil means slog.Default().
	Log *slog.Logger
	// Journal, when set, is written before the store: Append returns once
	// the record is in the journal, and Start first appends the records a
	// crash left in it (see Journal). The Writer closes it.
	Journal *Journal
	// JournalRotateSize is the journal segment size at which the writer
	// starts a new segment; 0 means JournalRotateSize.
	JournalRotateSize int64
	// JournalLinger is how long the writer gathers a batch when it has a
	// journal, unless a full batch is waiting; 0 means JournalLinger.
	JournalLinger time.Duration

	mu      sync.RWMutex // guards closed against sends on a closed queue
	closed  bool
	queue   chan *pending
	wake    chan struct{} // ends the writer's linger early
	stopped chan struct{}

	jmu  sync.Mutex // orders journal writes with queue sends
	jseq int64      // the last journal sequence number written

	// Owned by the run goroutine.
	head      sigil.AuditHead // the last record this writer appended
	cpSeq     int64
	cpTime    time.Time
	committed int64 // the journal mark of the last committed batch
	oldLast   int64 // the last record in the old journal segment, 0 if none
	failed    bool  // a batch was left in the journal at Close
}

// pending is a queued record, or, with a nil body, a Flush barrier.
type pending struct {
	body []byte
	ix   sigil.AuditIndex
	jseq int64      // its journal sequence number, 0 without a journal
	ack  chan error // nil: nobody waits
}

func (w *Writer) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Start appends what the journal holds beyond the store's mark, if there
// is a journal, and starts the writing goroutine.
func (w *Writer) Start() error {
	if w.QueueSize <= 0 {
		w.QueueSize = DefaultQueueSize
	}
	if w.MaxBatch <= 0 {
		w.MaxBatch = DefaultMaxBatch
	}
	if w.EnqueueTimeout <= 0 {
		w.EnqueueTimeout = DefaultEnqueueTimeout
	}
	if w.CheckpointEvery <= 0 {
		w.CheckpointEvery = DefaultCheckpointEvery
	}
	if w.CheckpointInterval <= 0 {
		w.CheckpointInterval = DefaultCheckpointInterval
	}
	if w.JournalRotateSize <= 0 || w.JournalRotateSize > journalSegmentSize/2 {
		w.JournalRotateSize = JournalRotateSize
	}
	if w.JournalLinger <= 0 {
		w.JournalLinger = JournalLinger
	}
	if w.Log == nil {
		w.Log = slog.Default()
	}
	if w.Journal != nil {
		if _, err := w.recover(context.Background()); err != nil {
			return err
		}
	}
	w.queue = make(chan *pending, w.QueueSize)
	w.wake = make(chan struct{}, 1)
	w.stopped = make(chan struct{})
	w.cpTime = w.now()
	go w.run()
	return nil
}

// recover appends the journal's records after the store's mark, in
// batches that move the mark, starts the journal afresh, and returns how
// many records it appended.
func (w *Writer) recover(ctx context.Context) (int64, error) {
	j := w.Journal
	mark, err := w.Store.JournalSeq(ctx, j.ID())
	if err != nil {
		return 0, fmt.Errorf("audit: recover journal: %w", err)
	}
	w.jseq = mark
	var batch []*pending
	for _, rec := range j.Records() {
		if rec.Seq <= mark {
			continue
		}
		ix, err := IndexOf(rec.Body)
		if err != nil {
			return 0, fmt.Errorf("audit: recover journal record %d: %w", rec.Seq, err)
		}
		batch = append(batch, &pending{body: rec.Body, ix: ix, jseq: rec.Seq})
		w.jseq = rec.Seq
		if len(batch) == w.MaxBatch {
			if err := w.append(batch); err != nil {
				return 0, fmt.Errorf("audit: recover journal: %w", err)
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := w.append(batch); err != nil {
			return 0, fmt.Errorf("audit: recover journal: %w", err)
		}
	}
	n := w.jseq - mark
	if n > 0 {
		w.Log.Info("audit: appended records a crash left in the journal", "records", n)
	}
	w.committed = w.jseq
	return n, j.Reset()
}

// Append implements Appender: it returns once r has committed, or, with a
// journal, once r is in the journal.
func (w *Writer) Append(ctx context.Context, r Record) error {
	if w.Journal != nil {
		return w.Enqueue(ctx, r)
	}
	p, err := w.pending(r, true)
	if err != nil {
		return err
	}
	if err := w.submit(ctx, p); err != nil {
		return err
	}
	select {
	case err := <-p.ack:
		return err
	case <-ctx.Done():
		// The record is queued and will still be written.
		return ctx.Err()
	}
}

// Enqueue implements Appender: it returns once r is queued (and in the
// journal, if there is one).
func (w *Writer) Enqueue(ctx context.Context, r Record) error {
	p, err := w.pending(r, false)
	if err != nil {
		return err
	}
	return w.submit(ctx, p)
}

// Flush returns once every record queued before it has committed.
func (w *Writer) Flush(ctx context.Context) error {
	p := &pending{ack: make(chan error, 1)}
	if err := w.submit(ctx, p); err != nil {
		return err
	}
	w.nudge()
	select {
	case err := <-p.ack:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// QueueLen is the number of records waiting to be written.
func (w *Writer) QueueLen() int { return len(w.queue) }

func (w *Writer) pending(r Record, wait bool) (*pending, error) {
	if r.Time.IsZero() {
		r.Time = w.now()
	}
	if r.Node == "" {
		r.Node = w.Node
	}
	b, err := Encode(&r)
	if err != nil {
		return nil, err
	}
	p := &pending{body: b, ix: index(&r)}
	if wait {
		p.ack = make(chan error, 1)
	}
	return p, nil
}

// submit queues p, waiting up to EnqueueTimeout for room (a Flush barrier
// at least DefaultEnqueueTimeout).
func (w *Writer) submit(ctx context.Context, p *pending) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	// A Flush barrier adds no record: it may wait for room longer than a
	// record, which a short EnqueueTimeout would refuse under load.
	timeout := w.EnqueueTimeout
	if p.body == nil {
		timeout = max(timeout, DefaultEnqueueTimeout)
	}
	if w.Journal != nil {
		return w.submitJournaled(ctx, p, timeout)
	}
	select {
	case w.queue <- p:
		return nil
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case w.queue <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrBackpressure
	}
}

// submitJournaled writes p to the journal and queues it, both under jmu
// so that queue order is journal order, the order the marks assume. It
// first waits for room in the queue (polling: a full queue is the rare
// case), so that a record in the journal is always in the queue too.
func (w *Writer) submitJournaled(ctx context.Context, p *pending, timeout time.Duration) error {
	var deadline time.Time
	for {
		w.jmu.Lock()
		if len(w.queue) < cap(w.queue) {
			break
		}
		w.jmu.Unlock()
		if deadline.IsZero() {
			deadline = time.Now().Add(timeout)
		} else if time.Now().After(deadline) {
			return ErrBackpressure
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	defer w.jmu.Unlock()
	if p.body != nil {
		if err := w.Journal.Write(w.jseq+1, p.body); err != nil {
			if errors.Is(err, ErrJournalFull) {
				return fmt.Errorf("%w: %w", ErrBackpressure, err)
			}
			return err
		}
		w.jseq++
		p.jseq = w.jseq
	}
	w.queue <- p // never blocks: only senders holding jmu add to it
	if len(w.queue) >= w.fullBatch() {
		w.nudge()
	}
	return nil
}

// fullBatch is how many queued records, with the one the writer holds,
// make a full batch: the writer stops lingering once the queue has them.
func (w *Writer) fullBatch() int {
	return min(w.MaxBatch-1, cap(w.queue))
}

// nudge ends the writer's linger, if it is lingering.
func (w *Writer) nudge() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Close stops accepting records, writes every queued one, writes a final
// checkpoint and returns, or returns ctx's error if that takes too long.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.queue == nil { // never started: nothing to flush
		w.closed = true
		w.mu.Unlock()
		if w.Journal != nil {
			return w.Journal.Close()
		}
		return nil
	}
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	w.nudge()
	select {
	case <-w.stopped:
		return nil
	case <-ctx.Done():
		// Not silent: say how many records the exit leaves unwritten.
		n := len(w.queue)
		w.Log.Error("audit: shutting down before the queue was written", "unwritten_records", n)
		return fmt.Errorf("audit: flush on close: %d records unwritten: %w", n, ctx.Err())
	}
}

func (w *Writer) run() {
	defer close(w.stopped)
	tick := time.NewTicker(w.CheckpointInterval)
	defer tick.Stop()
	batch := make([]*pending, 0, w.MaxBatch)
	last := 0 // the size of the previous batch
	for {
		var p *pending
		var ok bool
		select {
		case p, ok = <-w.queue:
		case <-tick.C:
			w.maybeCheckpoint(false)
			continue
		}
		if !ok {
			w.maybeCheckpoint(true)
			w.closeJournal()
			return
		}
		batch = append(batch[:0], p)
		// Under concurrent load (the last batch was not small), wait a
		// moment for more records: every commit rewrites the index pages
		// it touches, so fewer, larger batches cost far less per record
		// (PostgreSQL's commit_delay, for the same reason). A lone
		// request never waits.
		var linger <-chan time.Time
		var timer *time.Timer
		switch {
		case w.Journal != nil && len(w.queue) < w.fullBatch():
			// Nobody waits for this batch: let a large one gather in the
			// queue, without waking this goroutine for each record. Flush
			// and Close cut the wait short, and so does the record that
			// completes a full batch (submitJournaled): at more than
			// MaxBatch records per JournalLinger the writer must not
			// wait, or it would cap the trail at that rate.
			t := time.NewTimer(w.JournalLinger)
			select {
			case <-t.C:
			case <-w.wake:
				t.Stop()
				// Someone waits for a commit (Flush: a token exchange,
				// see issuer): gather for Linger still, so that under
				// load the waiters of a moment share one commit.
				timer = time.NewTimer(Linger)
				linger = timer.C
			}
		case last >= lingerAfter:
			timer = time.NewTimer(Linger)
			linger = timer.C
		}
	drain:
		for len(batch) < w.MaxBatch {
			select {
			case p, ok := <-w.queue:
				if !ok {
					break drain
				}
				batch = append(batch, p)
			default:
				if linger == nil {
					break drain
				}
				select {
				case p, ok := <-w.queue:
					if !ok {
						break drain
					}
					batch = append(batch, p)
				case <-linger:
					break drain
				}
			}
		}
		if timer != nil {
			timer.Stop()
		}
		last = len(batch)
		if w.Journal != nil {
			w.writeJournaled(batch)
		} else {
			w.writeBatch(batch)
		}
		w.maybeCheckpoint(false)
	}
}

// writeBatch appends batch in one transaction, retrying a failing store a
// few times, and tells every waiting caller the outcome. Records nobody
// waits for are logged in full if they cannot be written, never dropped
// silently.
func (w *Writer) writeBatch(batch []*pending) {
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 50 * time.Millisecond)
		}
		if err = w.append(batch); err == nil {
			break
		}
	}
	for _, p := range batch {
		if p.ack != nil {
			p.ack <- err
		} else if err != nil && p.body != nil {
			w.Log.Error("audit record could not be written", "record", string(p.body), "err", err)
		}
	}
}

// writeJournaled appends a batch whose records are in the journal. They
// were acknowledged already, so a failing store is retried until it
// recovers: giving up would let a later batch's mark pass them. Meanwhile
// the queue fills and callers meet backpressure. On Close the writer stops
// retrying and leaves the records to the journal, for the next start.
func (w *Writer) writeJournaled(batch []*pending) {
	// Once a batch is given up, later ones must not commit: their mark
	// would pass it, and the next start would skip its records.
	for attempt := 0; !w.failed; attempt++ {
		err := w.append(batch)
		if err == nil {
			break
		}
		w.Log.Error("audit batch could not be written; retrying (the records are safe in the journal)", "records", len(batch), "attempt", attempt+1, "err", err)
		if w.isClosed() && attempt >= 3 {
			w.failed = true
			break
		}
		time.Sleep(min(time.Duration(attempt+1)*50*time.Millisecond, time.Second))
	}
	for _, p := range batch {
		if p.ack != nil {
			if w.failed {
				p.ack <- errors.New("audit: the store failed; records stay in the journal")
			} else {
				p.ack <- nil
			}
		}
	}
	w.manageJournal()
}

// closeJournal empties the journal if the store holds all of it, and
// closes it.
func (w *Writer) closeJournal() {
	if w.Journal == nil {
		return
	}
	if !w.failed && w.committed == w.jseq {
		if err := w.Journal.Reset(); err != nil {
			w.Log.Error("audit journal", "err", err)
		}
	}
	if err := w.Journal.Close(); err != nil {
		w.Log.Error("audit journal", "err", err)
	}
}

func (w *Writer) isClosed() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.closed
}

// manageJournal drops the old segment once the store holds its records,
// and rotates the current one when it is large.
func (w *Writer) manageJournal() {
	if w.failed {
		return
	}
	if w.oldLast > 0 && w.committed >= w.oldLast {
		if err := w.Journal.RemoveOld(); err != nil {
			w.Log.Error("audit journal", "err", err)
			return
		}
		w.oldLast = 0
	}
	if w.oldLast != 0 {
		w.jmu.Lock()
		size := w.Journal.Size()
		w.jmu.Unlock()
		w.Journal.Prefault(size, journalPrefault)
		return
	}
	w.jmu.Lock()
	var err error
	if w.Journal.Size() >= w.JournalRotateSize {
		if err = w.Journal.Rotate(); err == nil {
			w.oldLast = w.jseq
		}
	}
	size := w.Journal.Size()
	w.jmu.Unlock()
	if err != nil {
		w.Log.Error("audit journal", "err", err)
	}
	w.Journal.Prefault(size, journalPrefault)
}

// append writes batch's records (Flush barriers have none) in one
// transaction, with the journal mark of its last record.
func (w *Writer) append(batch []*pending) error {
	var mark sigil.JournalMark
	n := 0
	for _, p := range batch {
		if p.body != nil {
			n++
			if p.jseq > 0 {
				mark = sigil.JournalMark{Journal: w.Journal.ID(), Seq: p.jseq}
			}
		}
	}
	if n == 0 {
		return nil
	}
	var last sigil.AuditHead
	// A store that stopped answering fails the batch, which is retried
	// (the journal keeps its records), rather than holding the writer.
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	err := w.Store.AppendAudit(ctx, mark, func(head sigil.AuditHead) ([]sigil.AuditEntry, error) {
		entries := make([]sigil.AuditEntry, 0, n)
		prev := head.Hash
		seq := head.Seq
		for _, p := range batch {
			if p.body == nil {
				continue
			}
			seq++
			h := Hash(seq, prev, p.body)
			entries = append(entries, sigil.AuditEntry{Seq: seq, Prev: prev, Hash: h, Body: p.body, Index: p.ix})
			prev = h
		}
		last = sigil.AuditHead{Seq: seq, Hash: prev}
		return entries, nil
	})
	if err != nil {
		return fmt.Errorf("audit: append %d records: %w", n, err)
	}
	w.head = last
	if mark.Seq > 0 {
		w.committed = mark.Seq
	}
	return nil
}

// maybeCheckpoint signs the head when enough records or time have passed
// since the last checkpoint (or always, when final and there is anything
// new).
func (w *Writer) maybeCheckpoint(final bool) {
	if w.Sign == nil || w.head.Seq <= w.cpSeq {
		return
	}
	now := w.now()
	due := final || w.head.Seq-w.cpSeq >= int64(w.CheckpointEvery) || now.Sub(w.cpTime) >= w.CheckpointInterval
	if !due {
		return
	}
	cp, err := NewCheckpoint(w.head, w.Node, now, w.Sign)
	if err == nil {
		err = w.Store.AddCheckpoint(context.Background(), cp)
	}
	if err != nil {
		w.Log.Error("audit checkpoint failed", "seq", w.head.Seq, "err", err)
		return
	}
	w.cpSeq, w.cpTime = w.head.Seq, now
}

// Direct appends each record in its own transaction, synchronously: for
// CLI commands, which write a handful of records and exit.
type Direct struct {
	Store sigil.AuditStore
	Node  string
}

// Append implements Appender.
func (d Direct) Append(ctx context.Context, r Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if r.Node == "" {
		r.Node = d.Node
	}
	b, err := Encode(&r)
	if err != nil {
		return err
	}
	return d.Store.AppendAudit(ctx, sigil.JournalMark{}, func(head sigil.AuditHead) ([]sigil.AuditEntry, error) {
		seq := head.Seq + 1
		return []sigil.AuditEntry{{Seq: seq, Prev: head.Hash, Hash: Hash(seq, head.Hash, b), Body: b, Index: index(&r)}}, nil
	})
}

// Enqueue implements Appender; for Direct it is Append.
func (d Direct) Enqueue(ctx context.Context, r Record) error { return d.Append(ctx, r) }

// Discard is an Appender that writes nothing: for a node run with the
// audit trail turned off (benchmarks only).
type Discard struct{}

// Append implements Appender.
func (Discard) Append(context.Context, Record) error { return nil }

// Enqueue implements Appender.
func (Discard) Enqueue(context.Context, Record) error { return nil }
