package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/postgres"
)

// These tests hold another node's write to a refresh family open in a
// transaction of their own, start a store call that must wait for it,
// check that it does wait (PostgreSQL reports it blocked by that
// transaction), commit, and check what the call did after the wait.

// held is a transaction in flight on a connection of its own.
type held struct {
	tx  pgx.Tx
	pid uint32
}

// inFlight opens a connection to dsn, begins a transaction and runs
// stmts in it, as another node's write would; the caller commits it.
func inFlight(t *testing.T, dsn string, stmts ...string) *held {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) })
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return &held{tx: tx, pid: conn.PgConn().PID()}
}

func (h *held) commit(t *testing.T) {
	t.Helper()
	if err := h.tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitBlocked returns once a session waits for h's transaction, and
// fails t if done delivers first: the call finished without waiting.
func waitBlocked[T any](t *testing.T, dsn, what string, h *held, done <-chan T) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case r := <-done:
			t.Fatalf("%s did not wait for the transaction in flight: %+v", what, r)
		default:
		}
		var blocked bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE $1::int = ANY(pg_blocking_pids(pid)))`, h.pid).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		if blocked {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s is not waiting for the transaction in flight after 10 s", what)
}

type revokeResult struct {
	jtis []string
	err  error
}

// live is an instant well after every test ends.
var live = time.Now().Add(time.Hour)

// newFamily creates family id of alice at client web, at generation 0
// with token hash "h0", and its first access token, "<id>-jti-0".
func newFamily(t *testing.T, s *postgres.Store, id string) {
	t.Helper()
	f := &sigil.RefreshFamily{ID: id, ClientID: "web", UserID: "alice", Scopes: []string{"openid"},
		TokenHash: "h0", IdleExpiresAt: live, ExpiresAt: live}
	if err := s.CreateRefreshFamily(t.Context(), f, sigil.IssuedToken{JTI: id + "-jti-0", ExpiresAt: live}); err != nil {
		t.Fatal(err)
	}
}

// rotationSQL is another node's rotation of family id from generation 0
// to 1, and the access token it issued, id-jti-1, expiring after
// id-jti-0.
func rotationSQL(id string) []string {
	return []string{
		fmt.Sprintf(`UPDATE refresh_families SET generation = 1, token_hash = 'h1', rotated_at = 1
			WHERE id = '%s' AND generation = 0`, id),
		fmt.Sprintf(`INSERT INTO refresh_access (family_id, jti, expires_at) VALUES ('%s', '%[1]s-jti-1', %d)`,
			id, live.Add(time.Minute).UnixNano()),
	}
}

// rotation is the store's rotation of family id from generation 0.
func rotation(id string) sigil.RefreshRotation {
	return sigil.RefreshRotation{FamilyID: id, Generation: 0, TokenHash: "h0", NextHash: "h1-here",
		At: time.Now(), IdleExpiresAt: live, Access: sigil.IssuedToken{JTI: id + "-jti-here", ExpiresAt: live}}
}

// accessRecorded reports whether jti is recorded as issued from family.
func accessRecorded(t *testing.T, dsn, family, jti string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM refresh_access WHERE family_id = $1 AND jti = $2`,
		family, jti).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestRevokeWaitsForRotation: a revocation during another node's
