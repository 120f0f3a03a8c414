package postgres_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/postgres"
)

// lockFamilySQL takes a refresh family's lock as the store does.
const lockFamilySQL = `SELECT pg_advisory_xact_lock(
	hashtextextended('sigil refresh family ' || current_schema() || ' ' || $1, 0))`

// inFlight opens a transaction on dsn that holds family's lock, as
// another node's rotation or revocation would, and runs stmt in it. The
// transaction is committed by the returned function.
func inFlight(t *testing.T, dsn, family, stmt string, args ...any) (commit func()) {
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
	if _, err := tx.Exec(ctx, lockFamilySQL, family); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, stmt, args...); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func firstToken(t *testing.T, s *postgres.Store, hash, family string) {
	t.Helper()
	live := time.Now().Add(time.Hour)
	err := s.CreateRefresh(t.Context(), &sigil.RefreshToken{Hash: hash, FamilyID: family,
		AccessJTI: "jti-" + hash, ExpiresAt: live, FamilyExpiresAt: live})
	if err != nil {
		t.Fatal(err)
	}
}

// waitBlocked fails t if done delivers within a moment: the call must be
// waiting for the lock.
func waitBlocked[T any](t *testing.T, what string, done <-chan T) {
	t.Helper()
	select {
	case <-done:
		t.Fatalf("%s did not wait for the family's lock", what)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestRevokeWaitsForRotation: a revocation during another node's
// rotation waits for it and revokes the token it inserted too.
func TestRevokeWaitsForRotation(t *testing.T) {
	dsn := freshSchema(t)
	s := openStore(t, dsn)
	t.Cleanup(func() { s.Close() })
	firstToken(t, s, "r1", "fam")
	live := time.Now().Add(time.Hour).UnixNano()
	commit := inFlight(t, dsn, "fam", `INSERT INTO refresh_tokens (hash, family_id, client_id, user_id,
		scopes, audience, auth_time, amr, acr, jkt, access_jti, created_at, expires_at, family_expires_at, revoked)
		VALUES ('r2', 'fam', '', '', '[]', '[]', 0, '[]', '', '', 'jti-r2', 0, $1, $1, false)`, live)

	type result struct {
		jtis []string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		jtis, err := s.RevokeRefreshFamily(context.Background(), "fam")
		done <- result{jtis, err}
	}()
	waitBlocked(t, "RevokeRefreshFamily", done)
	commit()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	slices.Sort(r.jtis)
	if !slices.Equal(r.jtis, []string{"jti-r1", "jti-r2"}) {
		t.Errorf("RevokeRefreshFamily = %q, want the rotated token's jti too", r.jtis)
	}
	if tok, err := s.RefreshToken(t.Context(), "r2"); err != nil || !tok.Revoked {
		t.Errorf("token inserted by the rotation in flight: %+v, %v; want it revoked", tok, err)
	}
}

// TestRotateWaitsForRevoke: a rotation during another node's revocation
// waits for it and then finds its token revoked.
func TestRotateWaitsForRevoke(t *testing.T) {
	dsn := freshSchema(t)
	s := openStore(t, dsn)
	t.Cleanup(func() { s.Close() })
	firstToken(t, s, "r1", "fam")
	commit := inFlight(t, dsn, "fam", `UPDATE refresh_tokens SET revoked = true WHERE family_id = 'fam'`)

	live := time.Now().Add(time.Hour)
	done := make(chan error, 1)
	go func() {
		done <- s.RotateRefresh(context.Background(), "r1", &sigil.RefreshToken{Hash: "r2", ExpiresAt: live})
	}()
	waitBlocked(t, "RotateRefresh", done)
	commit()
	if err := <-done; !errors.Is(err, sigil.ErrReplay) {
		t.Errorf("RotateRefresh after the revocation: %v, want ErrReplay", err)
	}
	if _, err := s.RefreshToken(t.Context(), "r2"); !errors.Is(err, sigil.ErrNotFound) {
		t.Errorf("RefreshToken(r2): %v, want ErrNotFound", err)
	}
}

// TestCreateWaitsForRevoke: a family's first token, stored during
// another node's revocation of the (still empty) family, waits for it and
// is then refused.
func TestCreateWaitsForRevoke(t *testing.T) {
	dsn := freshSchema(t)
	s := openStore(t, dsn)
	t.Cleanup(func() { s.Close() })
	commit := inFlight(t, dsn, "fam", `INSERT INTO revoked_families (family_id, revoked_at) VALUES ('fam', $1)`,
		time.Now().UnixNano())

	live := time.Now().Add(time.Hour)
	done := make(chan error, 1)
	go func() {
		done <- s.CreateRefresh(context.Background(), &sigil.RefreshToken{Hash: "r1", FamilyID: "fam",
			ExpiresAt: live, FamilyExpiresAt: live})
	}()
	waitBlocked(t, "CreateRefresh", done)
	commit()
	if err := <-done; !errors.Is(err, sigil.ErrReplay) {
		t.Errorf("CreateRefresh after its family's revocation: %v, want ErrReplay", err)
	}
	if _, err := s.RefreshToken(t.Context(), "r1"); !errors.Is(err, sigil.ErrNotFound) {
		t.Errorf("RefreshToken(r1): %v, want ErrNotFound", err)
	}
}

// TestRevokeEmptyFamilyWaitsForCreate: the revocation of a family with no
// committed token still takes its lock, so a first token that another
// node is storing is waited for and revoked.
func TestRevokeEmptyFamilyWaitsForCreate(t *testing.T) {
	dsn := freshSchema(t)
	s := openStore(t, dsn)
	t.Cleanup(func() { s.Close() })
	live := time.Now().Add(time.Hour).UnixNano()
	commit := inFlight(t, dsn, "fam", `INSERT INTO refresh_tokens (hash, family_id, client_id, user_id,
		scopes, audience, auth_time, amr, acr, jkt, access_jti, created_at, expires_at, family_expires_at, revoked)
		VALUES ('r1', 'fam', '', '', '[]', '[]', 0, '[]', '', '', 'jti-r1', 0, $1, $1, false)`, live)

	type result struct {
		jtis []string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		jtis, err := s.RevokeRefreshFamily(context.Background(), "fam")
		done <- result{jtis, err}
	}()
	waitBlocked(t, "RevokeRefreshFamily", done)
	commit()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !slices.Equal(r.jtis, []string{"jti-r1"}) {
		t.Errorf("RevokeRefreshFamily = %q, want the first token's jti", r.jtis)
	}
	if tok, err := s.RefreshToken(t.Context(), "r1"); err != nil || !tok.Revoked {
		t.Errorf("first token stored during the revocation: %+v, %v; want it revoked", tok, err)
	}
}

// TestRevokeTokensWaitsForRotation: revocation by user or by client
// waits for another node's rotation in one of the families it finds, and
// revokes the token the rotation inserted too.
func TestRevokeTokensWaitsForRotation(t *testing.T) {
	for _, tt := range []struct{ name, user, client string }{
		{"user and client", "alice", "web"},
		{"user", "alice", ""},
		{"client", "", "web"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := freshSchema(t)
			s := openStore(t, dsn)
			t.Cleanup(func() { s.Close() })
			live := time.Now().Add(time.Hour)
			if err := s.CreateRefresh(t.Context(), &sigil.RefreshToken{Hash: "r1", FamilyID: "fam",
				UserID: "alice", ClientID: "web", AccessJTI: "jti-r1", ExpiresAt: live, FamilyExpiresAt: live}); err != nil {
				t.Fatal(err)
			}
			commit := inFlight(t, dsn, "fam", `INSERT INTO refresh_tokens (hash, family_id, client_id, user_id,
				scopes, audience, auth_time, amr, acr, jkt, access_jti, created_at, expires_at, family_expires_at, revoked)
				VALUES ('r2', 'fam', 'web', 'alice', '[]', '[]', 0, '[]', '', '', 'jti-r2', 0, $1, $1, false)`, live.UnixNano())

			type result struct {
				jtis []string
				err  error
			}
			done := make(chan result, 1)
			go func() {
				jtis, err := s.RevokeRefreshTokens(context.Background(), tt.user, tt.client)
				done <- result{jtis, err}
			}()
			waitBlocked(t, "RevokeRefreshTokens", done)
			commit()
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			slices.Sort(r.jtis)
			if !slices.Equal(r.jtis, []string{"jti-r1", "jti-r2"}) {
				t.Errorf("RevokeRefreshTokens = %q, want the rotated token's jti too", r.jtis)
			}
			if tok, err := s.RefreshToken(t.Context(), "r2"); err != nil || !tok.Revoked {
				t.Errorf("token inserted by the rotation in flight: %+v, %v; want it revoked", tok, err)
			}
		})
	}
}
