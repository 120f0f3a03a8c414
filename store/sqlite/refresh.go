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

// Refresh families (migration 0010): one row per family, rotated in
// place, and the access tokens issued from each in refresh_access. A
// family revoked before it exists is a placeholder row with an empty
// token_hash, which every read but CreateRefreshFamily's skips.

// familyColumns lists the refresh_families columns in the order
// scanFamily reads them.
const familyColumns = `id, client_id, user_id, scopes, audience, auth_time, amr, acr, jkt,
	generation, token_hash, created_at, rotated_at, idle_expires_at, expires_at, revoked,
	authorization_details`

// revokedFamilyGrace is how long a family revoked before it existed keeps
// its placeholder row: CreateRefreshFamily refuses the ID until then. It
// only has to outlast the code redemption in flight that is about to
// store the family.
const revokedFamilyGrace = time.Hour

// scanFamily reads one row selected with familyColumns. Empty lists read
// back as nil; RotatedAt is zero before the first rotation.
func scanFamily(row scanner) (*sigil.RefreshFamily, error) {
	var (
		f                                       sigil.RefreshFamily
		scopes, audience, amr                   []byte
		authTime, created, idleUntil, expiresAt int64
		rotated                                 sql.NullInt64
	)
	err := row.Scan(&f.ID, &f.ClientID, &f.UserID, &scopes, &audience, &authTime, &amr, &f.ACR, &f.JKT,
		&f.Generation, &f.TokenHash, &created, &rotated, &idleUntil, &expiresAt, &f.Revoked,
		&f.AuthorizationDetails)
	if err != nil {
		return nil, err
	}
	if f.Scopes, f.Audience, f.AMR, err = decodeLists(scopes, audience, amr); err != nil {
		return nil, fmt.Errorf("decode refresh family: %w", err)
	}
	f.AuthTime, f.CreatedAt = rowcodec.FromUnixNano(authTime), rowcodec.FromUnixNano(created)
	f.IdleExpiresAt, f.ExpiresAt = rowcodec.FromUnixNano(idleUntil), rowcodec.FromUnixNano(expiresAt)
	if rotated.Valid {
		f.RotatedAt = rowcodec.FromUnixNano(rotated.Int64)
	}
	return &f, nil
}

// The refresh statements prepared in Open.
const (
	familyByIDSQL = `SELECT ` + familyColumns + ` FROM refresh_families
		WHERE id = ? AND expires_at > ? AND token_hash <> ''`
	// rotateFamilySQL moves a family on from the token presented, if it
	// is still the current, live one; no row changed means it is not.
	rotateFamilySQL = `UPDATE refresh_families
		SET generation = generation + 1, token_hash = ?1, rotated_at = ?2, idle_expires_at = ?3
		WHERE id = ?4 AND generation = ?5 AND token_hash = ?6
			AND revoked = 0 AND idle_expires_at > ?2 AND expires_at > ?7 AND token_hash <> ''`
	insertAccessSQL = `INSERT INTO refresh_access (family_id, jti, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (family_id, jti) DO NOTHING`
)

// CreateRefreshFamily stores f, at generation 0, unrotated and live
// whatever f holds, and the access token issued with it, in one
// transaction. ErrConflict if the ID exists; ErrReplay, storing nothing,
// if RevokeRefreshFamily left a placeholder for the ID. A zero
// f.CreatedAt is set to the current time, written back into f.
//
// SQLite lets one transaction write at a time, in any number of
// processes, so the insert and a revocation of the same ID cannot pass
// each other: either the family is stored first and then revoked, or the
// revocation's placeholder makes the insert fail.
func (s *Store) CreateRefreshFamily(ctx context.Context, f *sigil.RefreshFamily, access sigil.IssuedToken) error {
	if f == nil || f.ID == "" || f.TokenHash == "" {
		return errors.New("sqlite: create refresh family: empty family ID or token hash")
	}
	created := f.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	defer s.writing()()
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO refresh_families (`+familyColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, NULL, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING`,
			f.ID, f.ClientID, f.UserID, rowcodec.EncodeList(f.Scopes), rowcodec.EncodeList(f.Audience),
			rowcodec.UnixNano(f.AuthTime), rowcodec.EncodeList(f.AMR), f.ACR, f.JKT,
			f.TokenHash, rowcodec.UnixNano(created),
			rowcodec.UnixNano(f.IdleExpiresAt), rowcodec.UnixNano(f.ExpiresAt), f.AuthorizationDetails)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var hash string
			if err := tx.QueryRowContext(ctx, `SELECT token_hash FROM refresh_families WHERE id = ?`, f.ID).Scan(&hash); err != nil {
				return err
			}
			if hash == "" {
				return fmt.Errorf("revoked before it was created: %w", sigil.ErrReplay)
			}
			return sigil.ErrConflict
		}
		return insertAccess(ctx, tx.StmtContext(ctx, s.insertAccessStmt), f.ID, access)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create refresh family %q: %w", f.ID, err)
	}
	f.CreatedAt = created
	return nil
}

