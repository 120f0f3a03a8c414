package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// refreshColumns lists the refresh_tokens columns in the order
// scanRefresh reads them.
const refreshColumns = `hash, family_id, client_id, user_id, scopes, audience, auth_time,
	amr, acr, jkt, access_jti, created_at, expires_at, family_expires_at, used_at, revoked`

// scanRefresh reads one row selected with refreshColumns. Empty lists read
// back as nil; UsedAt is zero while the token is unspent.
func scanRefresh(row scanner) (*sigil.RefreshToken, error) {
	var (
		t                                         sigil.RefreshToken
		scopes, audience, amr                     []byte
		authTime, created, expiresAt, familyUntil int64
		used                                      sql.NullInt64
	)
	err := row.Scan(&t.Hash, &t.FamilyID, &t.ClientID, &t.UserID, &scopes, &audience, &authTime,
		&amr, &t.ACR, &t.JKT, &t.AccessJTI, &created, &expiresAt, &familyUntil, &used, &t.Revoked)
	if err != nil {
		return nil, err
	}
	if t.Scopes, t.Audience, t.AMR, err = decodeLists(scopes, audience, amr); err != nil {
		return nil, fmt.Errorf("decode refresh token: %w", err)
	}
	t.AuthTime, t.CreatedAt = rowcodec.FromUnixNano(authTime), rowcodec.FromUnixNano(created)
	t.ExpiresAt, t.FamilyExpiresAt = rowcodec.FromUnixNano(expiresAt), rowcodec.FromUnixNano(familyUntil)
	if used.Valid {
		t.UsedAt = rowcodec.FromUnixNano(used.Int64)
	}
	return &t, nil
}

// The refresh-token statements prepared in Open.
const (
	refreshByHashSQL = `SELECT ` + refreshColumns + ` FROM refresh_tokens
		WHERE hash = ? AND family_expires_at > ?`
	insertRefreshSQL = `INSERT INTO refresh_tokens (` + refreshColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// spendRefreshSQL spends a live, unspent, unrevoked token and returns
	// its family; no row means the token cannot be rotated.
	spendRefreshSQL = `UPDATE refresh_tokens SET used_at = ?1
		WHERE hash = ?2 AND family_expires_at > ?3 AND used_at IS NULL AND revoked = 0 AND expires_at > ?3
		RETURNING family_id, family_expires_at`
	// familyRevokedSQL finds a family's revocation mark; no row means
	// CreateRefresh may store into it.
	familyRevokedSQL = `SELECT revoked_at FROM revoked_families WHERE family_id = ?`
)

// insertRefresh inserts t with the prepared statement ins (bound to a
// transaction, or not); it is a constraint error if the hash exists.
func insertRefresh(ctx context.Context, ins *sql.Stmt, t *sigil.RefreshToken, created int64) error {
	var used any // NULL while unspent
	if !t.UsedAt.IsZero() {
		used = rowcodec.UnixNano(t.UsedAt)
	}
	_, err := ins.ExecContext(ctx,
		t.Hash, t.FamilyID, t.ClientID, t.UserID, rowcodec.EncodeList(t.Scopes),
		rowcodec.EncodeList(t.Audience), rowcodec.UnixNano(t.AuthTime), rowcodec.EncodeList(t.AMR),
		t.ACR, t.JKT, t.AccessJTI, created, rowcodec.UnixNano(t.ExpiresAt),
		rowcodec.UnixNano(t.FamilyExpiresAt), used, t.Revoked)
	return err
}

// CreateRefresh stores t, the first token of a family or a token outside
// rotation; ErrConflict if the hash exists, ErrReplay, storing nothing, if
// RevokeRefreshFamily recorded t.FamilyID as revoked (until PurgeAuthz
// deletes the mark, an hour later). A zero t.CreatedAt is set to the
// current time, written back into t.
//
// The check and the insert share one immediate transaction, and
// RevokeRefreshFamily records its mark in one too: SQLite lets one of
// them write at a time, in any number of processes, so either the token
// is stored first and revoked with its family, or it is refused.
func (s *Store) CreateRefresh(ctx context.Context, t *sigil.RefreshToken) error {
	defer s.writing()()
	if t == nil || t.Hash == "" {
		return errors.New("sqlite: create refresh token: empty token hash")
	}
	created := t.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		var revokedAt int64
		err := tx.StmtContext(ctx, s.familyRevokedStmt).QueryRowContext(ctx, t.FamilyID).Scan(&revokedAt)
		if err == nil {
			return fmt.Errorf("family revoked at %v: %w", rowcodec.FromUnixNano(revokedAt), sigil.ErrReplay)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return insertRefresh(ctx, tx.StmtContext(ctx, s.insertRefreshStmt), t, rowcodec.UnixNano(created))
	})
	if isConstraint(err) {
		return fmt.Errorf("sqlite: create refresh token in family %q: %w", t.FamilyID, sigil.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create refresh token in family %q: %w", t.FamilyID, err)
	}
	t.CreatedAt = created
	return nil
}

