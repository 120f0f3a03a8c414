package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// QueryAudit limits: DefaultAuditLimit records when AuditQuery.Limit is 0,
// and never more than MaxAuditLimit at once; page with AfterSeq. They are
// the SQLite store's.
const (
	DefaultAuditLimit = 1000
	MaxAuditLimit     = 10_000
)

const (
	auditColumns = `seq, prev, hash, body`
	auditHeadSQL = `SELECT seq, hash FROM audit_head WHERE id = 1`
	// auditInsertSQL writes a whole batch in one statement, one array
	// parameter per column, whatever the number of rows.
	auditInsertSQL = `INSERT INTO audit (seq, prev, hash, body, time, event, client_id, sub, jti, sub_is_client, subject_token_jti, actor_token_jti)
		SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::boolean[], $11::text[], $12::text[])`
	auditMoveHeadSQL = `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`
	journalMarkSQL   = `INSERT INTO audit_journals (journal, seq) VALUES ($1, $2)
		ON CONFLICT (journal) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > audit_journals.seq`
	auditCheckpointSQL = `INSERT INTO audit_checkpoints (seq, hash, jws, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING`
)

// lockingTx runs fn in a READ COMMITTED transaction, whatever the
// server's default isolation: fn takes locks and then reads, and each of
// its statements must see what the previous holder of those locks
// committed. Under REPEATABLE READ or SERIALIZABLE the snapshot would be
// older than the lock, and a locking read of a row another transaction
// updated would fail with a serialization error instead of waiting.
func (s *Store) lockingTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
}