// insertAccess records an access token issued from a family, with the
// prepared statement ins; a token without a JTI is not recorded.
func insertAccess(ctx context.Context, ins *sql.Stmt, family string, a sigil.IssuedToken) error {
	if a.JTI == "" {
		return nil
	}
	_, err := ins.ExecContext(ctx, family, a.JTI, rowcodec.UnixNano(a.ExpiresAt))
	return err
}

// RefreshFamily returns a family, revoked ones included, until its
// absolute expiry; ErrNotFound after it, if it is absent, or if it is a
// revocation's placeholder.
func (s *Store) RefreshFamily(ctx context.Context, id string) (*sigil.RefreshFamily, error) {
	f, err := scanFamily(s.familyStmt.QueryRowContext(ctx, id, rowcodec.UnixNano(s.Now())))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get refresh family %q: %w", id, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get refresh family %q: %w", id, err)
	}
	return f, nil
}

// RotateRefresh moves family r.FamilyID from the token presented to the
// next and records r.Access, in one immediate transaction: of concurrent
// rotations from one token, in any process, exactly one finds its
// generation current and the others get ErrReplay. A zero r.At is the
// current time. ErrReplay, changing nothing, if the token is not the
// family's current one, the family is revoked, or the token is idle at
// r.At; ErrNotFound if the family is absent or expired.
//
// Rotations are committed in groups: a caller that gets the write lock
// runs every rotation waiting at that moment in one transaction, without
// savepoints, and the others find theirs done. A rotation that cannot
// move its family (ErrReplay, ErrNotFound) changes nothing and leaves the
// others alone; an insert that fails fails the whole batch, which commits
// nothing: its caller gets the insert's error, and every other caller in
// the batch keeps its current token and gets an error wrapping
// sigil.ErrUnavailable, so it may retry. Committing each rotation alone
// was about a fifth of a refresh's CPU time (the WAL frames written per
// commit, in a profile of issuer's BenchmarkRefreshParallel); the load
// test's figures before and after are in BENCHMARKS.md.
func (s *Store) RotateRefresh(ctx context.Context, r sigil.RefreshRotation) error {
	if r.FamilyID == "" || r.NextHash == "" {
		return errors.New("sqlite: rotate refresh family: empty family ID or token hash")
	}
	if r.At.IsZero() {
		r.At = s.now()
	}
	rot := &rotation{r: r, now: rowcodec.UnixNano(s.Now()), done: make(chan struct{})}
	s.rotationsMu.Lock()
	s.rotations = append(s.rotations, rot)
	s.rotationsMu.Unlock()
	unlock := s.writing()
	select {
	case <-rot.done: // a caller before us ran it
	default:
		s.rotationsMu.Lock()
		batch := s.rotations
		s.rotations = nil
		s.rotationsMu.Unlock()
		s.rotateBatch(ctx, batch)
	}
	unlock()
	<-rot.done
	if rot.err != nil {
		return fmt.Errorf("sqlite: rotate refresh family %q: %w", r.FamilyID, rot.err)
	}
	return nil
}

// rotation is one RotateRefresh waiting for, or done by, a group commit.
type rotation struct {
	r   sigil.RefreshRotation
	now int64
	// Set by rotateBatch before done is closed.
	err  error
	done chan struct{}
}

// rotateBatch runs the rotations in one transaction under the write lock
// (held by the caller) and closes their done channels. A rotation that
// cannot move its family changes nothing and leaves the others alone; an
// insert that fails (the database) fails the whole batch, whose callers
// all get the error and keep their current tokens. No savepoints: parsing
// their statements cost a tenth of a rotation. The batch runs on a
// context of its own: one waiting caller's cancellation must not fail the
// others'.
func (s *Store) rotateBatch(ctx context.Context, batch []*rotation) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var culprit *rotation
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		rotate, ins := tx.StmtContext(ctx, s.rotateStmt), tx.StmtContext(ctx, s.insertAccessStmt)
		for _, rot := range batch {
			moved, err := s.rotateOne(ctx, tx, rotate, ins, rot)
			if moved && err != nil {
				culprit = rot
				return err
			}
			rot.err = err
		}
		return nil
	})
	for _, rot := range batch {
		switch {
		case err != nil && rot == culprit:
			rot.err = err
		case err != nil: // nothing was committed
			rot.err = fmt.Errorf("the group commit failed (%v); the token is still current: %w", err, sigil.ErrUnavailable)
		}
		close(rot.done)
	}
}

