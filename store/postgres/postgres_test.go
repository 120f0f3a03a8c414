package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/postgres"
	"github.com/sigil-sts/sigil/store/storetest"
)

// baseDSN is the database the tests use: SIGIL_TEST_POSTGRES, or the
// local server with trust authentication. The tests fail, never skip,
// when it cannot be reached: CI starts it (.ci/run).
func baseDSN() string {
	if v := os.Getenv("SIGIL_TEST_POSTGRES"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// freshSchema creates an empty schema, dropped when the test ends, and
// returns a DSN whose search_path selects it.
func freshSchema(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, baseDSN())
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable at %s (CI starts it; set SIGIL_TEST_POSTGRES to use another): %v", baseDSN(), err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	rand.Read(b)
	name := "sigil_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, baseDSN())
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(baseDSN())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func openStore(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sigil.Store { return openStore(t, freshSchema(t)) })
}