// rotation of the family waits for it, then returns the access token the
// rotation issued too, and leaves the rotated family revoked.
func TestRevokeWaitsForRotation(t *testing.T) {
	for _, tt := range []struct {
		name   string
		revoke func(*postgres.Store) ([]string, error)
	}{
		{"family", func(s *postgres.Store) ([]string, error) { return s.RevokeRefreshFamily(context.Background(), "fam") }},
		{"user and client", func(s *postgres.Store) ([]string, error) {
			return s.RevokeRefreshTokens(context.Background(), "alice", "web")
		}},
		{"user", func(s *postgres.Store) ([]string, error) {
			return s.RevokeRefreshTokens(context.Background(), "alice", "")
		}},
		{"client", func(s *postgres.Store) ([]string, error) {
			return s.RevokeRefreshTokens(context.Background(), "", "web")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := freshSchema(t)
			s := openStore(t, dsn)
			t.Cleanup(func() { s.Close() })
			newFamily(t, s, "fam")
			h := inFlight(t, dsn, rotationSQL("fam")...)

			done := make(chan revokeResult, 1)
			go func() {
				jtis, err := tt.revoke(s)
				done <- revokeResult{jtis, err}
			}()
			waitBlocked(t, dsn, "the revocation", h, done)
			h.commit(t)
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if want := []string{"fam-jti-0", "fam-jti-1"}; !slices.Equal(r.jtis, want) {
				t.Errorf("revocation returned %q, want %q: the rotation's access token too", r.jtis, want)
			}
			f, err := s.RefreshFamily(t.Context(), "fam")
			if err != nil {
				t.Fatal(err)
			}
			if !f.Revoked || f.Generation != 1 {
				t.Errorf("family after the rotation and the revocation: generation %d, revoked %v; want 1, true",
					f.Generation, f.Revoked)
			}
		})
	}
}

// TestRotateWaitsForRevoke: a rotation during another node's revocation
// of the family waits for it, then fails with ErrReplay and changes
// nothing.
func TestRotateWaitsForRevoke(t *testing.T) {
	for _, tt := range []struct{ name, revocation string }{
		// RevokeRefreshFamily's upsert and RevokeRefreshTokens' update.
		{"family", `INSERT INTO refresh_families (id, client_id, user_id, scopes, audience, auth_time, amr,
			acr, jkt, generation, token_hash, created_at, idle_expires_at, expires_at, revoked)
			VALUES ('fam', '', '', '[]', '[]', 0, '[]', '', '', 0, '', 0, 0, 0, true)
			ON CONFLICT (id) DO UPDATE SET revoked = true`},
		{"user and client", `UPDATE refresh_families SET revoked = true WHERE user_id = 'alice' AND client_id = 'web'`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := freshSchema(t)
			s := openStore(t, dsn)
			t.Cleanup(func() { s.Close() })
			newFamily(t, s, "fam")
			h := inFlight(t, dsn, tt.revocation)

			done := make(chan error, 1)
			go func() { done <- s.RotateRefresh(context.Background(), rotation("fam")) }()
			waitBlocked(t, dsn, "RotateRefresh", h, done)
			h.commit(t)
			if err := <-done; !errors.Is(err, sigil.ErrReplay) {
				t.Errorf("RotateRefresh after the revocation: %v, want ErrReplay", err)
			}
			f, err := s.RefreshFamily(t.Context(), "fam")
			if err != nil {
				t.Fatal(err)
			}
			if f.Generation != 0 || f.TokenHash != "h0" || !f.RotatedAt.IsZero() {
				t.Errorf("family after a refused rotation: generation %d, hash %q, rotated at %v; want it unrotated",
					f.Generation, f.TokenHash, f.RotatedAt)
			}
			if accessRecorded(t, dsn, "fam", "fam-jti-here") {
				t.Error("the refused rotation recorded its access token")
			}
		})
	}
}

// TestRotateWaitsForRotation: a rotation from the token another node is
// rotating from waits for it, then fails with ErrReplay and changes
// nothing: of the two, exactly one rotates.
func TestRotateWaitsForRotation(t *testing.T) {
	dsn := freshSchema(t)
	s := openStore(t, dsn)
	t.Cleanup(func() { s.Close() })
	newFamily(t, s, "fam")
	h := inFlight(t, dsn, rotationSQL("fam")...)

	done := make(chan error, 1)
	go func() { done <- s.RotateRefresh(context.Background(), rotation("fam")) }()
	waitBlocked(t, dsn, "RotateRefresh", h, done)
	h.commit(t)
	if err := <-done; !errors.Is(err, sigil.ErrReplay) {
		t.Errorf("RotateRefresh from the token the other node rotated from: %v, want ErrReplay", err)
	}
	f, err := s.RefreshFamily(t.Context(), "fam")
	if err != nil {
		t.Fatal(err)
	}
	if f.Generation != 1 || f.TokenHash != "h1" {
		t.Errorf("family: generation %d, hash %q; want the other node's rotation, 1 and h1", f.Generation, f.TokenHash)
	}
	if accessRecorded(t, dsn, "fam", "fam-jti-here") {
		t.Error("the refused rotation recorded its access token")
	}
}

