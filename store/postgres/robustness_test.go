package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/internal/pgtest"
	"github.com/sigil-sts/sigil/store/postgres"
	"github.com/sigil-sts/sigil/store/sqlite"
)

// TestAuditUnstorableIndex: an index value PostgreSQL cannot hold as text
// (a NUL, invalid UTF-8: an attacker's client_id on a refused request)
// does not make it refuse the batch; the record is stored whole.
func TestAuditUnstorableIndex(t *testing.T) {
	ctx := context.Background()
	pg := openStore(t, freshSchema(t))
	defer pg.Close()
	lite, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	for _, id := range []string{"\x00", "ab\xff", strings.Repeat("é", 128)[:255]} {
		for name, st := range map[string]sigil.Store{"sqlite": lite, "postgres": pg} {
			d := audit.Direct{Store: st, Node: "n"}
			err := d.Append(ctx, audit.Record{Event: audit.TokenRefused, Outcome: audit.Failure, ClientID: id})
			if err != nil {
				t.Errorf("%s: client_id %q: %v (unavailable=%v)", name, id, err, errors.Is(err, sigil.ErrUnavailable))
			}
		}
	}
}

// TestPromoteCreateNoDeadlock: CreateKey of an active key racing
// PromoteKey of the same algorithm, when no key of it is active, does not
// deadlock (the change counter's row and the unique index would form a
// cycle unless key writers lock the counter first).
func TestPromoteCreateNoDeadlock(t *testing.T) {
	ctx := context.Background()
	dsn := freshSchema(t)
	s := openStore(t, dsn)
	defer s.Close()
	next := &sigil.SigningKey{ID: "n1", Alg: "ES384", State: sigil.KeyNext, Public: []byte{1}, Sealed: []byte{1}}
	if err := s.CreateKey(ctx, next); err != nil {
		t.Fatal(err)
	}
	side, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer side.Close(ctx)
	tx, _ := side.Begin(ctx)
	if _, err := tx.Exec(ctx, `SELECT n FROM changes WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var perr, cerr error
	wg.Add(2)
	go func() { defer wg.Done(); perr = s.PromoteKey(ctx, "n1", time.Now()) }()
	time.Sleep(300 * time.Millisecond) // promote waits on the changes row in its retire statement's trigger
	go func() {
		defer wg.Done()
		cerr = s.CreateKey(ctx, &sigil.SigningKey{ID: "a1", Alg: "ES384", State: sigil.KeyActive, Public: []byte{1}, Sealed: []byte{1}})
	}()
	time.Sleep(300 * time.Millisecond)
	tx.Rollback(ctx)
	wg.Wait()
	t.Logf("promote: %v\ncreate: %v", perr, cerr)
	for _, e := range []error{perr, cerr} {
		if e != nil && !errors.Is(e, sigil.ErrConflict) {
			t.Errorf("want nil or ErrConflict, got %v", e)
		}
	}
}

// TestConcurrentMigrateRepeatableRead: nodes migrating at once on a server
// whose default isolation is REPEATABLE READ still migrate once: migrate
// asks for READ COMMITTED.
func TestConcurrentMigrateRepeatableRead(t *testing.T) {
	dsn := freshSchema(t) + "&default_transaction_isolation=repeatable%20read"
	const nodes = 6
	errs := make(chan error, nodes)
	for range nodes {
		go func() {
			s, err := postgres.Open(context.Background(), dsn)
			if s != nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestTooManyConnectionsUnavailable: a server refusing connections (too
// many) is an outage, reported as sigil.ErrUnavailable, not a bug.
func TestTooManyConnectionsUnavailable(t *testing.T) {
	ctx := context.Background()
	dsn := freshSchema(t)
	openStore(t, dsn).Close()
	admin, err := pgx.Connect(ctx, pgtest.BaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 4)
	rand.Read(b)
	role := "sigil_test_limited_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, `CREATE ROLE `+role+` LOGIN PASSWORD 'limited' CONNECTION LIMIT 0`); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(ctx, `DROP ROLE `+role)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "limited")
	_, err = postgres.Open(ctx, u.String())
	t.Logf("open: %v", err)
	if !errors.Is(err, sigil.ErrUnavailable) {
		t.Errorf("53300 too_many_connections not classified ErrUnavailable")
	}
}
