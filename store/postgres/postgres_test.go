package postgres_test

import (
	"context"
	"testing"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/internal/pgtest"
	"github.com/sigil-sts/sigil/store/postgres"
	"github.com/sigil-sts/sigil/store/storetest"
)

// freshSchema is pgtest.FreshSchema: an empty schema of the test's own.
func freshSchema(t testing.TB) string { return pgtest.FreshSchema(t) }

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
