// Package postgres is Sigil's store on PostgreSQL (and PostgreSQL-
// compatible databases), for several stateless nodes sharing one
// database. It implements sigil.Store with the semantics the conformance
// suite (store/storetest) fixes for every store, through a pgx connection
// pool. Its migrations are embedded and applied by Open under an advisory
// lock, so nodes starting together migrate once.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	sigil "github.com/sigil-sts/sigil"
)

// defaultConnectTimeout bounds a connection attempt when the DSN sets no
// connect_timeout.
const defaultConnectTimeout = 3 * time.Second

// sessionDefaults are the session settings every connection gets unless
// the DSN names them.
var sessionDefaults = map[string]string{
	"statement_timeout":                   "15s",
	"lock_timeout":                        "10s",
	"idle_in_transaction_session_timeout": "30s",
}

// Store is a sigil.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	// Now returns the current time. Open sets it to time.Now; tests may
	// replace it before the Store is used. It plays the part it plays in
	// the SQLite store (see sqlite.Store.Now).
	Now func() time.Time

	pool *pgxpool.Pool
}

var (
	_ sigil.Store          = (*Store)(nil)
	_ sigil.ChangeNotifier = (*Store)(nil)
)

// Open connects to the database dsn names (a postgres:// URL; its
// search_path parameter, if any, picks the schema), applies the
// migrations it lacks and returns the Store.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errorf("postgres: parse dsn: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A database that does not answer fails requests in seconds
		// rather than holding them (connect_timeout in the DSN overrides).
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	// Nothing waits for ever: a statement, a lock, or a node's transaction
	// left open by a network partition (it would hold the audit chain's
	// head for every node). Settings in the DSN override these.
	for name, value := range sessionDefaults {
		if _, set := cfg.ConnConfig.RuntimeParams[name]; !set {
			cfg.ConnConfig.RuntimeParams[name] = value
		}
	}
	// A database that stops answering (a black hole, not a refused
	// connection) fails the statement once unacknowledged data has waited
	// this long, instead of at the kernel's retransmission limit.
	dialer := &net.Dialer{KeepAlive: 5 * time.Second, Control: setUserTimeout}
	cfg.ConnConfig.DialFunc = dialer.DialContext
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{Now: time.Now, pool: pool}, nil
}

// Close closes the pool. It is safe to call more than once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Version returns the change counter, which statement triggers bump on
// every write to clients or signing keys, from any node.
func (s *Store) Version(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT n FROM changes WHERE id = 1`).Scan(&n); err != nil {
		return 0, errorf("postgres: read change counter: %w", err)
	}
	return n, nil
}

// inTx runs fn in a transaction and commits it, or rolls it back if fn or
// the commit fails.
//
// Transactions are READ COMMITTED, whatever the server's default: several
// take a lock and then read, and must see what the lock's previous holder
// committed (see lockingTx).
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
}

// now returns s.Now in UTC, truncated to microseconds like the SQLite
// store's.
func (s *Store) now() time.Time {
	return s.Now().UTC().Truncate(time.Microsecond)
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// Migration is one schema change: its version, file name and SQL.
type Migration struct {
	Version   int
	Name, SQL string
}

// Pending returns the migrations the schema dsn selects lacks, in order,
// without applying them (Open applies them).
func Pending(ctx context.Context, dsn string) ([]Migration, error) {
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, errorf("postgres: connect: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, errorf("postgres: read schema version: %w", err)
	}
	var applied int
	if exists {
		if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
			return nil, errorf("postgres: read schema version: %w", err)
		}
	}
	if applied > len(ms) {
		return nil, errorf("postgres: database schema version %d is newer than this binary supports (%d); upgrade sigil", applied, len(ms))
	}
	var out []Migration
	for _, m := range ms[applied:] {
		out = append(out, Migration{Version: m.version, Name: m.name, SQL: m.sql})
	}
	return out, nil
}

// loadMigrations reads the embedded migrations, which must be numbered 1,
// 2, 3, … without gaps.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, errorf("postgres: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, errorf("postgres: migration %s: name must be NNNN_description.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, errorf("postgres: read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, errorf("postgres: migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate applies the migrations the schema lacks, in one transaction
// that first takes a transaction-level advisory lock named after the
// schema: nodes starting at once queue on it, and each after the first
// finds the work done.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	// READ COMMITTED: each statement after the lock must see what the
	// node that held it before committed.
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('sigil migrations ' || current_schema(), 0))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var applied int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
			return err
		}
		if applied > len(ms) {
			return fmt.Errorf("database schema version %d is newer than this binary supports (%d); upgrade sigil", applied, len(ms))
		}
		for _, m := range ms[applied:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.version); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return errorf("postgres: migrate: %w", err)
	}
	return nil
}

// errorf is fmt.Errorf for the store's errors: an error that says the
// database cannot be reached (no connection, a connection lost, the
// server shutting down or starting up) also wraps sigil.ErrUnavailable.
func errorf(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	if unreachable(err) {
		return unavailableError{err}
	}
	return err
}

// unavailableError marks err as sigil.ErrUnavailable.
type unavailableError struct{ error }

func (e unavailableError) Unwrap() error { return e.error }

func (e unavailableError) Is(target error) bool { return target == sigil.ErrUnavailable }

// unreachable reports whether err means the database could not be
// reached, rather than that it refused the request.
func unreachable(err error) bool {
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true // whatever the server said: too many connections, starting up…
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 53300: too many connections;
		// 57P01-57P03: the server is shutting down or starting up; 25006:
		// read-only, a standby during a failover.
		switch pgErr.Code {
		case "53300", "57P01", "57P02", "57P03", "25006":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.Timeout(err) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