// AppendAudit appends the entries build returns, in one transaction. The
// transaction first locks the one row of audit_head (SELECT … FOR
// UPDATE), which holds the chain's head: appends from any number of
// Stores and nodes on the database queue on that lock and form one chain.
// build is called exactly once, under that lock, with the head it read;
// it must be quick and must not append through any Store on the same
// database (that append would wait for the lock build holds, for as long
// as ctx allows).
//
// The store does not recompute hashes, but it refuses, writing nothing, a
// batch that does not continue the chain: entries must have Seq
// head.Seq+1, head.Seq+2, …, the first must have Prev equal to head.Hash
// and each later one Prev equal to the Hash before it, and no Hash may be
// empty. A body that is not a JSON object in form ('{' … '}'), or that
// PostgreSQL refuses as text (invalid UTF-8, a NUL byte), fails the
// insert and rolls back the batch. Zero entries commit nothing. An error
// from build is returned wrapped, and nothing is written. The entries,
// the new head and the mark go to the server in one round trip.
//
// A non-zero mark is written in the same transaction, and only if it
// moves its journal's mark forward: a mark at or behind the recorded one
// is refused (the batch would repeat records already appended), and so is
// a marked batch with no entries.
func (s *Store) AppendAudit(ctx context.Context, mark sigil.JournalMark, build func(head sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
	err := s.lockingTx(ctx, func(tx pgx.Tx) error {
		var head sigil.AuditHead
		if err := tx.QueryRow(ctx, auditHeadSQL+` FOR UPDATE`).Scan(&head.Seq, &head.Hash); err != nil {
			return fmt.Errorf("lock head: %w", err)
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
			if mark.Journal == "" || mark.Seq <= 0 {
				return fmt.Errorf("journal mark %+v: want a journal id and a positive seq", mark)
			}
		}
		if len(entries) == 0 {
			return nil
		}
		return writeAudit(ctx, tx, mark, entries)
	})
	if err != nil {
		return errorf("postgres: append audit: %w", err)
	}
	return nil
}

// writeAudit sends, in one batch, the journal mark (if any), the entries
// and the new head, and checks that the mark moved its journal forward.
func writeAudit(ctx context.Context, tx pgx.Tx, mark sigil.JournalMark, entries []sigil.AuditEntry) (err error) {
	var b pgx.Batch
	if mark != (sigil.JournalMark{}) {
		b.Queue(journalMarkSQL, mark.Journal, mark.Seq)
	}
	b.Queue(auditInsertSQL, auditColumnArgs(entries)...)
	last := entries[len(entries)-1]
	b.Queue(auditMoveHeadSQL, last.Seq, last.Hash)
	br := tx.SendBatch(ctx, &b)
	defer func() {
		if cerr := br.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if mark != (sigil.JournalMark{}) {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("journal %q mark %d: %w", mark.Journal, mark.Seq, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("journal %q mark %d: not after the recorded mark: the batch was already appended", mark.Journal, mark.Seq)
		}
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("insert records %d to %d: %w", entries[0].Seq, last.Seq, err)
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("move head to %d: %w", last.Seq, err)
	}
	return nil
}

// auditColumnArgs returns the arrays auditInsertSQL takes, one per
// column, with the index columns written as the SQLite store writes them:
// an empty member is NULL, which the partial indexes leave out, and a
// subject equal to the client (client credentials: most agent traffic)
// is not indexed twice: sub is NULL and sub_is_client true, and subject
// queries also match client_id for such rows.
func auditColumnArgs(entries []sigil.AuditEntry) []any {
	n := len(entries)
	var (
		seq                         = make([]int64, n)
		prev, hash                  = make([][]byte, n), make([][]byte, n)
		body                        = make([]string, n)
		at, event, client, sub, jti = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		subIsClient                 = make([]bool, n)
		subjectToken, actorToken    = make([]*string, n), make([]*string, n)
	)
	for i, e := range entries {
		seq[i], prev[i], hash[i], body[i] = e.Seq, e.Prev, e.Hash, string(e.Body)
		s := e.Index.Subject
		if s != "" && s == e.Index.ClientID {
			s, subIsClient[i] = "", true
		}
		at[i], event[i], client[i], sub[i], jti[i] = nullable(e.Index.Time), nullable(e.Index.Event), nullable(e.Index.ClientID), nullable(s), nullable(e.Index.JTI)
		subjectToken[i], actorToken[i] = nullable(e.Index.SubjectTokenJTI), nullable(e.Index.ActorTokenJTI)
	}
	return []any{seq, prev, hash, body, at, event, client, sub, jti, subIsClient, subjectToken, actorToken}
}

// nullable stores an empty index value as NULL, which the partial indexes
// leave out, and so too a value PostgreSQL cannot hold as text (a NUL, or
// invalid UTF-8: an unauthenticated client id may be anything). The
// record stays whole in its body, where it is escaped; it is then only
// not found by that member, which no query could name anyway.
func nullable(s string) *string {
	if s == "" || !storable(s) {
		return nil
	}
	return &s
}

// JournalSeq returns the Seq of journal's mark, or 0 if it has none.
func (s *Store) JournalSeq(ctx context.Context, journal string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM audit_journals WHERE journal = $1`, journal).Scan(&seq)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, errorf("postgres: journal %q mark: %w", journal, err)
	}
	return seq, nil
}

// AuditHead returns the Seq and Hash of the chain's last record: Seq 0 and
// 32 zero bytes when the chain is empty. It reads audit_head, which every
// append moves in its own transaction, without locking it.
func (s *Store) AuditHead(ctx context.Context) (sigil.AuditHead, error) {
	var h sigil.AuditHead
	if err := s.pool.QueryRow(ctx, auditHeadSQL).Scan(&h.Seq, &h.Hash); err != nil {
		return sigil.AuditHead{}, errorf("postgres: read audit head: %w", err)
	}
	return h, nil
}

// AuditEntries returns up to limit records with Seq > after, in Seq order;
// limit must be positive and is not capped. It is the scan `sigil audit
// verify` runs over the whole chain, so it copies every row's byte fields
// straight from the driver's buffer into a few shared blocks: the entries
// of one call share backing arrays (each slice's capacity ends at its
// length, so appending to one never writes into another), and one
// retained entry keeps its block alive.
func (s *Store) AuditEntries(ctx context.Context, after int64, limit int) ([]sigil.AuditEntry, error) {
	if limit <= 0 {
		return nil, errorf("postgres: audit entries: limit %d, want > 0", limit)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, errorf("postgres: audit entries: %w", err)
	}
	es, err := scanAudit(rows, min(limit, MaxAuditLimit))
	if err != nil {
		return nil, errorf("postgres: audit entries: %w", err)
	}
	return es, nil
}

// QueryAudit returns the records q selects, in Seq order: its non-zero
// fields are ANDed; ClientID, Subject, JTI and Event match the body's
// "client_id", "sub", "jti" and "event" members exactly (as strings; a
// Subject also matches a record whose subject is its client, stored once
// as client_id); Since and Until, formatted as
// 2006-01-02T15:04:05.000000000Z in UTC (years clamped to 0000–9999),
// are compared with its "time" member as byte strings. Limit 0 means
// DefaultAuditLimit; a Limit above MaxAuditLimit is cut to it; a negative
// one is an error. Entries share backing arrays as in AuditEntries.
//
// Unlike the SQLite store, which turns a time bound into a seq bound by
// binary search and so assumes record time grows with seq (within a
// minute), the time filter here is exact whatever the order of record
// times: nodes appending to one chain may disagree about the time. A BRIN
// index on the time column serves narrow time ranges; a wide one is read
// in seq order, filtered, up to the limit.
func (s *Store) QueryAudit(ctx context.Context, q sigil.AuditQuery) ([]sigil.AuditEntry, error) {
	for _, v := range []string{q.ClientID, q.Subject, q.JTI, q.Event, q.ExchangedFrom} {
		if !storable(v) {
			return nil, nil // no stored record can have it
		}
	}
	query, args, limit, err := auditQuerySQL(q)
	if err != nil {
		return nil, errorf("postgres: query audit: %w", err)
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, errorf("postgres: query audit: %w", err)
	}
	es, err := scanAudit(rows, min(limit, DefaultAuditLimit))
	if err != nil {
		return nil, errorf("postgres: query audit: %w", err)
	}
	return es, nil
}

// auditQuerySQL builds the statement for q and returns it with its
// arguments and the effective limit.
func auditQuerySQL(q sigil.AuditQuery) (query string, args []any, limit int, err error) {
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
	param := func(arg any) string {
		args = append(args, arg)
		return "$" + strconv.Itoa(len(args))
	}
	if q.AfterSeq != 0 {
		where = append(where, "seq > "+param(q.AfterSeq))
	}
	if q.Subject != "" {
		p := param(q.Subject)
		where = append(where, "(sub = "+p+" OR (client_id = "+p+" AND sub_is_client))")
	}
	if q.ExchangedFrom != "" {
		p := param(q.ExchangedFrom)
		where = append(where, "(subject_token_jti = "+p+" OR actor_token_jti = "+p+")")
	}
	for _, f := range []struct{ column, value string }{
		{"client_id", q.ClientID},
		{"jti", q.JTI},
		{"event", q.Event},
	} {
		if f.value != "" {
			where = append(where, f.column+" = "+param(f.value))
		}
	}
	if !q.Since.IsZero() {
		where = append(where, "time >= "+param(rowcodec.AuditTime(q.Since)))
	}
	if !q.Until.IsZero() {
		where = append(where, "time < "+param(rowcodec.AuditTime(q.Until)))
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + auditColumns + ` FROM audit`)
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY seq LIMIT " + param(limit))
	return b.String(), args, limit, nil
}

// scanAudit reads rows of auditColumns and closes them. Scanning into
// []byte would allocate a copy per field; the fields are scanned as
// pgtype.DriverBytes, which point into the driver's read buffer until the
// next row, and copied into a block allocator.
func scanAudit(rows pgx.Rows, sizeHint int) ([]sigil.AuditEntry, error) {
	defer rows.Close()
	es := make([]sigil.AuditEntry, 0, sizeHint)
	var (
		prev, hash, body pgtype.DriverBytes
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
	if len(c.Hash) == 0 || c.JWS == "" {
		return errorf("postgres: add audit checkpoint %d: empty hash or JWS", c.Seq)
	}
	created := c.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	tag, err := s.pool.Exec(ctx, auditCheckpointSQL, c.Seq, c.Hash, c.JWS, rowcodec.UnixNano(created))
	if err != nil {
		return errorf("postgres: add audit checkpoint %d: %w", c.Seq, err)
	}
	if tag.RowsAffected() == 0 {
		return errorf("postgres: add audit checkpoint %d: %w", c.Seq, sigil.ErrConflict)
	}
	return nil
}

// Checkpoints returns every checkpoint in ascending Seq order, CreatedAt
// in UTC.
func (s *Store) Checkpoints(ctx context.Context) ([]sigil.AuditCheckpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, hash, jws, created_at FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		return nil, errorf("postgres: list audit checkpoints: %w", err)
	}
	defer rows.Close()
	var cs []sigil.AuditCheckpoint
	for rows.Next() {
		var (
			c       sigil.AuditCheckpoint
			created int64
		)
		if err := rows.Scan(&c.Seq, &c.Hash, &c.JWS, &created); err != nil {
			return nil, errorf("postgres: list audit checkpoints: %w", err)
		}
		c.CreatedAt = rowcodec.FromUnixNano(created)
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, errorf("postgres: list audit checkpoints: %w", err)
	}
	return cs, nil
}
