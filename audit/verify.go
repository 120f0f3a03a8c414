package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/verify"
)

// Report is the outcome of Verify.
type Report struct {
	// Records is how many records were read; Head the last one.
	Records int64
	Head    sigil.AuditHead
	// Checkpoints is how many checkpoints were checked.
	Checkpoints int
	// LastCheckpoint is the Seq of the newest checkpoint (0 if none):
	// records after it are protected by the chain alone.
	LastCheckpoint int64
	// Problem is the first problem found, nil when the trail is intact.
	Problem *Problem
}

// Problem names the first record (or checkpoint) where the trail is not
// what was written.
type Problem struct {
	// Seq is the record the problem is at.
	Seq int64
	// What says what is wrong, in a sentence.
	What string
}

func (p *Problem) Error() string { return fmt.Sprintf("audit record %d: %s", p.Seq, p.What) }

// pageSize is how many records Verify reads per store call.
const pageSize = 10_000

// Verify walks the whole chain and every checkpoint. It returns the first
// problem in Report.Problem; an error means the store could not be read.
// trusted is the set of keys checkpoints may be signed with (TrustedKeys).
//
// Verify reads pages ahead of the walk with up to two AuditEntries calls in
// flight, so st must be safe for concurrent use; none of those calls
// outlives Verify.
func Verify(ctx context.Context, st sigil.AuditStore, trusted verify.KeySet) (*Report, error) {
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: load checkpoints: %w", err)
	}
	bySeq := make(map[int64]sigil.AuditCheckpoint, len(cps))
	r := &Report{Checkpoints: len(cps)}
	for _, cp := range cps {
		if err := checkCheckpoint(ctx, cp, trusted); err != nil {
			r.Problem = &Problem{Seq: cp.Seq, What: "the checkpoint for this record is invalid: " + err.Error()}
			return r, nil
		}
		bySeq[cp.Seq] = cp
		r.LastCheckpoint = max(r.LastCheckpoint, cp.Seq)
	}

	ra := startReadAhead(ctx, st)
	defer ra.stop()
	h := sha256.New()
	prev := ZeroHash
	var seq int64
	buf := make([]byte, 0, sha256.Size)
	for {
		page, err := ra.entries(seq)
		if err != nil {
			return nil, fmt.Errorf("audit: read records after %d: %w", seq, err)
		}
		for _, e := range page {
			if p := checkEntry(h, &buf, seq, prev, e); p != nil {
				r.Problem = p
				return r, nil
			}
			if cp, ok := bySeq[e.Seq]; ok && !bytes.Equal(cp.Hash, buf) {
				r.Problem = &Problem{Seq: e.Seq, What: "does not match the signed checkpoint for it: the chain was rewritten up to here"}
				return r, nil
			}
			seq = e.Seq
			prev = append(prev[:0:0], buf...)
			r.Records++
		}
		// Only an empty page ends the walk: AuditEntries returns "up to"
		// limit records, so a short page may come from a store that caps
		// its pages, and stopping there would pass the unread rest unseen.
		if len(page) == 0 {
			break
		}
	}
	r.Head = sigil.AuditHead{Seq: seq, Hash: prev}
	if r.LastCheckpoint > seq {
		r.Problem = &Problem{Seq: seq + 1, What: fmt.Sprintf("is missing: the chain ends at record %d but a signed checkpoint vouches for record %d (the tail was truncated)", seq, r.LastCheckpoint)}
	}
	return r, nil
}

// readAhead reads pages of records ahead of Verify's walk, so that reading
// them (most of Verify's time) overlaps with hashing them and uses both
// cores of a small machine. While the walk checks a page, two reads are in
// flight: the page after its last record, and the one after that, read
// from where that page will end if it is as long as this one. A read from
// anywhere else than where the walk then goes on is waited for and dropped.
// A readAhead is used by one goroutine.
type readAhead struct {
	ctx    context.Context
	cancel context.CancelFunc
	st     sigil.AuditStore
	reads  []pageRead // in flight, in the order they were started
}

// pageRead is an AuditEntries call in flight: the page after after, which
// c delivers once.
type pageRead struct {
	after int64
	c     <-chan pageResult
}

// pageResult is what AuditEntries returned.
type pageResult struct {
	entries []sigil.AuditEntry
	err     error
}

// startReadAhead returns a readAhead over st; its reads are cancelled with
// ctx or by stop.
func startReadAhead(ctx context.Context, st sigil.AuditStore) *readAhead {
	ctx, cancel := context.WithCancel(ctx)
	return &readAhead{ctx: ctx, cancel: cancel, st: st}
}

// entries returns up to pageSize records with Seq > after, as
// st.AuditEntries does, and starts reading the two pages after them.
func (ra *readAhead) entries(after int64) ([]sigil.AuditEntry, error) {
	// Only a read from after returns the page asked for.
	ra.drop(after)
	if len(ra.reads) == 0 {
		ra.start(after)
	}
	res := <-ra.reads[0].c
	ra.reads = ra.reads[1:]
	if res.err != nil || len(res.entries) == 0 {
		return res.entries, res.err
	}
	// If every record checks out, the walk goes on from last; the page
	// after that is read from where it ends if it is as long as this one.
	last := res.entries[len(res.entries)-1].Seq
	ra.drop(last)
	if len(ra.reads) == 0 {
		ra.start(last)
	}
	ra.start(last + int64(len(res.entries)))
	return res.entries, nil
}

// start starts reading the page after after.
func (ra *readAhead) start(after int64) {
	c := make(chan pageResult, 1) // the goroutine never waits for a receiver
	go func() {
		es, err := ra.st.AuditEntries(ra.ctx, after, pageSize)
		c <- pageResult{entries: es, err: err}
	}()
	ra.reads = append(ra.reads, pageRead{after: after, c: c})
}

// drop waits for and discards the reads in flight up to the first one from
// after: those are guesses that missed, and their pages, or errors, are
// not the walk's.
func (ra *readAhead) drop(after int64) {
	for len(ra.reads) > 0 && ra.reads[0].after != after {
		<-ra.reads[0].c
		ra.reads = ra.reads[1:]
	}
}

// stop cancels the reads in flight and waits for them to end.
func (ra *readAhead) stop() {
	ra.cancel()
	for _, rd := range ra.reads {
		<-rd.c
	}
	ra.reads = nil
}

// checkEntry checks that e follows the record lastSeq whose hash is prev,
// and leaves e's recomputed hash in *buf.
func checkEntry(h hash.Hash, buf *[]byte, lastSeq int64, prev []byte, e sigil.AuditEntry) *Problem {
	switch {
	case e.Seq > lastSeq+1:
		return &Problem{Seq: lastSeq + 1, What: fmt.Sprintf("is missing (records %d to %d were deleted)", lastSeq+1, e.Seq-1)}
	case e.Seq != lastSeq+1:
		return &Problem{Seq: e.Seq, What: "is out of sequence"}
	}
	*buf = hashInto(h, (*buf)[:0], e.Seq, e.Prev, e.Body)
	if !bytes.Equal(*buf, e.Hash) {
		return &Problem{Seq: e.Seq, What: "was altered: its contents no longer match its hash"}
	}
	if !bytes.Equal(e.Prev, prev) {
		if lastSeq == 0 {
			return &Problem{Seq: e.Seq, What: "does not start the chain: a record was inserted before it or the first records were deleted"}
		}
		return &Problem{Seq: lastSeq, What: fmt.Sprintf("was altered, or a record was inserted or moved after it: record %d does not link to it", e.Seq)}
	}
	return nil
}