// RefreshToken returns a token, spent, revoked or past its idle expiry
// included, until its family's absolute expiry; ErrNotFound after it or
// if the token is absent.
func (s *Store) RefreshToken(ctx context.Context, hash string) (*sigil.RefreshToken, error) {
	t, err := scanRefresh(s.refreshStmt.QueryRowContext(ctx, hash, rowcodec.UnixNano(s.Now())))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get refresh token: %w", sigil.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get refresh token: %w", err)
	}
	return t, nil
}

// RotateRefresh spends the token oldHash at next.CreatedAt and stores next
// in its family, in one immediate transaction: of concurrent rotations of
// one token, in any process, exactly one succeeds and the others see the
// token spent. next takes the old token's FamilyID and FamilyExpiresAt
// whatever it holds (a rotation never extends a family's absolute
// lifetime), and a zero next.CreatedAt is set to the current time; all
// three are written back into next.
//
// ErrReplay, storing nothing, if the old token is spent, revoked or past
// its idle expiry; ErrNotFound if it is absent or its family has expired
// (as RefreshToken reads it); ErrConflict if next.Hash exists.
//
// Rotations are committed in groups: a caller that gets the write lock
// runs every rotation waiting at that moment in one transaction, without
// savepoints, and the others find theirs done. A rotation that cannot
// spend its token (ErrReplay, ErrNotFound) changes nothing and leaves the
// others alone; an insert that fails fails the whole batch, which commits
// nothing: its caller gets the insert's error, and every other caller in
// the batch keeps its unspent token and gets an error wrapping
// sigil.ErrUnavailable, so it may retry. Committing each rotation alone
// was about a fifth of a refresh's CPU time (the WAL frames written per
// commit, in a profile of issuer's BenchmarkRefreshParallel); the load
// test's figures before and after are in BENCHMARKS.md.
func (s *Store) RotateRefresh(ctx context.Context, oldHash string, next *sigil.RefreshToken) error {
	if next == nil || next.Hash == "" {
		return errors.New("sqlite: rotate refresh token: empty token hash")
	}
	created := next.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	r := &rotation{oldHash: oldHash, next: next, created: rowcodec.UnixNano(created), now: rowcodec.UnixNano(s.Now()), done: make(chan struct{})}
	s.rotationsMu.Lock()
	s.rotations = append(s.rotations, r)
	s.rotationsMu.Unlock()
	unlock := s.writing()
	select {
	case <-r.done: // a caller before us ran it
	default:
		s.rotationsMu.Lock()
		batch := s.rotations
		s.rotations = nil
		s.rotationsMu.Unlock()
		s.rotateBatch(ctx, batch)
	}
	unlock()
	<-r.done
	if isConstraint(r.err) {
		return fmt.Errorf("sqlite: rotate refresh token in family %q: %w", r.family, sigil.ErrConflict)
	}
	if r.err != nil {
		return fmt.Errorf("sqlite: rotate refresh token: %w", r.err)
	}
	next.FamilyID, next.FamilyExpiresAt, next.CreatedAt = r.family, rowcodec.FromUnixNano(r.familyUntil), created
	return nil
}

// rotation is one RotateRefresh waiting for, or done by, a group commit.
type rotation struct {
	oldHash      string
	next         *sigil.RefreshToken
	created, now int64
	// Set by rotateBatch before done is closed.
	family      string
	familyUntil int64
	err         error
	done        chan struct{}
}

// rotateBatch runs the rotations in one transaction under the write lock
// (held by the caller) and closes their done channels. A rotation that
// cannot spend its token changes nothing and leaves the others alone; an
// insert that fails (a duplicate of a 256-bit random hash, or the
// database) fails the whole batch, whose callers all get the error and
// keep their unspent tokens. No savepoints: parsing their statements cost
// a tenth of a rotation. The batch runs on a context of its own: one
// waiting caller's cancellation must not fail the others'.
func (s *Store) rotateBatch(ctx context.Context, batch []*rotation) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var culprit *rotation
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		spend, ins := tx.StmtContext(ctx, s.spendStmt), tx.StmtContext(ctx, s.insertRefreshStmt)
		for _, r := range batch {
			spent, err := s.rotateOne(ctx, tx, spend, ins, r)
			if spent && err != nil {
				culprit = r
				return err
			}
			r.err = err
		}
		return nil
	})
	for _, r := range batch {
		switch {
		case err != nil && r == culprit:
			r.err = err
		case err != nil: // nothing was committed
			r.err = fmt.Errorf("the group commit failed (%v); the token is unspent: %w", err, sigil.ErrUnavailable)
		}
		close(r.done)
	}
}