// TestCreateRacesRevoke: a family's creation and a revocation of its ID
// before it existed (a replayed code), on two nodes, end with the family
// refused or revoked with its access token returned, never live.
func TestCreateRacesRevoke(t *testing.T) {
	create := func(s *postgres.Store, id string) error {
		return s.CreateRefreshFamily(context.Background(), &sigil.RefreshFamily{ID: id, ClientID: "web",
			UserID: "alice", TokenHash: "h0", IdleExpiresAt: live, ExpiresAt: live},
			sigil.IssuedToken{JTI: id + "-jti-0", ExpiresAt: live})
	}

	t.Run("revocation in flight", func(t *testing.T) {
		dsn := freshSchema(t)
		s := openStore(t, dsn)
		t.Cleanup(func() { s.Close() })
		h := inFlight(t, dsn, `INSERT INTO refresh_families (id, client_id, user_id, scopes, audience,
			auth_time, amr, acr, jkt, generation, token_hash, created_at, idle_expires_at, expires_at, revoked)
			VALUES ('fam', '', '', '[]', '[]', 0, '[]', '', '', 0, '', 0, `+fmt.Sprint(live.UnixNano())+`,
			`+fmt.Sprint(live.UnixNano())+`, true)
			ON CONFLICT (id) DO UPDATE SET revoked = true`)

		done := make(chan error, 1)
		go func() { done <- create(s, "fam") }()
		waitBlocked(t, dsn, "CreateRefreshFamily", h, done)
		h.commit(t)
		if err := <-done; !errors.Is(err, sigil.ErrReplay) {
			t.Errorf("CreateRefreshFamily after the revocation of its ID: %v, want ErrReplay", err)
		}
		if f, err := s.RefreshFamily(t.Context(), "fam"); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("RefreshFamily = %+v, %v; want ErrNotFound", f, err)
		}
		if accessRecorded(t, dsn, "fam", "fam-jti-0") {
			t.Error("the refused family's access token was recorded")
		}
	})

	t.Run("creation in flight", func(t *testing.T) {
		dsn := freshSchema(t)
		s := openStore(t, dsn)
		t.Cleanup(func() { s.Close() })
		h := inFlight(t, dsn, fmt.Sprintf(`INSERT INTO refresh_families (id, client_id, user_id, scopes,
			audience, auth_time, amr, acr, jkt, generation, token_hash, created_at, idle_expires_at, expires_at, revoked)
			VALUES ('fam', 'web', 'alice', '[]', '[]', 0, '[]', '', '', 0, 'h0', 0, %[1]d, %[1]d, false)`, live.UnixNano()),
			fmt.Sprintf(`INSERT INTO refresh_access (family_id, jti, expires_at) VALUES ('fam', 'fam-jti-0', %d)`,
				live.UnixNano()))

		done := make(chan revokeResult, 1)
		go func() {
			jtis, err := s.RevokeRefreshFamily(context.Background(), "fam")
			done <- revokeResult{jtis, err}
		}()
		waitBlocked(t, dsn, "RevokeRefreshFamily", h, done)
		h.commit(t)
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !slices.Equal(r.jtis, []string{"fam-jti-0"}) {
			t.Errorf("RevokeRefreshFamily = %q, want the access token of the family created meanwhile", r.jtis)
		}
		f, err := s.RefreshFamily(t.Context(), "fam")
		if err != nil || !f.Revoked {
			t.Errorf("RefreshFamily = %+v, %v; want the family, revoked", f, err)
		}
	})

	// Both calls at once, through two pools: whichever order PostgreSQL
	// runs them in.
	t.Run("at once", func(t *testing.T) {
		dsn := freshSchema(t)
		s1, s2 := openStore(t, dsn), openStore(t, dsn)
		t.Cleanup(func() { s1.Close(); s2.Close() })
		refused := 0
		const rounds = 100
		for i := range rounds {
			id := fmt.Sprintf("fam-%03d", i)
			var (
				wg        sync.WaitGroup
				start     = make(chan struct{})
				createErr error
				r         revokeResult
			)
			wg.Go(func() { <-start; createErr = create(s1, id) })
			wg.Go(func() { <-start; r.jtis, r.err = s2.RevokeRefreshFamily(context.Background(), id) })
			close(start)
			wg.Wait()
			if r.err != nil {
				t.Fatalf("%s: RevokeRefreshFamily: %v", id, r.err)
			}
			f, err := s1.RefreshFamily(t.Context(), id)
			switch {
			case createErr == nil:
				if err != nil || !f.Revoked || !slices.Equal(r.jtis, []string{id + "-jti-0"}) {
					t.Fatalf("%s: created, then RefreshFamily = %+v, %v and RevokeRefreshFamily = %q; want it revoked with its access token",
						id, f, err, r.jtis)
				}
			case errors.Is(createErr, sigil.ErrReplay):
				refused++
				if !errors.Is(err, sigil.ErrNotFound) || len(r.jtis) != 0 {
					t.Fatalf("%s: refused, then RefreshFamily = %+v, %v and RevokeRefreshFamily = %q; want neither",
						id, f, err, r.jtis)
				}
			default:
				t.Fatalf("%s: CreateRefreshFamily: %v, want nil or ErrReplay", id, createErr)
			}
		}
		t.Logf("%d of %d creations refused, the others revoked", refused, rounds)
	})
}

