package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestMigrateRegisteredOpen: migration 0009 marks the dynamically
// registered clients that predate it and lack client_credentials as
// registered openly (failing closed), and leaves the operator's clients
// and registrations holding client_credentials (which only a vetted
// registration could get) as they were.
func TestMigrateRegisteredOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
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
	for _, m := range ms[:8] {
		if _, err := db.ExecContext(ctx, m.sql); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'test')", m.version); err != nil {
			t.Fatal(err)
		}
	}
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
