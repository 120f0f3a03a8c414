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
	// Append writes r and returns once it has committed.
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
const (
	Linger      = 2 * time.Millisecond
	lingerAfter = 4
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

	mu      sync.RWMutex // guards closed against sends on a closed queue
	closed  bool
	queue   chan *pending
	stopped chan struct{}

	// Owned by the run goroutine.
	head   sigil.AuditHead // the last record this writer appended
	cpSeq  int64
	cpTime time.Time
}

type pending struct {
	body []byte
	ix   sigil.AuditIndex
	ack  chan error // nil: nobody waits
}

func (w *Writer) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Start starts the writing goroutine.
func (w *Writer) Start() {
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
	if w.Log == nil {
		w.Log = slog.Default()
	}
	w.queue = make(chan *pending, w.QueueSize)
	w.stopped = make(chan struct{})
	w.cpTime = w.now()
	go w.run()
}

// Append implements Appender: it returns once r has committed.
func (w *Writer) Append(ctx context.Context, r Record) error {
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

// Enqueue implements Appender: it returns once r is queued.
func (w *Writer) Enqueue(ctx context.Context, r Record) error {
	p, err := w.pending(r, false)
	if err != nil {
		return err
	}
	return w.submit(ctx, p)
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

// submit queues p, waiting up to EnqueueTimeout for room.
func (w *Writer) submit(ctx context.Context, p *pending) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	select {
	case w.queue <- p:
		return nil
	default:
	}
	t := time.NewTimer(w.EnqueueTimeout)
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

// Close stops accepting records, writes every queued one, writes a final
// checkpoint and returns, or returns ctx's error if that takes too long.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.queue == nil { // never started: nothing to flush
		w.closed = true
		w.mu.Unlock()
		return nil
	}
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
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
		if last >= lingerAfter {
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
		w.writeBatch(batch)
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
		} else if err != nil {
			w.Log.Error("audit record could not be written", "record", string(p.body), "err", err)
		}
	}
}

func (w *Writer) append(batch []*pending) error {
	var last sigil.AuditHead
	err := w.Store.AppendAudit(context.Background(), func(head sigil.AuditHead) ([]sigil.AuditEntry, error) {
		entries := make([]sigil.AuditEntry, len(batch))
		prev := head.Hash
		for i, p := range batch {
			seq := head.Seq + int64(i) + 1
			h := Hash(seq, prev, p.body)
			entries[i] = sigil.AuditEntry{Seq: seq, Prev: prev, Hash: h, Body: p.body, Index: p.ix}
			prev = h
		}
		last = sigil.AuditHead{Seq: entries[len(entries)-1].Seq, Hash: prev}
		return entries, nil
	})
	if err != nil {
		return fmt.Errorf("audit: append %d records: %w", len(batch), err)
	}
	w.head = last
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
	return d.Store.AppendAudit(ctx, func(head sigil.AuditHead) ([]sigil.AuditEntry, error) {
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
