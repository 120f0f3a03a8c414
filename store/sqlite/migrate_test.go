package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

// TestMigrateRegisteredOpen: migration 0009 marks the dynamically
// registered clients that predate it and lack client_credentials as
// registered openly (failing closed), and leaves the operator's clients
// and registrations holding client_credentials (which only a vetted
// registration could get) as they were.
func TestMigrateRegisteredOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := migratedTo(t, dir, "0008_revoked_families.sql")
	for _, c := range []struct {
		id, grants string
		rat        []byte
	}{
		{"operator", `["authorization_code"]`, nil},
		{"open", `["authorization_code","refresh_token"]`, []byte{1}},
		{"vetted", `["client_credentials"]`, []byte{2}},
	} {
		_, err := db.ExecContext(ctx, `INSERT INTO clients (id, name, auth_method, grant_types, scopes, default_scopes,
			audiences, redirect_uris, claims, access_token_ttl, dpop_bound, introspect, created_at, updated_at, registration_token_hash)
			VALUES (?, 'n', 'none', ?, '[]', '[]', '[]', '[]', '{}', 0, 0, 0, 1, 1, ?)`, c.id, c.grants, c.rat)
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := openClosed(t, dir)
	for id, want := range map[string]bool{"operator": false, "open": true, "vetted": false} {
		c, err := s.Client(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.RegisteredOpen != want {
			t.Errorf("client %s: RegisteredOpen = %v after migration, want %v", id, c.RegisteredOpen, want)
		}
	}
}

// TestMigrateRefreshFamilies: migration 0010 drops the refresh tokens of
// 0007 (their format changed; their users sign in again) and the
// revoked-family marks of 0008, and the store then keeps families.
func TestMigrateRefreshFamilies(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := migratedTo(t, dir, "0009_registered_open.sql")
	for _, q := range []string{
		`INSERT INTO refresh_tokens VALUES ('h', 'f', 'c', 'u', '[]', '[]', 1, '[]', '', '', 'j', 1, 9e18, 9e18, NULL, 0)`,
		`INSERT INTO revoked_families VALUES ('g', 1)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := openClosed(t, dir)
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name IN ('refresh_tokens', 'revoked_families')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("0007's and 0008's refresh tables: %d left (%v), want none", n, err)
	}
	f := &sigil.RefreshFamily{ID: "f", ClientID: "c", TokenHash: "h", IdleExpiresAt: time.Now().Add(time.Hour), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateRefreshFamily(ctx, f, sigil.IssuedToken{}); err != nil {
		t.Errorf("CreateRefreshFamily after the migration: %v", err)
	}
}

// migratedTo opens a new database file in dir with the embedded
// migrations applied up to and including the one named last, as a store
// of that version left it, and returns it open.
func migratedTo(t *testing.T, dir, last string) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(dir, FileName)))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, createMigrationsTable); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if _, err := db.ExecContext(ctx, m.sql); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'test')", m.version); err != nil {
			t.Fatal(err)
		}
		if m.name == last {
			return db
		}
	}
	t.Fatalf("no migration %s", last)
	return nil
}