// TestDeleteUserWaitsForRotation: deleting a user during another node's
// rotation of one of their families waits for it, then deletes the
// access token the rotation recorded with the family.
func TestDeleteUserWaitsForRotation(t *testing.T) {
	dsn := freshSchema(t)
	s := openStore(t, dsn)
	t.Cleanup(func() { s.Close() })
	if err := s.CreateUser(t.Context(), &sigil.User{ID: "alice", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	newFamily(t, s, "fam")
	h := inFlight(t, dsn, rotationSQL("fam")...)

	done := make(chan error, 1)
	go func() { done <- s.DeleteUser(context.Background(), "alice") }()
	waitBlocked(t, dsn, "DeleteUser", h, done)
	h.commit(t)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.RefreshFamily(t.Context(), "fam"); !errors.Is(err, sigil.ErrNotFound) {
		t.Errorf("RefreshFamily after DeleteUser: %v, want ErrNotFound", err)
	}
	for _, jti := range []string{"fam-jti-0", "fam-jti-1"} {
		if accessRecorded(t, dsn, "fam", jti) {
			t.Errorf("access token %s outlived its user's deletion", jti)
		}
	}
}

// TestRevokeTokensLocksInOrder: revoking several families locks them in
// ID order, so that two such revocations cannot deadlock: while it waits
// for family b, it already holds family a, though b's row was written
// first.
func TestRevokeTokensLocksInOrder(t *testing.T) {
	dsn := freshSchema(t)
	s := openStore(t, dsn)
	t.Cleanup(func() { s.Close() })
	newFamily(t, s, "b")
	newFamily(t, s, "a")
	h := inFlight(t, dsn, `SELECT 1 FROM refresh_families WHERE id = 'b' FOR UPDATE`)

	done := make(chan revokeResult, 1)
	go func() {
		jtis, err := s.RevokeRefreshTokens(context.Background(), "alice", "")
		done <- revokeResult{jtis, err}
	}()
	waitBlocked(t, dsn, "RevokeRefreshTokens", h, done)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	_, err = conn.Exec(t.Context(), `SELECT 1 FROM refresh_families WHERE id = 'a' FOR UPDATE NOWAIT`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Errorf("locking family a while RevokeRefreshTokens waits for b: %v, want lock_not_available (55P03)", err)
	}
	h.commit(t)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := []string{"a-jti-0", "b-jti-0"}; !slices.Equal(r.jtis, want) {
		t.Errorf("RevokeRefreshTokens = %q, want %q", r.jtis, want)
	}
}
