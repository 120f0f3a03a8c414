package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sigil "github.com/sigil-sts/sigil"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the name of the database file inside the directory given to
// Open.
const FileName = "sigil.db"

// maxConns bounds the connection pool. WAL lets readers run in parallel;
// writers queue on SQLite's lock whatever the pool size.
const maxConns = 8

// Store is a sigil.Store backed by one SQLite database file. Create it with
// Open; it is safe for concurrent use once Open has returned.
type Store struct {
	// Now returns the current time. Open sets it to time.Now; tests may
	// replace it before the Store is used. It stamps client and user
	// CreatedAt and UpdatedAt, key, checkpoint and refresh token CreatedAt
	// and a code's Redemption.At when the caller leaves them zero, and a
	// key's archived_at, and is the "now" against which MarkJTI decides
	// whether an entry has expired and the authorization state's lookups
	// whether a record is live.
	Now func() time.Time

	db      *sql.DB
	writeMu sync.Mutex // see writing
	// rotations wait here for the next group commit (RotateRefresh).
	rotationsMu sync.Mutex
	rotations   []*rotation
	// wconn is the connection every write goes through (under writeMu):
	// its page cache stays valid from one write to the next, where a
	// pooled connection finds that another one wrote since its last use
	// and drops its whole cache (8 MiB) before every audit batch.
	wconn *sql.Conn

	// Statements prepared once in Open for the hot paths. A *sql.Stmt is
	// safe for concurrent use; database/sql prepares it again on each
	// pooled connection that first runs it.
	clientStmt *sql.Stmt
	// The refresh-token grant's statements: two reads and, in the
	// rotation's transaction (through tx.StmtContext), an update and an
	// insert. Parsing them anew took a fifth of a refresh's CPU time
	// (BenchmarkRefreshParallel).
	familyStmt, userStmt, rotateStmt, insertAccessStmt *sql.Stmt
	revokedStmt                                        *sql.Stmt
	markStmt                                           *sql.Stmt

	versionStmt *sql.Stmt

	// The audit trail's statements: AppendAudit runs the head query and
	// the insert through tx.StmtContext, which reuses the statement
	// already prepared on the transaction's connection.
	auditHeadStmt    *sql.Stmt
	journalMarkStmt  *sql.Stmt
	auditInsertChunk []*sql.Stmt // INSERTs of auditChunks[i] rows
	auditEntriesStmt *sql.Stmt

	stopCheckpoints chan struct{} // closed by Close
	checkpointsDone chan struct{} // closed when checkpointLoop has ended

	mu     sync.Mutex // guards closed
	closed bool
}

// Open opens (creating if needed) the store in dir: the directory with mode
// 0700, the database file dir/sigil.db with mode 0600. It applies pending
// migrations and prepares the hot-path statements. Several processes may
// open the same directory at once.
func Open(ctx context.Context, dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("sqlite: open: empty directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create directory: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// Create the file ourselves so that SQLite never creates it with the
	// process umask (typically 0644): it holds sealed keys and secret
	// hashes. SQLite gives the -wal and -shm files the mode of the main
	// file; chmodFiles below makes sure of it.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("sqlite: create database file: %w", err)
		}
	case errors.Is(err, fs.ErrExist):
	default:
		return nil, fmt.Errorf("sqlite: create database file: %w", err)
	}

	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	// Keep idle connections: each new one re-runs the pragmas and
	// re-prepares the statements.
	db.SetMaxIdleConns(maxConns)

	s := &Store{Now: time.Now, db: db, stopCheckpoints: make(chan struct{}), checkpointsDone: make(chan struct{})}
	if err := s.open(ctx, path); err != nil {
		close(s.checkpointsDone)
		s.Close()
		return nil, err
	}
	go s.checkpointLoop()
	return s, nil
}

// checkpointInterval is how often checkpointLoop moves the WAL into the
// database file. Each checkpoint copies the newest version of every page
// written since the last one and fsyncs the file, so under a steady audit
// load fewer checkpoints copy the pages every commit rewrites (the last
// leaf of the table and of each index) fewer times; a second keeps the WAL
// to a few megabytes at ten thousand records a second.
const checkpointInterval = time.Second

