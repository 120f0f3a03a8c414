package sqlite

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
	"github.com/sigil-sts/sigil/store/storetest"
)

// queryPlan returns the detail lines of EXPLAIN QUERY PLAN for query.
func queryPlan(t *testing.T, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestAuditQueryPlan checks that every audit query reads the rows it needs
// through the rowid or an expression index: a query spelling a body
// member differently from migration 0003 would scan the whole trail.
func TestAuditQueryPlan(t *testing.T) {
	s := openClosed(t, t.TempDir())
	now := time.Now()
	for _, tt := range []struct {
		name  string
		query string
		args  []any
		// want is the one plan line, sort says whether a sort follows.
		want string
		sort bool
	}{
		{"head", auditHeadSQL, nil, "SCAN audit", false},
		{"entries", auditEntriesSQL, []any{1, 10}, "SEARCH audit USING INTEGER PRIMARY KEY (rowid>?)", false},
	} {
		checkPlan(t, tt.name, queryPlan(t, s, tt.query, tt.args...), tt.want, tt.sort)
	}
	for _, tt := range []struct {
		name string
		q    sigil.AuditQuery
		want string
		sort bool
	}{
		{"everything", sigil.AuditQuery{}, "SCAN audit", false},
		{"after seq", sigil.AuditQuery{AfterSeq: 5}, "SEARCH audit USING INTEGER PRIMARY KEY (rowid>?)", false},
		{"client", sigil.AuditQuery{ClientID: "c"}, "SEARCH audit USING INDEX audit_client (client_id=?)", false},
		// A subject is found in the sub index, or as a client whose
		// records say sub = client_id (not indexed twice).
		{"subject", sigil.AuditQuery{Subject: "s"}, "MULTI-INDEX OR\nINDEX 1\nSEARCH audit USING INDEX audit_sub (sub=?)\nINDEX 2\nSEARCH audit USING INDEX audit_client (client_id=?)", true},
		{"jti", sigil.AuditQuery{JTI: "j"}, "SEARCH audit USING INDEX audit_jti (jti=?)", false},
		{"event", sigil.AuditQuery{Event: "e"}, "SCAN audit", false},
		{"client after seq", sigil.AuditQuery{ClientID: "c", AfterSeq: 5}, "SEARCH audit USING INDEX audit_client (client_id=? AND seq>?)", false},
		// QueryAudit turns Since into AfterSeq (binary search over seq)
		// before it builds the statement, so a time range is a seq range.
		{"since", sigil.AuditQuery{Since: now, AfterSeq: 5}, "SEARCH audit USING INTEGER PRIMARY KEY (rowid>?)", false},
		// Until alone: the walk in seq order meets the old records first
		// and stops at the limit.
		{"until", sigil.AuditQuery{Until: now}, "SCAN audit", false},
	} {
		query, args, _, err := auditQuerySQL(tt.q, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, tt.name, queryPlan(t, s, query, args...), tt.want, tt.sort)
	}
	// Until becomes an upper seq bound the same way.
	query, args, _, err := auditQuerySQL(sigil.AuditQuery{Since: now, Until: now.Add(time.Hour), AfterSeq: 5}, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, "since and until", queryPlan(t, s, query, args...), "SEARCH audit USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)", false)
	// With several filters the planner picks one of their indexes.
	for _, q := range []sigil.AuditQuery{
		{ClientID: "c", Event: "e"},
		{Subject: "s", JTI: "j", Since: now, Until: now},
		{ClientID: "c", Since: now},
	} {
		query, args, _, err := auditQuerySQL(q, 0)
		if err != nil {
			t.Fatal(err)
		}
		plan := queryPlan(t, s, query, args...)
		if len(plan) == 0 || !strings.HasPrefix(plan[0], "SEARCH audit USING INDEX audit_") {
			t.Errorf("QueryAudit(%+v) plan = %q, want an index search", q, plan)
		}
	}
}

func checkPlan(t *testing.T, name string, plan []string, want string, sort bool) {
	t.Helper()
	wantPlan := []string{want}
	if sort {
		wantPlan = append(wantPlan, "USE TEMP B-TREE FOR ORDER BY")
	}
	if strings.Join(plan, "\n") != strings.Join(wantPlan, "\n") {
		t.Errorf("%s: query plan\n\t%q\nwant\n\t%q", name, plan, wantPlan)
	}
}

// TestAuditTwoStores appends from two Stores on one directory, as two
// processes would: the write lock taken when the head is read makes one
// chain of it.
func TestAuditTwoStores(t *testing.T) {
	dir := t.TempDir()
	a, b := openClosed(t, dir), openClosed(t, dir)
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
// build that panics, leaves nothing written and the write lock free.
func TestAuditRollback(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, t.TempDir())
	if err := s.AppendAudit(ctx, sigil.JournalMark{}, storetest.Chain([]byte(`{"event":"a"}`))); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"event":"b"`, ``, `not json`} {
		err := s.AppendAudit(ctx, sigil.JournalMark{}, storetest.Chain([]byte(`{"event":"ok"}`), []byte(`{"event":"ok"}`), []byte(bad)))
		if err == nil {
			t.Errorf("AppendAudit with body %q succeeded, want an error", bad)
		}
		wantAuditSeq(t, s, 1)
	}

	func() {
		defer func() {
			if recover() == nil {
				t.Error("a panic in build did not reach the caller")
			}
		}()
		s.AppendAudit(ctx, sigil.JournalMark{}, func(sigil.AuditHead) ([]sigil.AuditEntry, error) { panic("build") })
	}()
	// A transaction left open would hold the write lock: the next append
	// would wait out the busy timeout and fail.
	start := time.Now()
	if err := s.AppendAudit(ctx, sigil.JournalMark{}, storetest.Chain([]byte(`{"event":"c"}`))); err != nil {
		t.Fatalf("AppendAudit after a panicking build: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("AppendAudit after a panicking build took %v: the lock was held", d)
	}
	wantAuditSeq(t, s, 2)
}

func wantAuditSeq(t *testing.T, s *Store, want int64) {
	t.Helper()
	h, err := s.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != want {
		t.Errorf("head Seq = %d, want %d", h.Seq, want)
	}
	var n int64
	if err := s.db.QueryRowContext(t.Context(), "SELECT count(*) FROM audit").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Errorf("audit holds %d rows, want %d", n, want)
	}
}

func TestAuditLimits(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, t.TempDir())
	const n = MaxAuditLimit + 5
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = []byte(`{"event":"e"}`)
	}
	if err := s.AppendAudit(ctx, sigil.JournalMark{}, storetest.Chain(bodies...)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		q    sigil.AuditQuery
		want int
	}{
		{sigil.AuditQuery{}, DefaultAuditLimit},
		{sigil.AuditQuery{Limit: n}, MaxAuditLimit},
		{sigil.AuditQuery{Limit: n, Event: "e"}, MaxAuditLimit},
		{sigil.AuditQuery{Limit: n, AfterSeq: MaxAuditLimit}, 5},
	} {
		es, err := s.QueryAudit(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != tt.want {
			t.Errorf("QueryAudit(%+v) = %d records, want %d", tt.q, len(es), tt.want)
		}
	}
	if _, err := s.QueryAudit(ctx, sigil.AuditQuery{Limit: -1}); err == nil {
		t.Error("QueryAudit with a negative limit succeeded, want an error")
	}
	// AuditEntries is not capped: the verifier picks its page size.
	if es, err := s.AuditEntries(ctx, 0, n+100); err != nil || len(es) != n {
		t.Errorf("AuditEntries(0, %d) = %d records, %v; want %d", n+100, len(es), err, n)
	}
	for _, limit := range []int{0, -1} {
		if _, err := s.AuditEntries(ctx, 0, limit); err == nil {
			t.Errorf("AuditEntries(0, %d) succeeded, want an error", limit)
		}
	}
}

func TestFormatAuditTime(t *testing.T) {
	for _, tt := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC), "2031-05-06T07:08:09.000000000Z"},
		{time.Date(2031, 5, 6, 9, 8, 9, 1, time.FixedZone("+2", 2*3600)), "2031-05-06T07:08:09.000000001Z"},
		{time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC), "9999-12-31T23:59:59.999999999Z"},
		{time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), "0000-01-01T00:00:00.000000000Z"},
	} {
		if got := rowcodec.AuditTime(tt.in); got != tt.want {
			t.Errorf("rowcodec.AuditTime(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCheckpointStamp(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, t.TempDir())
	now := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)
	s.Now = func() time.Time { return now }
	if err := s.AddCheckpoint(ctx, sigil.AuditCheckpoint{Seq: 1, Hash: []byte{1}, JWS: "h.p.s"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []sigil.AuditCheckpoint{{Seq: 2, JWS: "h.p.s"}, {Seq: 3, Hash: []byte{1}}} {
		if err := s.AddCheckpoint(ctx, bad); err == nil {
			t.Errorf("AddCheckpoint(%+v) succeeded, want an error", bad)
		}
	}
	cs, err := s.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || !cs[0].CreatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Errorf("Checkpoints = %+v, want one stamped %v", cs, now)
	}
}

func TestKeyArchivedAt(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, t.TempDir())
	now := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)
	s.Now = func() time.Time { return now }
	if err := s.CreateKey(ctx, &sigil.SigningKey{ID: "k", Alg: "ES256", State: sigil.KeyRetired, Public: []byte{1}, Sealed: []byte{2}}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if err := s.DeleteKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	var at int64
	if err := s.db.QueryRowContext(ctx, "SELECT archived_at FROM key_archive WHERE id = 'k'").Scan(&at); err != nil {
		t.Fatal(err)
	}
	if want := now.Truncate(time.Microsecond); !rowcodec.FromUnixNano(at).Equal(want) {
		t.Errorf("archived_at = %v, want %v", rowcodec.FromUnixNano(at), want)
	}
}

// benchBody returns the i-th record body of a busy issuer, about 300
// bytes shaped like package audit's token.issued records: time increasing,
// a random-looking jti, 50 clients and 10,000 subjects.
func benchBody(i int) []byte {
	jti := sha256.Sum256(fmt.Append(nil, i))
	return fmt.Appendf(nil, `{"time":"%s","node":"node-1","event":"token.issued","outcome":"success",`+
		`"client_id":"billing-agent-%d","sub":"user-%d@example.com","jti":"%x","scope":"invoices:read invoices:write",`+
		`"aud":["https://api.example.com"],"request_id":"%016x","source":"203.0.113.7"}`,
		time.Unix(1_900_000_000, int64(i)*100_000).UTC().Format(rowcodec.AuditTimeFormat), i%50, (i*7919)%10_000, jti[:11], i)
}

// BenchmarkAuditEntries reads a 100,000-record trail in pages of 10,000,
// as `sigil audit verify` does; the hash variant also recomputes a
// SHA-256 over each record, for the end-to-end budget of 200,000
// records/s.
func BenchmarkAuditEntries(b *testing.B) {
	ctx := context.Background()
	s := openClosed(b, b.TempDir())
	const n, page, batch = 100_000, 10_000, 1000
	for i := 0; i < n; i += batch {
		bodies := make([][]byte, batch)
		for j := range bodies {
			bodies[j] = benchBody(i + j)
		}
		if err := s.AppendAudit(ctx, sigil.JournalMark{}, storetest.Chain(bodies...)); err != nil {
			b.Fatal(err)
		}
	}
	read := func(b *testing.B, each func(sigil.AuditEntry)) {
		total := 0
		for after := int64(0); ; {
			es, err := s.AuditEntries(ctx, after, page)
			if err != nil {
				b.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			for _, e := range es {
				each(e)
			}
			total += len(es)
			after = es[len(es)-1].Seq
		}
		if total != n {
			b.Fatalf("read %d records, want %d", total, n)
		}
	}
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			read(b, func(sigil.AuditEntry) {})
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("scan+sha256", func(b *testing.B) {
		b.ReportAllocs()
		h := sha256.New()
		var sum []byte
		for b.Loop() {
			read(b, func(e sigil.AuditEntry) {
				h.Reset()
				h.Write(e.Prev)
				h.Write(e.Body)
				sum = h.Sum(sum[:0])
			})
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkAppendAudit appends batches of 64 records of about 300 bytes,
// the audit writer's group commit under load, to a trail of 0 and of
// 100,000 records: each record updates the five expression indexes, two
// of them (jti, sub) at random places, so the cost per record grows with
// the trail until the indexes outgrow the page cache.
func BenchmarkAppendAudit(b *testing.B) {
	for _, rows := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			ctx := context.Background()
			s := openClosed(b, b.TempDir())
			n := 0
			appendBatch := func(size int) {
				bodies := make([][]byte, size)
				for i := range bodies {
					bodies[i] = benchBody(n)
					n++
				}
				if err := s.AppendAudit(ctx, sigil.JournalMark{}, storetest.Chain(bodies...)); err != nil {
					b.Fatal(err)
				}
			}
			for n < rows {
				appendBatch(1000)
			}
			const batch = 64
			b.SetBytes(int64(batch * len(benchBody(0))))
			b.ReportAllocs()
			for b.Loop() {
				appendBatch(batch)
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// TestAuditSubjectIsClient: a record whose sub equals its client_id is not
// indexed under sub, yet a subject query finds it, and finds no record of
// that client that has another subject or none.
func TestAuditSubjectIsClient(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, t.TempDir())
	bodies := [][]byte{
		[]byte(`{"time":"2031-05-06T07:08:09.000000000Z","event":"token.issued","client_id":"a","sub":"a"}`),
		[]byte(`{"time":"2031-05-06T07:08:10.000000000Z","event":"token.refused","client_id":"a"}`),
		[]byte(`{"time":"2031-05-06T07:08:11.000000000Z","event":"token.issued","client_id":"b","sub":"a"}`),
		[]byte(`{"time":"2031-05-06T07:08:12.000000000Z","event":"token.issued","client_id":"a","sub":"u"}`),
	}
	if err := s.AppendAudit(ctx, sigil.JournalMark{}, storetest.Chain(bodies...)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		q    sigil.AuditQuery
		want []int64
	}{
		{sigil.AuditQuery{Subject: "a"}, []int64{1, 3}},
		{sigil.AuditQuery{Subject: "u"}, []int64{4}},
		{sigil.AuditQuery{ClientID: "a"}, []int64{1, 2, 4}},
		{sigil.AuditQuery{ClientID: "a", Subject: "a"}, []int64{1}},
	} {
		es, err := s.QueryAudit(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, e := range es {
			got = append(got, e.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("QueryAudit(%+v) = %v, want %v", tt.q, got, tt.want)
		}
	}
}
