package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
)

// auditTimeFormat is the layout of the "time" member of audit bodies, as
// package audit writes it: fixed width, so string order is time order.
const auditTimeFormat = "2006-01-02T15:04:05.000000000Z"

// auditRecord is a test record body, with the members stores filter on.
type auditRecord struct {
	Time     time.Time
	Event    string
	ClientID string
	Subject  string
	JTI      string
	// The tokens a token exchange issued JTI from.
	SubjectToken, ActorToken string
}

// body encodes r as package audit does: members left out when empty.
func (r auditRecord) body() []byte {
	b, err := json.Marshal(struct {
		Time         string `json:"time"`
		Event        string `json:"event"`
		ClientID     string `json:"client_id,omitempty"`
		Subject      string `json:"sub,omitempty"`
		JTI          string `json:"jti,omitempty"`
		SubjectToken string `json:"subject_token_jti,omitempty"`
		ActorToken   string `json:"actor_token_jti,omitempty"`
	}{r.Time.UTC().Format(auditTimeFormat), r.Event, r.ClientID, r.Subject, r.JTI, r.SubjectToken, r.ActorToken})
	if err != nil {
		panic(err)
	}
	return b
}

// chainHash is the hash the suite chains records with: SHA-256 over seq
// (8 bytes, big-endian), prev and body. Stores must not care what Hash
// is; package audit uses a different, tagged one.
func chainHash(seq int64, prev, body []byte) []byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	h.Write(n[:])
	h.Write(prev)
	h.Write(body)
	return h.Sum(nil)
}

// Chain returns a build function for AppendAudit that chains bodies from
// whatever head it is given, as package audit does, with the suite's own
// hash: SHA-256 over seq (8 bytes, big-endian), prev and body.
func Chain(bodies ...[]byte) func(sigil.AuditHead) ([]sigil.AuditEntry, error) {
	return func(head sigil.AuditHead) ([]sigil.AuditEntry, error) {
		es := make([]sigil.AuditEntry, len(bodies))
		prev := head.Hash
		for i, b := range bodies {
			seq := head.Seq + int64(i) + 1
			h := chainHash(seq, prev, b)
			ix, _ := audit.IndexOf(b) // bodies that are not JSON index nothing
			es[i] = sigil.AuditEntry{Seq: seq, Prev: prev, Hash: h, Body: b, Index: ix}
			prev = h
		}
		return es, nil
	}
}

func appendBodies(t *testing.T, s sigil.Store, bodies ...[]byte) {
	t.Helper()
	must(t, "AppendAudit", s.AppendAudit(t.Context(), sigil.JournalMark{}, Chain(bodies...)))
}

func appendRecords(t *testing.T, s sigil.Store, rs []auditRecord) {
	t.Helper()
	bodies := make([][]byte, len(rs))
	for i, r := range rs {
		bodies[i] = r.body()
	}
	appendBodies(t, s, bodies...)
}

func auditHead(t *testing.T, s sigil.Store) sigil.AuditHead {
	t.Helper()
	h, err := s.AuditHead(t.Context())
	must(t, "AuditHead", err)
	return h
}

