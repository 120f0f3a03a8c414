package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sigil-sts/sigil/internal/pgtest"
)

// TestMigrateRegisteredOpen: migration 0005 marks the dynamically
// registered clients that predate it and lack client_credentials as
// registered openly (failing closed), as the SQLite store's 0009 does.
func TestMigrateRegisteredOpen(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.FreshSchema(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:4] {
		if _, err := conn.Exec(ctx, m.sql); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.version); err != nil {
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
		_, err := conn.Exec(ctx, `INSERT INTO clients (id, name, auth_method, grant_types, scopes, default_scopes,
			audiences, redirect_uris, claims, access_token_ttl, dpop_bound, introspect, created_at, updated_at, registration_token_hash)
			VALUES ($1, 'n', 'none', $2, '[]', '[]', '[]', '[]', '{}', 0, false, false, 1, 1, $3)`, c.id, c.grants, c.rat)
		if err != nil {
			t.Fatal(err)
		}
	}

	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
