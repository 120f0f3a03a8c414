package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// TestConcurrentMigrate: nodes starting at once on an empty schema
// migrate it once; every one of them opens.
func TestConcurrentMigrate(t *testing.T) {
	dsn := freshSchema(t)
	const nodes = 6
	errs := make(chan error, nodes)
	stores := make(chan *postgres.Store, nodes)
	for range nodes {
		go func() {
			s, err := postgres.Open(context.Background(), dsn)
			errs <- err
			stores <- s
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		if s := <-stores; s != nil {
			defer s.Close()
		}
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, versions int
	if err := conn.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != versions || rows == 0 {
		t.Errorf("schema_migrations has %d rows for %d versions: a migration ran twice", rows, versions)
	}
}

// TestNewerSchemaRefused: a binary refuses a schema migrated by a newer
// one rather than run against tables it does not know.
func TestNewerSchemaRefused(t *testing.T) {
	dsn := freshSchema(t)
	openStore(t, dsn).Close()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `INSERT INTO schema_migrations (version) VALUES (9999)`); err != nil {
		t.Fatal(err)
	}
	if s, err := postgres.Open(context.Background(), dsn); err == nil {
		s.Close()
		t.Fatal("Open on a schema of version 9999 succeeded")
	}
}

// TestWatchChanges: a change committed through one Store reaches another
// Store's WatchChanges at once; a change in another schema of the same
// database does not.
func TestWatchChanges(t *testing.T) {
	dsn := freshSchema(t)
	writer, listener, other := openStore(t, dsn), openStore(t, dsn), openStore(t, freshSchema(t))
	defer writer.Close()
	defer listener.Close()
	defer other.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 16)
	listening := make(chan error, 1)
	go func() { listening <- listener.WatchChanges(ctx, func() { changed <- struct{}{} }) }()
	// The listener is up once a change of its own schema gets through.
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		if err := writer.CreateClient(ctx, &sigil.Client{ID: fmt.Sprintf("c%d", i), Name: "c", AuthMethod: sigil.AuthNone}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-time.After(100 * time.Millisecond):
			continue
		case err := <-listening:
			t.Fatalf("WatchChanges returned: %v", err)
		case <-deadline:
			t.Fatal("no notification within 5 s")
		}
		break
	}
	for len(changed) > 0 {
		<-changed
	}
	if err := other.CreateClient(ctx, &sigil.Client{ID: "elsewhere", Name: "c", AuthMethod: sigil.AuthNone}); err != nil {
		t.Fatal(err)
	}
	if err := writer.DeleteClient(ctx, "c0"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("DeleteClient: no notification within 5 s")
	}
	select {
	case <-changed:
		t.Error("a second notification: the other schema's change got through")
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-listening; err == nil {
		t.Error("WatchChanges returned nil after its context ended")
	}
}
