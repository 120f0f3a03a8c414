package audit

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/sigil-sts/sigil"
)

// A Journal is a server's local write-ahead file for audit records. The
// Writer appends each record to it, under a lock and in queue order,
// before the caller answers. The file is mapped shared into memory, so an
// append is a copy, with no system call; the pages belong to the file in
// the operating system's page cache, so the record survives kill -9 of
// the process as a committed SQLite transaction does (neither is fsynced). The records reach
// the store in large batches afterwards, each batch moving the journal's
// mark (sigil.JournalMark) in the same transaction, so after a crash
// Recover appends exactly the records after the mark. A token request
// thus costs one write(2) instead of a wait for a commit.
//
// The journal is two files: the current segment at its path, and, for a
// while after a rotation, the previous one at path+".old", removed once
// the store holds all of its records. Each segment starts with a header
// (magic and the journal's random id); each record is a frame: payload
// length, CRC-32C of the payload, and the payload (journal sequence number
// and record body); the zero-filled rest of a segment reads as its end. A
// frame torn by a crash fails its CRC and ends the segment: its write never
// returned, so nobody was answered for it.
//
// One process at a time holds a journal (a lock file beside it).
type Journal struct {
	path   string
	id     string
	m      []byte // the current segment, mapped
	size   int64  // bytes of it in use
	unlock func() error
	found  []JournalRecord // what OpenJournal found
}

// JournalRecord is a record read back from a journal.
type JournalRecord struct {
	Seq  int64
	Body []byte
}

const (
	journalMagic      = "SIGILAJ1"
	journalIDLen      = 16
	journalHeaderLen  = len(journalMagic) + journalIDLen
	frameHeaderLen    = 8 // length, CRC-32C
	maxJournalPayload = 1 << 20
)