// allAudit reads the whole chain through AuditEntries in small pages.
func allAudit(t *testing.T, s sigil.Store) []sigil.AuditEntry {
	t.Helper()
	var all []sigil.AuditEntry
	after := int64(0)
	for {
		page, err := s.AuditEntries(t.Context(), after, 7)
		must(t, fmt.Sprintf("AuditEntries(%d, 7)", after), err)
		if len(page) > 7 {
			t.Fatalf("AuditEntries(%d, 7) = %d entries", after, len(page))
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
}

// checkAuditChain fails t unless es is a whole chain: Seq 1, 2, …, the
// first Prev 32 zero bytes, every later Prev the Hash before it, every
// Hash the suite's.
func checkAuditChain(t *testing.T, es []sigil.AuditEntry) {
	t.Helper()
	prev := make([]byte, sha256.Size)
	for i, e := range es {
		if e.Seq != int64(i)+1 {
			t.Fatalf("entry %d has Seq %d, want %d: the chain has a gap or is out of order", i, e.Seq, i+1)
		}
		if !bytes.Equal(e.Prev, prev) {
			t.Fatalf("entry %d: Prev %x, want the previous Hash %x", e.Seq, e.Prev, prev)
		}
		if want := chainHash(e.Seq, e.Prev, e.Body); !bytes.Equal(e.Hash, want) {
			t.Fatalf("entry %d: Hash %x, want %x", e.Seq, e.Hash, want)
		}
		prev = e.Hash
	}
}

func wantHead(t *testing.T, s sigil.Store, what string, want sigil.AuditHead) {
	t.Helper()
	if diff := cmp.Diff(want, auditHead(t, s)); diff != "" {
		t.Errorf("%s: AuditHead (-want +got):\n%s", what, diff)
	}
}

func testAuditEmpty(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	wantHead(t, s, "empty chain", sigil.AuditHead{Seq: 0, Hash: make([]byte, sha256.Size)})
	es, err := s.AuditEntries(ctx, 0, 10)
	must(t, "AuditEntries", err)
	if len(es) != 0 {
		t.Errorf("AuditEntries on an empty chain = %d entries, want 0", len(es))
	}
	es, err = s.QueryAudit(ctx, sigil.AuditQuery{})
	must(t, "QueryAudit", err)
	if len(es) != 0 {
		t.Errorf("QueryAudit on an empty chain = %d entries, want 0", len(es))
	}
	cs, err := s.Checkpoints(ctx)
	must(t, "Checkpoints", err)
	if len(cs) != 0 {
		t.Errorf("Checkpoints on an empty store = %d, want 0", len(cs))
	}
}

func testAuditAppend(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	var heads []sigil.AuditHead
	var want []sigil.AuditEntry
	appendChecked := func(bodies ...[]byte) {
		t.Helper()
		build := Chain(bodies...)
		err := s.AppendAudit(ctx, sigil.JournalMark{}, func(h sigil.AuditHead) ([]sigil.AuditEntry, error) {
			heads = append(heads, sigil.AuditHead{Seq: h.Seq, Hash: bytes.Clone(h.Hash)})
			es, err := build(h)
			want = append(want, es...)
			return es, err
		})
		must(t, "AppendAudit", err)
	}
	body := func(i int) []byte {
		return auditRecord{Time: base.Add(time.Duration(i) * time.Second), Event: "token.issued", JTI: fmt.Sprint("j", i)}.body()
	}

	appendChecked(body(1))
	appendChecked(body(2), body(3), body(4), body(5), body(6))
	appendChecked() // zero entries: nothing changes
	appendChecked(body(7))

	wantHeads := []sigil.AuditHead{
		{Seq: 0, Hash: make([]byte, sha256.Size)},
		{Seq: 1, Hash: want[0].Hash},
		{Seq: 6, Hash: want[5].Hash},
		{Seq: 6, Hash: want[5].Hash},
	}
	if diff := cmp.Diff(wantHeads, heads); diff != "" {
		t.Errorf("heads passed to build (-want +got):\n%s", diff)
	}
	wantHead(t, s, "after 7 records", sigil.AuditHead{Seq: 7, Hash: want[6].Hash})
	got := allAudit(t, s)
	if diff := cmp.Diff(want, got, ignoreIndex); diff != "" {
		t.Errorf("AuditEntries (-want +got):\n%s", diff)
	}
	checkAuditChain(t, got)

	// Entries are copies both ways: changing what build returned or what
	// AuditEntries returned changes nothing stored.
	want[0].Body[2] = 'X'
	got[1].Body[2] = 'X'
	got[1].Hash[0] ^= 0xff
	got[2].Body = append(got[2].Body, "trailing"...)
	checkAuditChain(t, allAudit(t, s))
	if diff := cmp.Diff(want[3], got[3], ignoreIndex); diff != "" {
		t.Errorf("appending to one returned Body changed the next entry (-want +got):\n%s", diff)
	}
}

func testAuditBuildError(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	appendBodies(t, s, []byte(`{"event":"a"}`), []byte(`{"event":"b"}`))
	before := allAudit(t, s)
	headBefore := auditHead(t, s)

	errBuild := errors.New("build failed")
	calls := 0
	err := s.AppendAudit(ctx, sigil.JournalMark{}, func(h sigil.AuditHead) ([]sigil.AuditEntry, error) {
		calls++
		es, _ := Chain([]byte(`{"event":"c"}`))(h)
		return es, errBuild // entries and an error: the error wins
	})
	wantErr(t, "AppendAudit with a failing build", err, errBuild)
	if calls != 1 {
		t.Errorf("build called %d times, want 1", calls)
	}
	wantHead(t, s, "after a failed build", headBefore)
	if diff := cmp.Diff(before, allAudit(t, s)); diff != "" {
		t.Errorf("a failed build wrote (-before +after):\n%s", diff)
	}
	// The store is still usable: the next append continues the chain.
	appendBodies(t, s, []byte(`{"event":"c"}`))
	checkAuditChain(t, allAudit(t, s))
}

// testAuditRejectsBrokenChain hands AppendAudit batches that do not
// continue the chain at its head.
func testAuditRejectsBrokenChain(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	appendBodies(t, s, []byte(`{"event":"a"}`), []byte(`{"event":"b"}`))
	before := allAudit(t, s)
	headBefore := auditHead(t, s)
	bodies := [][]byte{[]byte(`{"event":"c"}`), []byte(`{"event":"d"}`), []byte(`{"event":"e"}`)}

	for _, tt := range []struct {
		name   string
		mutate func(head sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry
	}{
		{"starts one late", func(h sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry {
			return mustChain(sigil.AuditHead{Seq: h.Seq + 1, Hash: h.Hash}, bodies)
		}},
		{"restarts at the head", func(h sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry {
			return mustChain(sigil.AuditHead{Seq: h.Seq - 1, Hash: h.Hash}, bodies)
		}},
		{"restarts at 1", func(h sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry {
			return mustChain(sigil.AuditHead{Seq: 0, Hash: h.Hash}, bodies)
		}},
		{"gap inside", func(h sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry {
			es[2].Seq++
			return es
		}},
		{"out of order", func(h sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry {
			es[1], es[2] = es[2], es[1]
			return es
		}},
		{"first not chained to the head", func(h sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry {
			return mustChain(sigil.AuditHead{Seq: h.Seq, Hash: chainHash(0, nil, nil)}, bodies)
		}},
		{"first chained to zero", func(h sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry {
			return mustChain(sigil.AuditHead{Seq: h.Seq, Hash: make([]byte, sha256.Size)}, bodies)
		}},
		{"first with nil prev", func(h sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry {
			es[0].Prev = nil
			return es
		}},
		{"later not chained to the one before", func(h sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry {
			es[2].Prev = es[0].Hash
			return es
		}},
		{"empty hash", func(h sigil.AuditHead, es []sigil.AuditEntry) []sigil.AuditEntry {
			es[2].Hash = nil
			return es
		}},
	} {
		err := s.AppendAudit(ctx, sigil.JournalMark{}, func(h sigil.AuditHead) ([]sigil.AuditEntry, error) {
			return tt.mutate(h, mustChain(h, bodies)), nil
		})
		if err == nil {
			t.Errorf("AppendAudit of a batch that %s succeeded, want an error", tt.name)
		}
		wantHead(t, s, "after a batch that "+tt.name, headBefore)
		if diff := cmp.Diff(before, allAudit(t, s)); diff != "" {
			t.Fatalf("a batch that %s wrote (-before +after):\n%s", tt.name, diff)
		}
	}
	appendBodies(t, s, bodies...)
	checkAuditChain(t, allAudit(t, s))
}

func mustChain(h sigil.AuditHead, bodies [][]byte) []sigil.AuditEntry {
	es, _ := Chain(bodies...)(h)
	return es
}

// testAuditConcurrent appends batches from 16 goroutines, each chaining
// from the head it is given: the result must be one chain with every
// batch whole and in one piece.
func testAuditConcurrent(t *testing.T, s sigil.Store) {
	AppendConcurrently(t, []sigil.AuditStore{s}, 16, 8)
	checkAuditChain(t, allAudit(t, s))
}

// AppendConcurrently appends rounds batches from each of n goroutines,
// spread over stores, and checks that every batch landed whole, in one
// contiguous run of Seq, and that the chain read back from stores[0] is
// complete: Seq 1..N, each Prev the Hash before it.
func AppendConcurrently(t *testing.T, stores []sigil.AuditStore, n, rounds int) {
	t.Helper()
	ctx := t.Context()
	start := make(chan struct{})
	var wg sync.WaitGroup
	total := 0
	for g := range n {
		for r := range rounds {
			total += 1 + (g+r)%4
		}
		s := stores[g%len(stores)]
		wg.Go(func() {
			<-start
			for r := range rounds {
				size := 1 + (g+r)%4
				bodies := make([][]byte, size)
				for i := range bodies {
					bodies[i] = fmt.Appendf(nil, `{"event":"e","jti":"g%d-r%d-i%d","n":%d}`, g, r, i, size)
				}
				if err := s.AppendAudit(ctx, sigil.JournalMark{}, Chain(bodies...)); err != nil {
					t.Errorf("goroutine %d round %d: AppendAudit: %v", g, r, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	var all []sigil.AuditEntry
	for after := int64(0); ; {
		page, err := stores[0].AuditEntries(ctx, after, 100)
		must(t, "AuditEntries", err)
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
	if len(all) != total {
		t.Fatalf("chain has %d records, want %d", len(all), total)
	}
	prev := make([]byte, sha256.Size)
	for i, e := range all {
		if e.Seq != int64(i)+1 || !bytes.Equal(e.Prev, prev) {
			t.Fatalf("record %d: Seq %d, Prev %x; want Seq %d, Prev %x", i, e.Seq, e.Prev, i+1, prev)
		}
		prev = e.Hash
	}
	// Each batch occupies consecutive Seqs: jti g-r-i0 is followed by
	// i1, i2, … of the same batch.
	seen := map[string]bool{}
	for i := 0; i < len(all); {
		var first struct {
			JTI string `json:"jti"`
			N   int    `json:"n"`
		}
		if err := json.Unmarshal(all[i].Body, &first); err != nil {
			t.Fatalf("record %d: %v", all[i].Seq, err)
		}
		var g, r, k int
		if _, err := fmt.Sscanf(first.JTI, "g%d-r%d-i%d", &g, &r, &k); err != nil || k != 0 {
			t.Fatalf("record %d (%s) does not start a batch", all[i].Seq, all[i].Body)
		}
		for k := range first.N {
			want := fmt.Appendf(nil, `{"event":"e","jti":"g%d-r%d-i%d","n":%d}`, g, r, k, first.N)
			if i+k >= len(all) || !bytes.Equal(all[i+k].Body, want) {
				t.Fatalf("batch g%d-r%d is not contiguous at Seq %d", g, r, all[i].Seq+int64(k))
			}
		}
		key := fmt.Sprintf("g%d-r%d", g, r)
		if seen[key] {
			t.Fatalf("batch %s appears twice", key)
		}
		seen[key] = true
		i += first.N
	}
}

func testAuditEntriesPaging(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	bodies := make([][]byte, 25)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"event":"e","i":%d}`, i+1)
	}
	appendBodies(t, s, bodies...)
	seqs := func(es []sigil.AuditEntry) []int64 {
		out := []int64{}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	for _, tt := range []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 3, []int64{1, 2, 3}},
		{10, 3, []int64{11, 12, 13}},
		{22, 10, []int64{23, 24, 25}},
		{24, 1, []int64{25}},
		{25, 10, []int64{}},
		{1000, 10, []int64{}},
		{-5, 2, []int64{1, 2}},
	} {
		es, err := s.AuditEntries(ctx, tt.after, tt.limit)
		must(t, "AuditEntries", err)
		if diff := cmp.Diff(tt.want, seqs(es)); diff != "" {
			t.Errorf("AuditEntries(%d, %d) Seqs (-want +got):\n%s", tt.after, tt.limit, diff)
		}
		for _, e := range es {
			if want := fmt.Appendf(nil, `{"event":"e","i":%d}`, e.Seq); !bytes.Equal(e.Body, want) {
				t.Errorf("AuditEntries(%d, %d): record %d body %s, want %s", tt.after, tt.limit, e.Seq, e.Body, want)
			}
		}
	}
	if es := allAudit(t, s); len(es) != 25 {
		t.Errorf("paging through 25 records read %d", len(es))
	}
}

// auditDataset returns 60 records a minute and a few nanoseconds apart,
// with client, subject and event cycling at different periods. Some have
// no subject; one subject equals a client ID, so a filter on one member
// must not match the other.
func auditDataset() []auditRecord {
	events := []string{"token.issued", "token.refused", "client.created"}
	subjects := []string{"alice", "bob", "c1", ""}
	rs := make([]auditRecord, 60)
	for i := range rs {
		rs[i] = auditRecord{
			Time:     base.Add(time.Duration(i)*time.Minute + time.Duration(i)*time.Nanosecond),
			Event:    events[i%3],
			ClientID: fmt.Sprintf("c%d", i%4),
			Subject:  subjects[i%len(subjects)],
			JTI:      fmt.Sprintf("j%d", i),
		}
		// Exchanged tokens: j10 is the subject token of j21 and the
		// actor token of j31.
		if i%5 == 1 {
			rs[i].SubjectToken = fmt.Sprintf("j%d", i/2)
		}
		if i%7 == 3 {
			rs[i].ActorToken = fmt.Sprintf("j%d", i/3)
		}
	}
	return rs
}

func testQueryAudit(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	rs := auditDataset()
	appendRecords(t, s, rs)
	at := func(i int) time.Time { return rs[i].Time }
	type rec = auditRecord
	for _, tt := range []struct {
		name  string
		q     sigil.AuditQuery
		match func(seq int64, r rec) bool
		limit int // 0: no cut
	}{
		{"everything", sigil.AuditQuery{}, func(int64, rec) bool { return true }, 0},
		{"client", sigil.AuditQuery{ClientID: "c1"}, func(_ int64, r rec) bool { return r.ClientID == "c1" }, 0},
		{"subject", sigil.AuditQuery{Subject: "c1"}, func(_ int64, r rec) bool { return r.Subject == "c1" }, 0},
		{"jti", sigil.AuditQuery{JTI: "j17"}, func(_ int64, r rec) bool { return r.JTI == "j17" }, 0},
		{"event", sigil.AuditQuery{Event: "token.refused"}, func(_ int64, r rec) bool { return r.Event == "token.refused" }, 0},
		{"client and event", sigil.AuditQuery{ClientID: "c2", Event: "token.issued"},
			func(_ int64, r rec) bool { return r.ClientID == "c2" && r.Event == "token.issued" }, 0},
		{"client, subject and event", sigil.AuditQuery{ClientID: "c0", Subject: "alice", Event: "token.issued"},
			func(_ int64, r rec) bool {
				return r.ClientID == "c0" && r.Subject == "alice" && r.Event == "token.issued"
			}, 0},
		{"jti and wrong client", sigil.AuditQuery{JTI: "j5", ClientID: "c0"}, func(int64, rec) bool { return false }, 0},
		{"after seq", sigil.AuditQuery{AfterSeq: 50}, func(seq int64, _ rec) bool { return seq > 50 }, 0},
		{"after seq and client", sigil.AuditQuery{AfterSeq: 30, ClientID: "c3"},
			func(seq int64, r rec) bool { return seq > 30 && r.ClientID == "c3" }, 0},
		{"after the head", sigil.AuditQuery{AfterSeq: 60}, func(int64, rec) bool { return false }, 0},
		{"since, inclusive", sigil.AuditQuery{Since: at(40)}, func(_ int64, r rec) bool { return !r.Time.Before(at(40)) }, 0},
		{"since a nanosecond later", sigil.AuditQuery{Since: at(40).Add(time.Nanosecond)},
			func(_ int64, r rec) bool { return r.Time.After(at(40)) }, 0},
		{"until, exclusive", sigil.AuditQuery{Until: at(10)}, func(_ int64, r rec) bool { return r.Time.Before(at(10)) }, 0},
		{"until a nanosecond later", sigil.AuditQuery{Until: at(10).Add(time.Nanosecond)},
			func(_ int64, r rec) bool { return !r.Time.After(at(10)) }, 0},
		{"since and until", sigil.AuditQuery{Since: at(20), Until: at(30)},
			func(_ int64, r rec) bool { return !r.Time.Before(at(20)) && r.Time.Before(at(30)) }, 0},
		{"since in another zone", sigil.AuditQuery{Since: at(55).In(time.FixedZone("UTC-7", -7*3600))},
			func(_ int64, r rec) bool { return !r.Time.Before(at(55)) }, 0},
		{"until before since", sigil.AuditQuery{Since: at(30), Until: at(20)}, func(int64, rec) bool { return false }, 0},
		{"far future until", sigil.AuditQuery{Until: time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC)},
			func(int64, rec) bool { return true }, 0},
		{"since, event and client", sigil.AuditQuery{Since: at(12), Event: "client.created", ClientID: "c3"},
			func(_ int64, r rec) bool {
				return !r.Time.Before(at(12)) && r.Event == "client.created" && r.ClientID == "c3"
			}, 0},
		{"limit", sigil.AuditQuery{Limit: 4}, func(int64, rec) bool { return true }, 4},
		{"limit with filters", sigil.AuditQuery{Limit: 3, AfterSeq: 10, Subject: "bob"},
			func(seq int64, r rec) bool { return seq > 10 && r.Subject == "bob" }, 3},
		{"limit above the matches", sigil.AuditQuery{Limit: 500, JTI: "j0"}, func(_ int64, r rec) bool { return r.JTI == "j0" }, 0},
		{"client differing in case", sigil.AuditQuery{ClientID: "C1"}, func(int64, rec) bool { return false }, 0},
		{"client prefix", sigil.AuditQuery{ClientID: "c"}, func(int64, rec) bool { return false }, 0},
		{"unknown event", sigil.AuditQuery{Event: "token"}, func(int64, rec) bool { return false }, 0},
		{"exchanged from", sigil.AuditQuery{ExchangedFrom: "j10"},
			func(_ int64, r rec) bool { return r.SubjectToken == "j10" || r.ActorToken == "j10" }, 0},
		{"exchanged from, and client", sigil.AuditQuery{ExchangedFrom: "j10", ClientID: "c3"},
			func(_ int64, r rec) bool {
				return (r.SubjectToken == "j10" || r.ActorToken == "j10") && r.ClientID == "c3"
			}, 0},
		{"exchanged from a token no exchange used", sigil.AuditQuery{ExchangedFrom: "j59"}, func(int64, rec) bool { return false }, 0},
	} {
		want := []int64{}
		for i, r := range rs {
			if seq := int64(i) + 1; tt.match(seq, r) && (tt.limit == 0 || len(want) < tt.limit) {
				want = append(want, seq)
			}
		}
		es, err := s.QueryAudit(ctx, tt.q)
		must(t, "QueryAudit("+tt.name+")", err)
		got := []int64{}
		for _, e := range es {
			got = append(got, e.Seq)
			if !bytes.Equal(e.Body, rs[e.Seq-1].body()) {
				t.Errorf("%s: record %d body %s, want %s", tt.name, e.Seq, e.Body, rs[e.Seq-1].body())
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("QueryAudit %s (%+v) Seqs (-want +got):\n%s", tt.name, tt.q, diff)
		}
	}
	// Whole entries come back, as AuditEntries returns them.
	es, err := s.QueryAudit(ctx, sigil.AuditQuery{JTI: "j33"})
	must(t, "QueryAudit", err)
	page, err := s.AuditEntries(ctx, 33, 1) // j33 is the 34th record
	must(t, "AuditEntries", err)
	if diff := cmp.Diff(page, es); diff != "" {
		t.Errorf("QueryAudit(jti j33) (-AuditEntries +QueryAudit):\n%s", diff)
	}
}

// testQueryAuditDefaultLimit checks that Limit 0 means 1000.
func testQueryAuditDefaultLimit(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	const n = 1003
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = auditRecord{Time: base.Add(time.Duration(i) * time.Millisecond), Event: "token.issued", ClientID: "c"}.body()
	}
	appendBodies(t, s, bodies...)
	for _, tt := range []struct {
		q     sigil.AuditQuery
		first int64
		n     int
	}{
		{sigil.AuditQuery{}, 1, 1000},
		{sigil.AuditQuery{ClientID: "c"}, 1, 1000},
		{sigil.AuditQuery{AfterSeq: 1000}, 1001, 3},
		{sigil.AuditQuery{Limit: 1002}, 1, 1002},
	} {
		es, err := s.QueryAudit(ctx, tt.q)
		must(t, "QueryAudit", err)
		if len(es) != tt.n || es[0].Seq != tt.first || es[len(es)-1].Seq != tt.first+int64(tt.n)-1 {
			t.Errorf("QueryAudit(%+v) = %d records, want %d from Seq %d", tt.q, len(es), tt.n, tt.first)
		}
	}
}

func testAuditCheckpoints(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	cp := func(seq int64, jws string, at time.Time) sigil.AuditCheckpoint {
		return sigil.AuditCheckpoint{Seq: seq, Hash: chainHash(seq, nil, nil), JWS: jws, CreatedAt: at}
	}
	want := []sigil.AuditCheckpoint{
		cp(2, "h.p2.s", base.Add(-time.Hour)),
		cp(5, "h.p5.s", base),
		cp(9, "h.p9.s", base.Add(time.Hour)),
	}
	for _, i := range []int{1, 0, 2} { // not in Seq order
		must(t, fmt.Sprintf("AddCheckpoint(%d)", want[i].Seq), s.AddCheckpoint(ctx, want[i]))
	}
	dup := cp(5, "h.other.s", base.Add(2*time.Hour))
	dup.Hash = chainHash(6, nil, nil)
	wantErr(t, "AddCheckpoint(duplicate Seq)", s.AddCheckpoint(ctx, dup), sigil.ErrConflict)

	got, err := s.Checkpoints(ctx)
	must(t, "Checkpoints", err)
	if diff := cmp.Diff(want, got, cmp.Comparer(time.Time.Equal)); diff != "" {
		t.Errorf("Checkpoints (-want +got):\n%s", diff)
	}
}

// ignoreIndex compares entries without Index, which stores write and do
// not read back.
var ignoreIndex = cmp.FilterPath(func(p cmp.Path) bool {
	sf, ok := p.Last().(cmp.StructField)
	return ok && sf.Name() == "Index"
}, cmp.Ignore())

// testAuditJournalMarks checks that a journal mark moves with its batch,
// atomically: a batch that fails leaves the mark where it was, a mark that
// does not move forward fails the batch, and marks of different journals
// are independent.
func testAuditJournalMarks(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	seq := func(journal string) int64 {
		t.Helper()
		n, err := s.JournalSeq(ctx, journal)
		must(t, "JournalSeq", err)
		return n
	}
	if n := seq("j-a"); n != 0 {
		t.Fatalf("JournalSeq of an unknown journal = %d, want 0", n)
	}
	must(t, "marked append", s.AppendAudit(ctx, sigil.JournalMark{Journal: "j-a", Seq: 5}, Chain([]byte(`{"event":"a"}`), []byte(`{"event":"b"}`))))
	must(t, "marked append of another journal", s.AppendAudit(ctx, sigil.JournalMark{Journal: "j-b", Seq: 1}, Chain([]byte(`{"event":"c"}`))))
	if a, b := seq("j-a"), seq("j-b"); a != 5 || b != 1 {
		t.Fatalf("marks = %d, %d; want 5, 1", a, b)
	}
	head := auditHead(t, s)

	// A mark at or behind the recorded one: the batch was appended already.
	for _, m := range []int64{5, 4} {
		err := s.AppendAudit(ctx, sigil.JournalMark{Journal: "j-a", Seq: m}, Chain([]byte(`{"event":"again"}`)))
		if err == nil {
			t.Errorf("append with mark %d after mark 5 succeeded; want it refused", m)
		}
	}
	// A failing batch leaves the mark behind.
	err := s.AppendAudit(ctx, sigil.JournalMark{Journal: "j-a", Seq: 9}, func(sigil.AuditHead) ([]sigil.AuditEntry, error) {
		return nil, errors.New("build failed")
	})
	if err == nil {
		t.Error("append with a failing build succeeded")
	}
	// A mark without entries, and malformed marks.
	for _, m := range []sigil.JournalMark{{Journal: "j-a", Seq: 10}, {Journal: "", Seq: 11}, {Journal: "j-a", Seq: -1}} {
		build := Chain([]byte(`{"event":"x"}`))
		if m.Seq == 10 {
			build = Chain()
		}
		if err := s.AppendAudit(ctx, m, build); err == nil {
			t.Errorf("append with mark %+v succeeded; want it refused", m)
		}
	}
	if a := seq("j-a"); a != 5 {
		t.Errorf("mark after refused appends = %d, want 5", a)
	}
	wantHead(t, s, "after refused appends", head)

	must(t, "marked append forward", s.AppendAudit(ctx, sigil.JournalMark{Journal: "j-a", Seq: 6}, Chain([]byte(`{"event":"d"}`))))
	if a := seq("j-a"); a != 6 {
		t.Errorf("mark = %d, want 6", a)
	}
	checkAuditChain(t, allAudit(t, s))
}