// checkpointLoop runs passive WAL checkpoints (they never block writers or
// readers) off the commit path until Close. When the last connection
// closes, SQLite checkpoints once more by itself.
func (s *Store) checkpointLoop() {
	defer close(s.checkpointsDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCheckpoints:
			return
		case <-t.C:
			s.db.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// dsn returns the driver name for the database file at the absolute path.
// The path goes into a file: URI, percent-encoded, so that '?', '#' or '%'
// in a directory name cannot be read as URI syntax.
func dsn(path string) string {
	q := url.Values{
		"_pragma": {
			"busy_timeout(5000)",
			// 4 MiB of page cache per connection (the default is 2 MiB):
			// an audit batch (at most 1,024 records, about a megabyte of
			// pages) then rarely spills dirty pages before its commit.
			// 8 MiB held 9 MiB more of the server's memory under load
			// (BENCHMARKS.md, issue 8) and measured no faster.
			"cache_size(-4096)",
			// No checkpoint inside a commit: the audit writer's commits would
			// wait for its fsync while every token request waits for them.
			// checkpointLoop checkpoints in the background instead.
			"wal_autocheckpoint(0)",
			"journal_mode(WAL)",
			"synchronous(NORMAL)",
			// Statement journals (a multi-row INSERT's undo log) in memory,
			// not in temporary files.
			"temp_store(MEMORY)",
			"foreign_keys(1)",
		},
		"_txlock": {"immediate"},
	}
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows volume: file:///C:/…
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

func (s *Store) open(ctx context.Context, path string) error {
	if err := migrate(ctx, s.db); err != nil {
		return err
	}
	if err := chmodFiles(path); err != nil {
		return err
	}
	var err error
	if s.clientStmt, err = s.db.PrepareContext(ctx, clientByIDSQL); err != nil {
		return fmt.Errorf("sqlite: prepare client query: %w", err)
	}
	if s.revokedStmt, err = s.db.PrepareContext(ctx, revokedSQL); err != nil {
		return fmt.Errorf("sqlite: prepare revocation query: %w", err)
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.familyStmt, familyByIDSQL}, {&s.userStmt, userByIDSQL},
		{&s.rotateStmt, rotateFamilySQL}, {&s.insertAccessStmt, insertAccessSQL},
	} {
		if *p.stmt, err = s.db.PrepareContext(ctx, p.sql); err != nil {
			return fmt.Errorf("sqlite: prepare %q: %w", p.sql, err)
		}
	}
	if s.wconn, err = s.db.Conn(ctx); err != nil {
		return fmt.Errorf("sqlite: open the write connection: %w", err)
	}
	if s.markStmt, err = s.wconn.PrepareContext(ctx, markJTISQL); err != nil {
		return fmt.Errorf("sqlite: prepare replay statement: %w", err)
	}
	if s.versionStmt, err = s.db.PrepareContext(ctx, "SELECT n FROM changes WHERE id = 1"); err != nil {
		return fmt.Errorf("sqlite: prepare change counter query: %w", err)
	}
	if s.auditHeadStmt, err = s.db.PrepareContext(ctx, auditHeadSQL); err != nil {
		return fmt.Errorf("sqlite: prepare audit head query: %w", err)
	}
	for _, n := range auditChunks {
		st, err := s.db.PrepareContext(ctx, auditInsertSQLFor(n))
		if err != nil {
			return fmt.Errorf("sqlite: prepare audit insert: %w", err)
		}
		s.auditInsertChunk = append(s.auditInsertChunk, st)
	}
	if s.auditEntriesStmt, err = s.db.PrepareContext(ctx, auditEntriesSQL); err != nil {
		return fmt.Errorf("sqlite: prepare audit scan: %w", err)
	}
	if s.journalMarkStmt, err = s.db.PrepareContext(ctx, journalMarkSQL); err != nil {
		return fmt.Errorf("sqlite: prepare journal mark: %w", err)
	}
	return nil
}

// chmodFiles narrows the database file and its WAL and shared-memory files
// to 0600 when they exist, also for a database created by an older release
// or by hand. The directory is left alone: it may be shared.
func chmodFiles(path string) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		err := os.Chmod(path+suffix, 0o600)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlite: chmod %s: %w", filepath.Base(path+suffix), err)
		}
	}
	return nil
}

// Version returns the store's change counter: a number that a trigger
// bumps with every committed write to clients or signing keys,
// by this or any other process on the same file (migration 0002). Writes to
// the replay cache do not move it. Values from any Store on the same
// database are comparable.
func (s *Store) Version(ctx context.Context) (int64, error) {
	var n int64
	if err := s.versionStmt.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: read change counter: %w", err)
	}
	return n, nil
}

// Close closes the prepared statements, the reserved connection and the
// database. It is safe to call more than once; the Store must not be used
// afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stopCheckpoints)
	<-s.checkpointsDone
	var errs []error
	for _, st := range []*sql.Stmt{
		s.clientStmt, s.revokedStmt, s.markStmt, s.versionStmt,
		s.familyStmt, s.userStmt, s.rotateStmt, s.insertAccessStmt,
		s.auditHeadStmt, s.auditEntriesStmt, s.journalMarkStmt,
	} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, st := range s.auditInsertChunk {
		errs = append(errs, st.Close())
	}
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	errs = append(errs, s.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// inTx runs fn in one read-write transaction, which (through _txlock)
// begins with BEGIN IMMEDIATE, and commits it when fn returns nil. The
// transaction is rolled back when fn fails or panics (AppendAudit runs a
// caller's function inside it): a transaction left open would hold the
// write lock and its connection.
func inTx(ctx context.Context, db interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a no-op returning ErrTxDone
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// writing takes the store's write lock and returns its release: every
// write of this Store goes through it. SQLite lets one writer in at a
// time and makes the others poll with sleeps of 1 to 100 ms (the busy
// handler); queueing this process's writers on a mutex instead hands the
// lock over in microseconds. Token requests with DPoP proofs or client
// assertions (a replay-cache write each) waited behind the audit writer's
// commits for milliseconds before. Other processes on the same file still
// meet SQLite's lock and the busy timeout.
func (s *Store) writing() func() {
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

// now returns s.Now in UTC, truncated to microseconds so that a stored
// timestamp reads back equal in every store implementation (PostgreSQL
// keeps microseconds).

func (s *Store) now() time.Time {
	return s.Now().UTC().Truncate(time.Microsecond)
}

// isConstraint reports whether err is a SQLite UNIQUE or PRIMARY KEY
// constraint violation.
func isConstraint(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

var _ sigil.Store = (*Store)(nil)