// ErrJournalLocked: another process holds the journal.
var ErrJournalLocked = errors.New("audit: journal in use by another process")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenJournal locks the journal at path (creating it if needed) and reads
// back every record both segments hold (Records). A Writer given the
// journal appends the ones the store lacks when it starts, then resets it.
func OpenJournal(path string) (*Journal, error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	j := &Journal{path: path, unlock: unlock}
	recs, id, err := readJournal(path)
	if err != nil {
		unlock()
		return nil, err
	}
	j.found = recs
	if id == "" {
		var b [journalIDLen]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	j.id = id
	return j, nil
}

// ID is the journal's id, the key of its mark in the store.
func (j *Journal) ID() string { return j.id }

// Records returns the records OpenJournal read, oldest first.
func (j *Journal) Records() []JournalRecord { return j.found }

// ReadJournal returns the records in the journal at path, oldest first,
// without taking its lock: what a running server has acknowledged, some
// of it maybe not yet in the store.
func ReadJournal(path string) ([]JournalRecord, error) {
	for {
		// A rotation between reading the two segments would hide the
		// records it moved; it shows as a new file at path, so read again.
		before, err := os.Stat(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("audit: journal: %w", err)
		}
		recs, _, err := readJournal(path)
		if err != nil {
			return nil, err
		}
		after, err := os.Stat(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("audit: journal: %w", err)
		}
		if (before == nil) == (after == nil) && (before == nil || os.SameFile(before, after)) {
			return recs, nil
		}
	}
}

// readJournal reads the old segment, then the current one, and returns
// their records and the journal's id ("" when there is no segment yet).
func readJournal(path string) ([]JournalRecord, string, error) {
	var recs []JournalRecord
	id := ""
	for _, p := range []string{path + ".old", path} {
		segID, rs, err := readSegment(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if segID == "" {
			continue // created, crashed before its header was whole
		}
		if id != "" && segID != id {
			return nil, "", fmt.Errorf("audit: journal %s: segments of two journals (%s, %s)", path, id, segID)
		}
		id = segID
		recs = append(recs, rs...)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			return nil, "", fmt.Errorf("audit: journal %s: record %d follows %d", path, recs[i].Seq, recs[i-1].Seq)
		}
	}
	return recs, id, nil
}

// readSegment returns a segment's id and its whole frames. A missing or
// short header gives an empty id.
func readSegment(path string) (string, []JournalRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	hdr := make([]byte, journalHeaderLen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return "", nil, nil
	}
	if string(hdr[:len(journalMagic)]) != journalMagic {
		return "", nil, fmt.Errorf("audit: %s is not an audit journal", path)
	}
	id := hex.EncodeToString(hdr[len(journalMagic):])
	var recs []JournalRecord
	var fh [frameHeaderLen]byte
	for {
		if _, err := io.ReadFull(r, fh[:]); err != nil {
			break // the end, or a torn frame header
		}
		n := binary.LittleEndian.Uint32(fh[:4])
		if n < 8 || n > maxJournalPayload {
			break
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			break
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(fh[4:]) {
			break
		}
		recs = append(recs, JournalRecord{Seq: int64(binary.LittleEndian.Uint64(payload[:8])), Body: payload[8:]})
	}
	return id, recs, nil
}

// Reset starts the journal afresh: an empty current segment and no old
// one. Call it only when the store holds every record the journal held.
func (j *Journal) Reset() error {
	j.unmap()
	if err := j.create(j.path); err != nil {
		return err
	}
	if err := os.Remove(j.path + ".old"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: journal: %w", err)
	}
	return nil
}

// create makes a zero-filled segment of journalSegmentSize bytes with the
// header, under a temporary name renamed over path, and maps it.
func (j *Journal) create(path string) error {
	hdr, err := hex.DecodeString(j.id)
	if err != nil || len(hdr) != journalIDLen {
		return fmt.Errorf("audit: journal id %q", j.id)
	}
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("audit: journal: %w", err)
	}
	defer f.Close() // the mapping outlives the descriptor
	if _, err := f.Write(append([]byte(journalMagic), hdr...)); err != nil {
		return fmt.Errorf("audit: journal: %w", err)
	}
	if err := f.Truncate(journalSegmentSize); err != nil {
		return fmt.Errorf("audit: journal: %w", err)
	}
	m, err := mapFile(f, journalSegmentSize)
	if err != nil {
		return fmt.Errorf("audit: journal: map %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		unmapFile(m)
		return fmt.Errorf("audit: journal: %w", err)
	}
	j.m, j.size = m, int64(journalHeaderLen)
	return nil
}

// journalSegmentSize is a segment's fixed size. The writer rotates at
// JournalRotateSize, half of it; the other half holds what arrives
// before the old segment's records are all in the store, which the
// writer's bounded queue keeps far below it.
const journalSegmentSize = 2 * JournalRotateSize

// ErrJournalFull: the current segment has no room for the record.
var ErrJournalFull = errors.New("audit: journal segment full")

// Write appends one record: a copy into the mapped segment, no system
// call. The frame's length goes in last, so a crash in the middle of the
// copy leaves a zero length or a failing CRC, either of which ends the
// segment for replay.
func (j *Journal) Write(seq int64, body []byte) error {
	if j.m == nil {
		return errors.New("audit: journal not open")
	}
	n := frameHeaderLen + 8 + len(body)
	if 8+len(body) > maxJournalPayload {
		return fmt.Errorf("audit: journal: record of %d bytes is too large", len(body))
	}
	if j.size+int64(n) > int64(len(j.m)) {
		return ErrJournalFull
	}
	f := j.m[j.size : j.size+int64(n)]
	binary.LittleEndian.PutUint64(f[frameHeaderLen:], uint64(seq))
	copy(f[frameHeaderLen+8:], body)
	binary.LittleEndian.PutUint32(f[4:8], crc32.Checksum(f[frameHeaderLen:], castagnoli))
	binary.LittleEndian.PutUint32(f[:4], uint32(8+len(body)))
	j.size += int64(n)
	return nil
}

// Prefault readies the next ahead bytes of the current segment for
// writing, so that Write, which runs under the Writer's lock, never waits
// for the kernel to fault a page in: a lock holder stalled in a fault
// stalls every token request queued behind it. The caller passes the
// current Size (read under its lock); the pages are prepared without it.
func (j *Journal) Prefault(from, ahead int64) {
	m := j.m
	const page = 4096
	start := from &^ (page - 1)
	end := min(start+ahead, int64(len(m)))
	if start < end {
		prefault(m[start:end])
	}
}

// Size is how much of the current segment is in use, in bytes.
func (j *Journal) Size() int64 { return j.size }

// Rotate makes the current segment the old one and starts a new current
// segment. The old segment must be gone (RemoveOld) before the next
// rotation.
func (j *Journal) Rotate() error {
	if _, err := os.Stat(j.path + ".old"); err == nil {
		return errors.New("audit: journal: the old segment is still there")
	}
	if err := os.Rename(j.path, j.path+".old"); err != nil {
		return fmt.Errorf("audit: journal rotate: %w", err)
	}
	old, oldSize := j.m, j.size
	if err := j.create(j.path); err != nil {
		// Keep appending to the old segment: replay reads it first.
		os.Rename(j.path+".old", j.path)
		j.m, j.size = old, oldSize
		return err
	}
	unmapFile(old)
	return nil
}

// RemoveOld deletes the old segment, once the store holds its records.
func (j *Journal) RemoveOld() error {
	if err := os.Remove(j.path + ".old"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: journal: %w", err)
	}
	return nil
}

func (j *Journal) unmap() {
	if j.m != nil {
		unmapFile(j.m)
		j.m = nil
	}
}

// Close unmaps the journal and releases its lock; the segments stay.
func (j *Journal) Close() error {
	j.unmap()
	var err error
	if j.unlock != nil {
		err = j.unlock()
		j.unlock = nil
	}
	return err
}

// RecoverJournal appends to st what the journal at path holds beyond its
// mark, the records of a server that crashed before writing them, and
// empties the journal; it returns how many it appended. A journal a
// running server holds is left to that server (0, nil). Commands that read
// or extend the trail run it first, as a database recovers its own log
// when opened.
func RecoverJournal(ctx context.Context, st sigil.AuditStore, path string) (int64, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(path + ".old"); errors.Is(err, fs.ErrNotExist) {
			return 0, nil // no server ever kept a journal here
		}
	}
	j, err := OpenJournal(path)
	if errors.Is(err, ErrJournalLocked) || errors.Is(err, errors.ErrUnsupported) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer j.Close()
	w := &Writer{Store: st, Journal: j, MaxBatch: DefaultMaxBatch, Log: slog.Default()}
	return w.recover(ctx)
}
