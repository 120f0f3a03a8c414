package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// The indexed columns QueryAudit filters on (migration 0003): copies of
// body members written with each record (sigil.AuditIndex).
const (
	auditClientExpr = `client_id`
	auditSubExpr    = `sub`
	auditJTIExpr    = `jti`
	auditEventExpr  = `event`
	auditTimeExpr   = `time`
)

// QueryAudit limits: DefaultAuditLimit records when AuditQuery.Limit is 0,
// and never more than MaxAuditLimit at once; page with AfterSeq.
const (
	DefaultAuditLimit = 1000
	MaxAuditLimit     = 10_000
)

const (
	auditColumns    = `seq, prev, hash, body`
	auditHeadSQL    = `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`
	auditInsertSQL  = `INSERT INTO audit (seq, prev, hash, body, time, event, client_id, sub, jti, sub_is_client, subject_token_jti, actor_token_jti) VALUES ` + auditRowParams
	auditRowParams  = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	auditEntriesSQL = `SELECT ` + auditColumns + ` FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`
	journalMarkSQL  = `INSERT INTO audit_journals (journal, seq) VALUES (?, ?)
		ON CONFLICT (journal) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > audit_journals.seq`
	auditCheckpointSQL = `INSERT INTO audit_checkpoints (seq, hash, jws, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING`
)

// zeroHashLen is the length of an empty chain's head hash, all zero bytes:
// the size of a SHA-256 hash, which package audit chains with.
const zeroHashLen = 32

// AppendAudit appends the entries build returns, in one transaction. The
// transaction begins IMMEDIATE, so it holds SQLite's write lock from the
// moment it reads the head: appends from any number of Stores and
// processes on the file form one chain. build is called exactly once,
// under that lock; it must be quick and must not use the Store (a second
// write would wait for the lock build holds, until the busy timeout).
//
// The store does not recompute hashes, but it refuses, writing nothing, a
// batch that does not continue the chain: entries must have Seq
// head.Seq+1, head.Seq+2, …, the first must have Prev equal to head.Hash
// and each later one Prev equal to the Hash before it, and no Hash may be
// empty. A body that is not valid JSON fails the insert and rolls back the
// batch. Zero entries commit nothing. An error from build is returned
// wrapped, and nothing is written.
//
// A non-zero mark is written in the same transaction, and only if it
// moves its journal's mark forward: a mark at or behind the recorded one
// is refused (the batch would repeat records already appended), and so is
// a marked batch with no entries.
func (s *Store) AppendAudit(ctx context.Context, mark sigil.JournalMark, build func(head sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
	defer s.writing()()
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		head, err := readAuditHead(tx.StmtContext(ctx, s.auditHeadStmt).QueryRowContext(ctx))
		if err != nil {
			return fmt.Errorf("read head: %w", err)
		}
		entries, err := build(head)
		if err != nil {
			return fmt.Errorf("build: %w", err)
		}
		if err := rowcodec.CheckChain(head, entries); err != nil {
			return err
		}
		if mark != (sigil.JournalMark{}) {
			if len(entries) == 0 {
				return fmt.Errorf("journal %q mark %d: no entries to go with it", mark.Journal, mark.Seq)
			}
			if err := s.moveJournalMark(ctx, tx, mark); err != nil {
				return err
			}
		}
		if len(entries) == 0 {
			return nil
		}
		return s.insertAudit(ctx, tx, entries)
	})
	if err != nil {
		return fmt.Errorf("sqlite: append audit: %w", err)
	}
	return nil
}