// rotateOne spends r's old token and inserts its successor, inside the
// batch's transaction. spent reports whether the old token was spent, so
// that a failure after it must undo the transaction.
func (s *Store) rotateOne(ctx context.Context, tx *sql.Tx, spend, ins *sql.Stmt, r *rotation) (spent bool, err error) {
	err = spend.QueryRowContext(ctx, r.created, r.oldHash, r.now).Scan(&r.family, &r.familyUntil)
	if errors.Is(err, sql.ErrNoRows) {
		return false, s.whyNotRotated(ctx, tx, r.oldHash, r.now)
	}
	if err != nil {
		return false, err
	}
	t := *r.next
	t.FamilyID, t.FamilyExpiresAt = r.family, rowcodec.FromUnixNano(r.familyUntil)
	return true, insertRefresh(ctx, ins, &t, r.created)
}

// RevokeRefreshFamily marks every token of a family revoked, records the
// family as revoked at the current time (CreateRefresh refuses it until
// PurgeAuthz deletes the mark an hour later; revoking again moves the
// mark forward), and returns the non-empty AccessJTIs recorded in it,
// oldest token first, in one transaction. A family without tokens yields
// none and no error, and is recorded all the same: a replayed code
// revokes the family its first redemption has not stored yet.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) ([]string, error) {
	defer s.writing()()
	var jtis []string
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO revoked_families (family_id, revoked_at) VALUES (?, ?)
			ON CONFLICT (family_id) DO UPDATE SET revoked_at = max(revoked_at, excluded.revoked_at)`,
			familyID, rowcodec.UnixNano(s.now())); err != nil {
			return fmt.Errorf("record the revocation: %w", err)
		}
		var err error
		jtis, err = revokeRefresh(ctx, tx, `family_id = ?`, familyID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke refresh family %q: %w", familyID, err)
	}
	return jtis, nil
}

// RevokeRefreshTokens revokes, in one transaction, every family that has
// a token of the user at the client, of the user at any client (clientID
// empty) or of the client for any user (userID empty), and returns their
// non-empty AccessJTIs, oldest token first; both empty is an error. The
// families are not recorded as revoked: they already have tokens, which
// stay revoked until they expire.
func (s *Store) RevokeRefreshTokens(ctx context.Context, userID, clientID string) ([]string, error) {
	var (
		cond string
		args []any
	)
	switch {
	case userID != "" && clientID != "":
		cond, args = `user_id = ? AND client_id = ?`, []any{userID, clientID}
	case userID != "":
		cond, args = `user_id = ?`, []any{userID}
	case clientID != "":
		cond, args = `client_id = ?`, []any{clientID}
	default:
		return nil, errors.New("sqlite: revoke refresh tokens: neither a user nor a client given")
	}
	defer s.writing()()
	var jtis []string
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		var err error
		jtis, err = revokeRefresh(ctx, tx,
			`family_id IN (SELECT family_id FROM refresh_tokens WHERE `+cond+`)`, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke refresh tokens of user %q at client %q: %w", userID, clientID, err)
	}
	return jtis, nil
}

// revokeRefresh revokes the tokens where selects and returns their
// non-empty AccessJTIs, in tx.
func revokeRefresh(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]string, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked = 1 WHERE `+where, args...); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT access_jti FROM refresh_tokens
		WHERE `+where+` AND access_jti <> '' ORDER BY created_at, hash`, args...)
	return collect(rows, err, func(row scanner) (string, error) {
		var jti string
		err := row.Scan(&jti)
		return jti, err
	})
}

// whyNotRotated says why the spend in RotateRefresh matched no row:
// ErrNotFound if the token is absent or its family expired, ErrReplay if
// it is spent, revoked or idle-expired.
func (s *Store) whyNotRotated(ctx context.Context, tx *sql.Tx, hash string, now int64) error {
	var (
		expiresAt int64
		used      sql.NullInt64
		revoked   bool
	)
	err := tx.QueryRowContext(ctx, `SELECT expires_at, used_at, revoked FROM refresh_tokens
		WHERE hash = ? AND family_expires_at > ?`, hash, now).Scan(&expiresAt, &used, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return sigil.ErrNotFound
	case err != nil:
		return err
	case used.Valid:
		return fmt.Errorf("token spent: %w", sigil.ErrReplay)
	case revoked:
		return fmt.Errorf("token revoked: %w", sigil.ErrReplay)
	default:
		return fmt.Errorf("token idle-expired (expired at %d): %w", expiresAt, sigil.ErrReplay)
	}
}
