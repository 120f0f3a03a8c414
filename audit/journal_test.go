package audit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/verify"
)

// The on-disk layout journal.go documents, which the torn-frame tests
// damage by hand: a segment header (magic, 16-byte id), then frames of a
// little-endian payload length, a CRC-32C, and the payload (an 8-byte
// journal sequence number and the record body).
const (
	segmentHeaderLen = 8 + 16
	frameOverhead    = 4 + 4 + 8
)

// errStoreDown is what the tests' broken stores return.
var errStoreDown = errors.New("store down")

// quiet is a logger for writers whose failures a test provokes on purpose.
var quiet = slog.New(slog.DiscardHandler)

// journalFile returns a new data directory and the journal's path in it,
// named as a server names it.
func journalFile(t *testing.T) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	return dir, filepath.Join(dir, "audit.journal")
}

// openJournal opens the journal at path, closed at the end of the test.
func openJournal(t *testing.T, path string) *audit.Journal {
	t.Helper()
	j, err := audit.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// encodedRecord is the body of sampleRecord(i, jtiOf(i)).
func encodedRecord(t *testing.T, i int) []byte {
	t.Helper()
	r := sampleRecord(i, jtiOf(i))
	b, err := audit.Encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeJournal makes a fresh journal at path holding records 1..n (journal
// sequence numbers 1..n) and closes it without resetting it. It returns
// the journal's id, the bodies, and the file offset of each frame.
func writeJournal(t *testing.T, path string, n int) (string, [][]byte, []int64) {
	t.Helper()
	j, err := audit.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Reset(); err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	var offsets []int64
	off := int64(segmentHeaderLen)
	for i := 1; i <= n; i++ {
		b := encodedRecord(t, i)
		if err := j.Write(int64(i), b); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
		bodies = append(bodies, b)
		offsets = append(offsets, off)
		off += int64(frameOverhead + len(b))
	}
	// The offsets the damage below aims at are only right if the layout is
	// the one described above.
	if j.Size() != off {
		t.Fatalf("segment in use: %d bytes, want %d by the documented layout", j.Size(), off)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return j.ID(), bodies, offsets
}

// readJournal is audit.ReadJournal, failing the test on an error.
func readJournal(t *testing.T, path string) []audit.JournalRecord {
	t.Helper()
	recs, err := audit.ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// journalJTIs decodes the jti of each journal record, in order.
func journalJTIs(t *testing.T, recs []audit.JournalRecord) []string {
	t.Helper()
	out := make([]string, 0, len(recs))
	for _, rec := range recs {
		r, err := audit.Decode(rec.Body)
		if err != nil {
			t.Fatalf("journal record %d: %v", rec.Seq, err)
		}
		out = append(out, r.JTI)
	}
	return out
}

// jtiRange is jtiOf(from) … jtiOf(to).
func jtiRange(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, jtiOf(i))
	}
	return out
}

// patchFile overwrites the bytes of path at off with b.
func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// byteAt reads the byte of path at off.
func byteAt(t *testing.T, path string, off int64) byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	return b[0]
}

// journalMark is the store's mark for journal id.
func journalMark(t *testing.T, st sigil.AuditStore, id string) int64 {
	t.Helper()
	seq, err := st.JournalSeq(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// wantTrail fails unless st holds records 1..n of sampleRecord, each
// exactly once and in order, in a chain that audit.Verify passes.
func wantTrail(t *testing.T, st sigil.AuditStore, n int) {
	t.Helper()
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = encodedRecord(t, i+1)
	}
	wantBodies(t, st, bodies)
	rep, err := audit.Verify(context.Background(), st, verify.KeySet{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Problem != nil || rep.Records != int64(n) {
		t.Fatalf("Verify: %d records, problem %v; want %d records intact", rep.Records, rep.Problem, n)
	}
}

// wantBodies fails unless st holds exactly bodies, in order, each record
// linked to the one before and hashed as audit.Hash says.
func wantBodies(t *testing.T, st sigil.AuditStore, bodies [][]byte) {
	t.Helper()
	es := allEntries(t, st)
	if len(es) != len(bodies) {
		seen := jtis(t, es)
		var missing, repeated []string
		for _, b := range bodies {
			r, err := audit.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			switch seen[r.JTI] {
			case 0:
				missing = append(missing, r.JTI)
			case 1:
			default:
				repeated = append(repeated, r.JTI)
			}
		}
		t.Fatalf("the store holds %d records, want %d; missing %v, repeated %v", len(es), len(bodies), missing, repeated)
	}
	checkContiguous(t, es)
	for i, e := range es {
		if !bytes.Equal(e.Body, bodies[i]) {
			t.Fatalf("record %d is %.80q, want %.80q", e.Seq, e.Body, bodies[i])
		}
	}
}

// appendRange appends records from..to of sampleRecord through w.
func appendRange(t *testing.T, w *audit.Writer, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := w.Append(t.Context(), sampleRecord(i, jtiOf(i))); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// flush is w.Flush, failing the test on an error.
func flush(t *testing.T, w *audit.Writer) {
	t.Helper()
	if err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// closeWriter closes w, allowing 5 s: a writer over a failing store needs
// about 300 ms after Close to give up (four attempts with back-off).
func closeWriter(t *testing.T, w *audit.Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// receive waits up to 5 s for ch, naming what it waits for on failure.
func receive(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// journalSnapshot is a copy of a journal's segments, by path, as a crash
// leaves them.
type journalSnapshot map[string][]byte

func snapshotJournal(t *testing.T, path string) journalSnapshot {
	t.Helper()
	s := journalSnapshot{}
	for _, p := range []string{path + ".old", path} {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		s[p] = b
	}
	return s
}

// restore puts the segments back, removing any the snapshot did not have.
func (s journalSnapshot) restore(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path + ".old", path} {
		b, ok := s[p]
		if !ok {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// journalFiles lists the files in dir that belong to the journal at path.
func journalFiles(t *testing.T, path string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), filepath.Base(path)) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestJournalRoundTrip(t *testing.T) {
	_, path := journalFile(t)
	j, err := audit.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(j.Records()); n != 0 {
		t.Fatalf("a new journal holds %d records", n)
	}
	id := j.ID()
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("journal id %q, want 16 random bytes in hex", id)
	}
	if err := j.Reset(); err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	for i := 1; i <= 5; i++ {
		b := encodedRecord(t, i)
		if err := j.Write(int64(i), b); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = openJournal(t, path)
	if j.ID() != id {
		t.Errorf("id after reopening %q, want %q", j.ID(), id)
	}
	recs := j.Records()
	if len(recs) != len(bodies) {
		t.Fatalf("reopened journal holds %d records, want %d", len(recs), len(bodies))
	}
	for i, rec := range recs {
		if rec.Seq != int64(i+1) || !bytes.Equal(rec.Body, bodies[i]) {
			t.Errorf("record %d = seq %d %.80q, want seq %d %.80q", i, rec.Seq, rec.Body, i+1, bodies[i])
		}
	}
	// ReadJournal reads the same without the lock the open journal holds.
	if got := readJournal(t, path); len(got) != len(recs) || got[len(got)-1].Seq != 5 {
		t.Errorf("ReadJournal returns %d records, want the same 5", len(got))
	}
}

func TestJournalTornTail(t *testing.T) {
	t.Run("damaged last frame", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			damage func(t *testing.T, path string, frame int64, body []byte)
		}{
			{"body byte flipped", func(t *testing.T, path string, frame int64, body []byte) {
				off := frame + frameOverhead + int64(len(body)/2)
				patchFile(t, path, off, []byte{byteAt(t, path, off) ^ 0x01})
			}},
			{"length zeroed", func(t *testing.T, path string, frame int64, body []byte) {
				if n := byteAt(t, path, frame); int(n) != (8+len(body))&0xff {
					t.Fatalf("frame at %d starts with %#x, not its length %d", frame, n, 8+len(body))
				}
				patchFile(t, path, frame, make([]byte, 4))
			}},
			{"sequence number changed", func(t *testing.T, path string, frame int64, body []byte) {
				var seq [8]byte
				binary.LittleEndian.PutUint64(seq[:], 4)
				patchFile(t, path, frame+8, seq[:])
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, path := journalFile(t)
				id, bodies, offsets := writeJournal(t, path, 3)
				tc.damage(t, path, offsets[2], bodies[2])
				j := openJournal(t, path)
				if j.ID() != id {
					t.Errorf("id %q, want %q", j.ID(), id)
				}
				recs := j.Records()
				if len(recs) != 2 {
					t.Fatalf("%d records survive a torn third frame, want 2", len(recs))
				}
				for i, rec := range recs {
					if rec.Seq != int64(i+1) || !bytes.Equal(rec.Body, bodies[i]) {
						t.Errorf("record %d = seq %d %.80q, want seq %d %.80q", i, rec.Seq, rec.Body, i+1, bodies[i])
					}
				}
			})
		}
	})

	t.Run("no whole header", func(t *testing.T) {
		for _, content := range []string{"", "SIGILAJ1", "SIGILAJ1" + "0123456789abcde"} {
			t.Run(fmt.Sprintf("%d bytes", len(content)), func(t *testing.T) {
				_, path := journalFile(t)
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
				j := openJournal(t, path)
				if n := len(j.Records()); n != 0 {
					t.Fatalf("%d records in a segment without a whole header", n)
				}
				// Empty, not broken: it takes records again after a reset.
				if err := j.Reset(); err != nil {
					t.Fatal(err)
				}
				if err := j.Write(1, encodedRecord(t, 1)); err != nil {
					t.Fatal(err)
				}
				if err := j.Close(); err != nil {
					t.Fatal(err)
				}
				if n := len(readJournal(t, path)); n != 1 {
					t.Errorf("%d records after a reset and a write, want 1", n)
				}
			})
		}
	})

	t.Run("wrong magic", func(t *testing.T) {
		_, path := journalFile(t)
		writeJournal(t, path, 3)
		patchFile(t, path, 0, []byte("SIGILAJ9"))
		for range 2 { // the failed open leaves no lock behind
			_, err := audit.OpenJournal(path)
			if err == nil || errors.Is(err, audit.ErrJournalLocked) || !strings.Contains(err.Error(), "not an audit journal") {
				t.Fatalf("OpenJournal on a file with the wrong magic = %v, want a not-a-journal error", err)
			}
		}
		if _, err := audit.ReadJournal(path); err == nil {
			t.Error("ReadJournal on a file with the wrong magic succeeds")
		}
	})
}

func TestJournalLock(t *testing.T) {
	dir, path := journalFile(t)
	st := openStore(t, dir)
	ctx := t.Context()
	first, err := audit.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := audit.OpenJournal(path); !errors.Is(err, audit.ErrJournalLocked) {
		t.Fatalf("second OpenJournal while the first is open = %v, want ErrJournalLocked", err)
	}
	// The holder has records the store lacks: a recovery must leave them
	// to it.
	if err := first.Reset(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := first.Write(int64(i), encodedRecord(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := audit.RecoverJournal(ctx, st, path)
	if n != 0 || err != nil {
		t.Fatalf("RecoverJournal on a held journal = %d, %v; want 0, nil", n, err)
	}
	if es := allEntries(t, st); len(es) != 0 {
		t.Fatalf("RecoverJournal on a held journal appended %d records", len(es))
	}
	if got := len(readJournal(t, path)); got != 3 {
		t.Fatalf("the held journal has %d records after RecoverJournal, want its 3", got)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Released, the same recovery appends them.
	n, err = audit.RecoverJournal(ctx, st, path)
	if n != 3 || err != nil {
		t.Fatalf("RecoverJournal after Close = %d, %v; want 3, nil", n, err)
	}
	wantTrail(t, st, 3)
	if got := journalMark(t, st, first.ID()); got != 3 {
		t.Errorf("mark %d, want 3", got)
	}
	j := openJournal(t, path)
	if n := len(j.Records()); n != 0 {
		t.Errorf("%d records in the journal after recovery, want it reset", n)
	}
}

func TestRecoverJournalWithoutJournal(t *testing.T) {
	dir, path := journalFile(t)
	st := openStore(t, dir)
	n, err := audit.RecoverJournal(t.Context(), st, path)
	if n != 0 || err != nil {
		t.Fatalf("RecoverJournal without a journal = %d, %v; want 0, nil", n, err)
	}
	if files := journalFiles(t, path); len(files) != 0 {
		t.Errorf("RecoverJournal without a journal created %v", files)
	}
	if es := allEntries(t, st); len(es) != 0 {
		t.Errorf("RecoverJournal without a journal appended %d records", len(es))
	}
}