// rotateOne moves rot's family on and records its access token, inside
// the batch's transaction. moved reports whether the family moved, so
// that a failure after it must undo the transaction.
func (s *Store) rotateOne(ctx context.Context, tx *sql.Tx, rotate, ins *sql.Stmt, rot *rotation) (moved bool, err error) {
	r := rot.r
	at := rowcodec.UnixNano(r.At)
	res, err := rotate.ExecContext(ctx, r.NextHash, at, rowcodec.UnixNano(r.IdleExpiresAt),
		r.FamilyID, r.Generation, r.TokenHash, rot.now)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, err
	} else if n == 0 {
		return false, whyNotRotated(ctx, tx, r, at, rot.now)
	}
	return true, insertAccess(ctx, ins, r.FamilyID, r.Access)
}

// whyNotRotated says why rotateFamilySQL changed no row: ErrNotFound if
// the family is absent, expired or a placeholder, ErrReplay otherwise.
func whyNotRotated(ctx context.Context, tx *sql.Tx, r sigil.RefreshRotation, at, now int64) error {
	var (
		generation int64
		hash       string
		revoked    bool
		idleUntil  int64
	)
	err := tx.QueryRowContext(ctx, `SELECT generation, token_hash, revoked, idle_expires_at
		FROM refresh_families WHERE id = ? AND expires_at > ? AND token_hash <> ''`, r.FamilyID, now).
		Scan(&generation, &hash, &revoked, &idleUntil)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return sigil.ErrNotFound
	case err != nil:
		return err
	case revoked:
		return fmt.Errorf("family revoked: %w", sigil.ErrReplay)
	case generation != r.Generation:
		return fmt.Errorf("token of generation %d presented, the family is at %d: %w", r.Generation, generation, sigil.ErrReplay)
	case hash != r.TokenHash:
		return fmt.Errorf("token of generation %d does not match the family's: %w", r.Generation, sigil.ErrReplay)
	case idleUntil <= at:
		return fmt.Errorf("token idle since %v: %w", rowcodec.FromUnixNano(idleUntil), sigil.ErrReplay)
	default:
		return fmt.Errorf("family %q did not rotate for no reason found", r.FamilyID)
	}
}

// RevokeRefreshFamily marks a family revoked and returns the JTIs of the
// unexpired access tokens issued from it, soonest to expire first, in one
// transaction. An ID not stored yet gets a revoked placeholder row that
// expires revokedFamilyGrace later, so that CreateRefreshFamily refuses
// it: a replayed code revokes the family its first redemption has not
// stored yet.
func (s *Store) RevokeRefreshFamily(ctx context.Context, id string) ([]string, error) {
	now := s.now()
	until := rowcodec.UnixNano(now.Add(revokedFamilyGrace))
	defer s.writing()()
	var jtis []string
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_families (`+familyColumns+`)
			VALUES (?1, '', '', '[]', '[]', 0, '[]', '', '', 0, '', ?2, NULL, ?3, ?3, 1, '')
			ON CONFLICT (id) DO UPDATE SET revoked = 1`,
			id, rowcodec.UnixNano(now), until); err != nil {
			return fmt.Errorf("mark revoked: %w", err)
		}
		var err error
		jtis, err = accessJTIs(ctx, tx, rowcodec.UnixNano(now), `family_id = ?`, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke refresh family %q: %w", id, err)
	}
	return jtis, nil
}

// RevokeRefreshTokens revokes, in one transaction, every family of the
// user at the client, of the user at any client (clientID empty) or of
// the client for any user (userID empty), and returns the JTIs of their
// unexpired access tokens, soonest to expire first; both empty is an
// error.
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
	now := rowcodec.UnixNano(s.now())
	defer s.writing()()
	var jtis []string
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_families SET revoked = 1 WHERE `+cond, args...); err != nil {
			return err
		}
		var err error
		jtis, err = accessJTIs(ctx, tx, now,
			`family_id IN (SELECT id FROM refresh_families WHERE `+cond+`)`, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke refresh tokens of user %q at client %q: %w", userID, clientID, err)
	}
	return jtis, nil
}

// accessJTIs returns the JTIs of the access tokens where selects that
// expire after now, soonest first, in tx.
func accessJTIs(ctx context.Context, tx *sql.Tx, now int64, where string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT jti FROM refresh_access
		WHERE `+where+` AND expires_at > ? ORDER BY expires_at, jti`, append(args[:len(args):len(args)], now)...)
	return collect(rows, err, func(row scanner) (string, error) {
		var jti string
		err := row.Scan(&jti)
		return jti, err
	})
}