// moveJournalMark records mark inside tx, refusing one that does not move
// its journal forward.
func (s *Store) moveJournalMark(ctx context.Context, tx *sql.Tx, mark sigil.JournalMark) error {
	if mark.Journal == "" || mark.Seq <= 0 {
		return fmt.Errorf("journal mark %+v: want a journal id and a positive seq", mark)
	}
	res, err := tx.StmtContext(ctx, s.journalMarkStmt).ExecContext(ctx, mark.Journal, mark.Seq)
	if err != nil {
		return fmt.Errorf("journal %q mark %d: %w", mark.Journal, mark.Seq, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("journal %q mark %d: not after the recorded mark: the batch was already appended", mark.Journal, mark.Seq)
	}
	return nil
}

// JournalSeq returns the Seq of journal's mark, or 0 if it has none.
func (s *Store) JournalSeq(ctx context.Context, journal string) (int64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM audit_journals WHERE journal = ?`, journal).Scan(&seq)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("sqlite: journal %q mark: %w", journal, err)
	}
	return seq, nil
}

// readAuditHead reads the result of auditHeadSQL: Seq 0 and 32 zero bytes
// for an empty chain.
func readAuditHead(row *sql.Row) (sigil.AuditHead, error) {
	var h sigil.AuditHead
	err := row.Scan(&h.Seq, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return sigil.AuditHead{Seq: 0, Hash: make([]byte, zeroHashLen)}, nil
	}
	return h, err
}

// AuditHead returns the Seq and Hash of the chain's last record: Seq 0 and
// 32 zero bytes when the chain is empty.
func (s *Store) AuditHead(ctx context.Context) (sigil.AuditHead, error) {
	h, err := readAuditHead(s.auditHeadStmt.QueryRowContext(ctx))
	if err != nil {
		return sigil.AuditHead{}, fmt.Errorf("sqlite: read audit head: %w", err)
	}
	return h, nil
}

// AuditEntries returns up to limit records with Seq > after, in Seq order;
// limit must be positive and is not capped. It is the scan `sigil audit
// verify` runs over the whole chain, so it reads the four columns
// straight off the rowid b-tree and copies every page's byte fields into
// a few shared blocks: the entries of one call share backing arrays (each
// slice's capacity ends at its length, so appending to one never writes
// into another), and one retained entry keeps its block alive.
func (s *Store) AuditEntries(ctx context.Context, after int64, limit int) ([]sigil.AuditEntry, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("sqlite: audit entries: limit %d, want > 0", limit)
	}
	rows, err := s.auditEntriesStmt.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit entries: %w", err)
	}
	es, err := scanAudit(rows, min(limit, MaxAuditLimit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit entries: %w", err)
	}
	return es, nil
}

// QueryAudit returns the records q selects, in Seq order: its non-zero
// fields are ANDed; ClientID, Subject, JTI and Event match the body's
// "client_id", "sub", "jti" and "event" members exactly (as strings);
// Since and Until, formatted as 2006-01-02T15:04:05.000000000Z in UTC,
// are compared with its "time" member as strings. Limit 0 means
// DefaultAuditLimit; a Limit above MaxAuditLimit is cut to it; a negative
// one is an error. Each filter is served by an expression index (see
// auditQuerySQL); entries share backing arrays as in AuditEntries.
func (s *Store) QueryAudit(ctx context.Context, q sigil.AuditQuery) ([]sigil.AuditEntry, error) {
	// A time bound becomes a seq bound too, found by binary search over
	// the primary key (record time grows with seq), so a time range reads
	// only its own records without a time index.
	if !q.Since.IsZero() {
		from, err := s.seqAtTime(ctx, q.Since.Add(-auditTimeSlack))
		if err != nil {
			return nil, fmt.Errorf("sqlite: query audit: %w", err)
		}
		q.AfterSeq = max(q.AfterSeq, from-1)
	}
	var before int64
	if !q.Until.IsZero() {
		var err error
		if before, err = s.seqAtTime(ctx, q.Until.Add(auditTimeSlack)); err != nil {
			return nil, fmt.Errorf("sqlite: query audit: %w", err)
		}
	}
	query, args, limit, err := auditQuerySQL(q, before)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query audit: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query audit: %w", err)
	}
	es, err := scanAudit(rows, min(limit, DefaultAuditLimit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: query audit: %w", err)
	}
	return es, nil
}

// auditQuerySQL builds the statement for q and returns it with its
// arguments and the effective limit.
func auditQuerySQL(q sigil.AuditQuery, beforeSeq int64) (query string, args []any, limit int, err error) {
	limit = q.Limit
	switch {
	case limit < 0:
		return "", nil, 0, fmt.Errorf("limit %d is negative", limit)
	case limit == 0:
		limit = DefaultAuditLimit
	case limit > MaxAuditLimit:
		limit = MaxAuditLimit
	}
	var where []string
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if q.AfterSeq != 0 {
		add("seq > ?", q.AfterSeq)
	}
	if beforeSeq != 0 {
		add("seq < ?", beforeSeq)
	}
	if q.Subject != "" {
		where = append(where, "("+auditSubExpr+" = ? OR ("+auditClientExpr+" = ? AND sub_is_client = 1))")
		args = append(args, q.Subject, q.Subject)
	}
	if q.ExchangedFrom != "" {
		where = append(where, "(subject_token_jti = ? OR actor_token_jti = ?)")
		args = append(args, q.ExchangedFrom, q.ExchangedFrom)
	}
	for _, f := range []struct{ expr, value string }{
		{auditClientExpr, q.ClientID},
		{auditJTIExpr, q.JTI},
		{auditEventExpr, q.Event},
	} {
		if f.value != "" {
			add(f.expr+" = ?", f.value)
		}
	}
	if !q.Since.IsZero() {
		add(auditTimeExpr+" >= ?", rowcodec.AuditTime(q.Since))
	}
	if !q.Until.IsZero() {
		add(auditTimeExpr+" < ?", rowcodec.AuditTime(q.Until))
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + auditColumns + ` FROM audit`)
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY seq LIMIT ?")
	args = append(args, limit)
	return b.String(), args, limit, nil
}

// scanAudit reads rows of auditColumns and closes them. Scanning into
// []byte would allocate a copy per field on top of the driver's own; the
// fields are scanned into reused sql.RawBytes instead and copied into a
// block allocator.
func scanAudit(rows *sql.Rows, sizeHint int) ([]sigil.AuditEntry, error) {
	defer rows.Close()
	es := make([]sigil.AuditEntry, 0, sizeHint)
	var (
		prev, hash, body sql.RawBytes
		blk              rowcodec.Blocks
	)
	for rows.Next() {
		var e sigil.AuditEntry
		if err := rows.Scan(&e.Seq, &prev, &hash, &body); err != nil {
			return nil, err
		}
		e.Prev, e.Hash, e.Body = blk.Copy(prev), blk.Copy(hash), blk.Copy(body)
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return es, nil
}

// AddCheckpoint stores c; ErrConflict if a checkpoint for c.Seq exists. A
// zero c.CreatedAt is stored as the current time. The store does not check
// c against the chain: verifying it is package audit's job, and a
// mismatching checkpoint must stay visible to it.
func (s *Store) AddCheckpoint(ctx context.Context, c sigil.AuditCheckpoint) error {
	defer s.writing()()
	if len(c.Hash) == 0 || c.JWS == "" {
		return fmt.Errorf("sqlite: add audit checkpoint %d: empty hash or JWS", c.Seq)
	}
	created := c.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	res, err := s.wconn.ExecContext(ctx, auditCheckpointSQL, c.Seq, c.Hash, c.JWS, rowcodec.UnixNano(created))
	if err != nil {
		return fmt.Errorf("sqlite: add audit checkpoint %d: %w", c.Seq, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: add audit checkpoint %d: %w", c.Seq, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: add audit checkpoint %d: %w", c.Seq, sigil.ErrConflict)
	}
	return nil
}

// Checkpoints returns every checkpoint in ascending Seq order, CreatedAt
// in UTC.
func (s *Store) Checkpoints(ctx context.Context) ([]sigil.AuditCheckpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, hash, jws, created_at FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit checkpoints: %w", err)
	}
	defer rows.Close()
	var cs []sigil.AuditCheckpoint
	for rows.Next() {
		var (
			c       sigil.AuditCheckpoint
			created int64
		)
		if err := rows.Scan(&c.Seq, &c.Hash, &c.JWS, &created); err != nil {
			return nil, fmt.Errorf("sqlite: list audit checkpoints: %w", err)
		}
		c.CreatedAt = rowcodec.FromUnixNano(created)
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list audit checkpoints: %w", err)
	}
	return cs, nil
}

// auditChunks are the row counts of the prepared INSERTs, largest first;
// a batch is split into them (37 rows: 16 + 16 + 4 + 1). They are prepared
// in Open: preparing inside the append transaction would need a second
// pool connection while the others wait for the write lock. Parsing a
// multi-row statement for every batch cost more than the rows.
var auditChunks = []int{64, 16, 4, 1}

func auditInsertSQLFor(n int) string {
	return auditInsertSQL + strings.Repeat(", "+auditRowParams, n-1)
}

// insertAudit writes entries with prepared multi-row INSERTs.
func (s *Store) insertAudit(ctx context.Context, tx *sql.Tx, entries []sigil.AuditEntry) error {
	args := make([]any, 0, 12*auditChunks[0])
	for len(entries) > 0 {
		c := 0
		for auditChunks[c] > len(entries) {
			c++
		}
		n := auditChunks[c]
		args = args[:0]
		for _, e := range entries[:n] {
			// body is a TEXT column of a STRICT table: a []byte would bind
			// as a BLOB and be refused.
			// A subject equal to the client (client credentials: most
			// agent traffic) is not indexed twice; subject queries also
			// match client_id for rows whose sub is NULL.
			sub, subIsClient := e.Index.Subject, 0
			if sub != "" && sub == e.Index.ClientID {
				sub, subIsClient = "", 1
			}
			args = append(args, e.Seq, e.Prev, e.Hash, string(e.Body),
				nullable(e.Index.Time), nullable(e.Index.Event), nullable(e.Index.ClientID), nullable(sub), nullable(e.Index.JTI), subIsClient,
				nullable(e.Index.SubjectTokenJTI), nullable(e.Index.ActorTokenJTI))
		}
		if _, err := tx.StmtContext(ctx, s.auditInsertChunk[c]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert records %d to %d: %w", entries[0].Seq, entries[n-1].Seq, err)
		}
		entries = entries[n:]
	}
	return nil
}

// nullable stores an empty index value as NULL, which the partial indexes
// leave out.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// auditTimeSlack widens a time bound before it becomes a seq bound: a
// record's time is taken when it is queued, so it can trail records
// written before it by up to the writer's enqueue wait and retries. The
// time filter itself stays exact.
const auditTimeSlack = time.Minute

// seqAtTime returns the first seq whose record time is at or after t (one
// past the head if there is none), by binary search over the primary key.
func (s *Store) seqAtTime(ctx context.Context, t time.Time) (int64, error) {
	head, err := s.AuditHead(ctx)
	if err != nil {
		return 0, err
	}
	want := rowcodec.AuditTime(t)
	lo, hi := int64(1), head.Seq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		var at sql.NullString
		var seq int64
		// The first record at or after mid: deleted records are skipped.
		err := s.db.QueryRowContext(ctx, `SELECT seq, time FROM audit WHERE seq >= ? ORDER BY seq LIMIT 1`, mid).Scan(&seq, &at)
		if errors.Is(err, sql.ErrNoRows) {
			hi = mid
			continue
		}
		if err != nil {
			return 0, err
		}
		if at.String < want {
			lo = seq + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}
