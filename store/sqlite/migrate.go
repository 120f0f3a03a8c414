package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// A migration is one numbered schema change.
type migration struct {
	version int
	name    string // file name, for errors
	sql     string
}

// loadMigrations reads the embedded migrations, ordered by version. The
// versions must run 1, 2, 3, … without gaps or duplicates.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlite: migration %s: name must be NNNN_description.sql", name)
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, fmt.Errorf("sqlite: read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlite: migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// Migration is one schema change: its version, file name and SQL.
type Migration struct {
	Version   int
	Name, SQL string
}

// Pending returns the migrations the store in dir lacks, in order,
// without applying them (Open applies them). A directory without a
// database lacks them all.
func Pending(ctx context.Context, dir string) ([]Migration, error) {
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	applied := 0
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err == nil {
		db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?mode=ro")
		if err != nil {
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		defer db.Close()
		if applied, err = appliedVersion(ctx, db); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if applied > len(ms) {
		return nil, fmt.Errorf("sqlite: database schema version %d is newer than this binary supports (%d); upgrade sigil", applied, len(ms))
	}
	var out []Migration
	for _, m := range ms[applied:] {
		out = append(out, Migration{Version: m.version, Name: m.name, SQL: m.sql})
	}
	return out, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at TEXT NOT NULL
)`

// migrate applies the migrations db lacks. Each runs in its own immediate
// transaction that re-checks schema_migrations after taking the write
// lock, so when two processes race on a new database the second finds the
// work done and skips it.
//
// While another connection turns a new database into WAL mode, SQLite can
// answer SQLITE_BUSY without waiting the busy timeout; migrate then tries
// again, for up to about five seconds.
func migrate(ctx context.Context, db *sql.DB) error {
	for attempt := 1; ; attempt++ {
		err := migrateOnce(ctx, db)
		if err == nil || !isBusy(err) || attempt == 50 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(time.Duration(attempt)*10*time.Millisecond, 100*time.Millisecond)):
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY, or one of its
// extended codes.
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

func migrateOnce(ctx context.Context, db *sql.DB) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	// A cheap read first: an up-to-date database, the usual case, needs no
	// write lock at all.
	applied, err := appliedVersion(ctx, db)
	if err != nil {
		return err
	}
	if applied > len(ms) {
		return fmt.Errorf("sqlite: database schema version %d is newer than this binary supports (%d); upgrade sigil", applied, len(ms))
	}
	for _, m := range ms[applied:] {
		err := inTx(ctx, db, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
				return err
			}
			var done bool
			err := tx.QueryRowContext(ctx,
				"SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)", m.version).Scan(&done)
			if err != nil || done {
				return err
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx,
				"INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
				m.version, time.Now().UTC().Format(time.RFC3339Nano))
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: apply migration %s: %w", m.name, err)
		}
	}
	return nil
}

// appliedVersion returns the highest recorded migration, 0 for a new
// database.
func appliedVersion(ctx context.Context, db *sql.DB) (int, error) {
	var exists bool
	err := db.QueryRowContext(ctx,
		"SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations')").Scan(&exists)
	if err != nil {
		return 0, fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: read schema version: %w", err)
	}
	return int(v.Int64), nil
}
