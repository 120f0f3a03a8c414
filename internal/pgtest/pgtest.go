// Package pgtest gives tests an empty PostgreSQL schema of their own on
// the test database: SIGIL_TEST_POSTGRES, or the local server with trust
// authentication. Tests that need it fail, never skip, when the database
// cannot be reached; CI starts it (.ci/run).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// BaseDSN is the test database.
func BaseDSN() string {
	if v := os.Getenv("SIGIL_TEST_POSTGRES"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// FreshSchema creates an empty schema, dropped when the test ends, and
// returns a DSN whose search_path selects it.
func FreshSchema(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, BaseDSN())
	if err != nil {
		tb.Fatalf("PostgreSQL is not reachable at %s (CI starts it; set SIGIL_TEST_POSTGRES to use another): %v", BaseDSN(), err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	rand.Read(b)
	name := "sigil_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, BaseDSN())
		if err != nil {
			tb.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Error(err)
		}
	})
	u, err := url.Parse(BaseDSN())
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}
