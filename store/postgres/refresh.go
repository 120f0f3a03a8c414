package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// refreshColumns lists the refresh_tokens columns in the order
// scanRefresh reads them.
const refreshColumns = `hash, family_id, client_id, user_id, scopes, audience, auth_time,
	amr, acr, jkt, access_jti, created_at, expires_at, family_expires_at, used_at, revoked`

// scanRefresh reads one row selected with refreshColumns. Empty lists read
// back as nil; UsedAt is zero while the token is unspent.
func scanRefresh(row pgx.Row) (*sigil.RefreshToken, error) {
	var (
		t                                         sigil.RefreshToken
		scopes, audience, amr                     []byte
		authTime, created, expiresAt, familyUntil int64
		used                                      *int64
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
	if used != nil {
		t.UsedAt = rowcodec.FromUnixNano(*used)
	}
	return &t, nil
}

// insertRefresh inserts t, stamped created, through db (the pool or a
// transaction); it is a unique violation if the hash exists.
func insertRefresh(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, t *sigil.RefreshToken, created int64) error {
	var used *int64 // NULL while unspent
	if !t.UsedAt.IsZero() {
		n := rowcodec.UnixNano(t.UsedAt)
		used = &n
	}
	_, err := db.Exec(ctx, `INSERT INTO refresh_tokens (`+refreshColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		t.Hash, t.FamilyID, t.ClientID, t.UserID, rowcodec.EncodeList(t.Scopes),
		rowcodec.EncodeList(t.Audience), rowcodec.UnixNano(t.AuthTime), rowcodec.EncodeList(t.AMR),
		t.ACR, t.JKT, t.AccessJTI, created, rowcodec.UnixNano(t.ExpiresAt),
		rowcodec.UnixNano(t.FamilyExpiresAt), used, t.Revoked)
	return err
}

// lockFamilies takes, in family order, the transaction-level advisory
// locks of the refresh families that have a token matching where, and
// returns the families. Every write to a family's tokens after its first
// (rotation, revocation, a user's deletion) holds its lock, so they
// happen one after the other; each statement after the lock, under READ
// COMMITTED, sees what the lock's previous holder committed. Row locks
// would not do: a revocation's UPDATE does not see the token a rotation
// it waited for inserted, which would escape the revocation. The lock's
// name includes the schema, as advisory locks are per database.
func lockFamilies(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT family_id FROM refresh_tokens WHERE `+where+`
		ORDER BY family_id`, args...)
	if err != nil {
		return nil, err
	}
	families, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, f := range families {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(
			hashtextextended('sigil refresh family ' || current_schema() || ' ' || $1, 0))`, f); err != nil {
			return nil, fmt.Errorf("lock refresh family %q: %w", f, err)
		}
	}
	return families, nil
}

// CreateRefresh stores t, the first token of a family or a token outside
// rotation; ErrConflict if the hash exists. A zero t.CreatedAt is set to
// the current time, written back into t. Text PostgreSQL cannot store
// (NUL, invalid UTF-8) is an error.
func (s *Store) CreateRefresh(ctx context.Context, t *sigil.RefreshToken) error {
	if t == nil || t.Hash == "" {
		return errors.New("postgres: create refresh token: empty token hash")
	}
	created := t.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	err := insertRefresh(ctx, s.pool, t, rowcodec.UnixNano(created))
	if _, ok := uniqueViolation(err); ok {
		return errorf("postgres: create refresh token in family %q: %w", t.FamilyID, sigil.ErrConflict)
	}
	if err != nil {
		return errorf("postgres: create refresh token in family %q: %w", t.FamilyID, err)
	}
	t.CreatedAt = created
	return nil
}

// RefreshToken returns a token, spent, revoked or past its idle expiry
// included, until its family's absolute expiry; ErrNotFound after it or
// if the token is absent.
func (s *Store) RefreshToken(ctx context.Context, hash string) (*sigil.RefreshToken, error) {
	if !storable(hash) {
		return nil, errorf("postgres: get refresh token: %w", sigil.ErrNotFound)
	}
	t, err := scanRefresh(s.pool.QueryRow(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens
		WHERE hash = $1 AND family_expires_at > $2`, hash, rowcodec.UnixNano(s.Now())))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: get refresh token: %w", sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: get refresh token: %w", err)
	}
	return t, nil
}

// RotateRefresh spends the token oldHash at next.CreatedAt and stores next
// in its family, in one transaction under the family's lock (see
// lockFamilies): of concurrent rotations of one token on any nodes,
// exactly one succeeds and the others see the token spent. next takes the
// old token's FamilyID and FamilyExpiresAt whatever it holds (a rotation
// never extends a family's absolute lifetime), and a zero next.CreatedAt
// is set to the current time; all three are written back into next.
//
// ErrReplay, storing nothing, if the old token is spent, revoked or past
// its idle expiry; ErrNotFound if it is absent or its family has expired
// (as RefreshToken reads it); ErrConflict if next.Hash exists.
func (s *Store) RotateRefresh(ctx context.Context, oldHash string, next *sigil.RefreshToken) error {
	if next == nil || next.Hash == "" {
		return errors.New("postgres: rotate refresh token: empty token hash")
	}
	if !storable(oldHash) {
		return errorf("postgres: rotate refresh token: %w", sigil.ErrNotFound)
	}
	created := next.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	now := rowcodec.UnixNano(s.Now())
	var (
		family      string
		familyUntil int64
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		families, err := lockFamilies(ctx, tx, `hash = $1`, oldHash)
		if err != nil {
			return err
		}
		if len(families) == 0 {
			return sigil.ErrNotFound
		}
		family = families[0]
		var (
			expiresAt int64
			used      *int64
			revoked   bool
		)
		err = tx.QueryRow(ctx, `SELECT family_expires_at, expires_at, used_at, revoked
			FROM refresh_tokens WHERE hash = $1 AND family_expires_at > $2`, oldHash, now).
			Scan(&familyUntil, &expiresAt, &used, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return sigil.ErrNotFound
		}
		if err != nil {
			return err
		}
		switch {
		case used != nil:
			return fmt.Errorf("token spent: %w", sigil.ErrReplay)
		case revoked:
			return fmt.Errorf("token revoked: %w", sigil.ErrReplay)
		case expiresAt <= now:
			return fmt.Errorf("token idle-expired: %w", sigil.ErrReplay)
		}
		t := *next
		t.FamilyID, t.FamilyExpiresAt = family, rowcodec.FromUnixNano(familyUntil)
		if err := insertRefresh(ctx, tx, &t, rowcodec.UnixNano(created)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2`,
			rowcodec.UnixNano(created), oldHash)
		return err
	})
	if _, ok := uniqueViolation(err); ok {
		return errorf("postgres: rotate refresh token in family %q: %w", family, sigil.ErrConflict)
	}
	if err != nil {
		return errorf("postgres: rotate refresh token: %w", err)
	}
	next.FamilyID, next.FamilyExpiresAt, next.CreatedAt = family, rowcodec.FromUnixNano(familyUntil), created
	return nil
}

// RevokeRefreshFamily marks every token of a family revoked and returns
// the non-empty AccessJTIs recorded in it, oldest token first, in one
// transaction under the family's lock: a rotation in flight either
// finishes first, and its new token is revoked too, or finds its token
// revoked. A family without tokens yields none and no error.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) ([]string, error) {
	if !storable(familyID) {
		return nil, nil
	}
	jtis, err := s.revokeRefresh(ctx, `family_id = $1`, familyID)
	if err != nil {
		return nil, errorf("postgres: revoke refresh family %q: %w", familyID, err)
	}
	return jtis, nil
}

// RevokeRefreshGrant revokes every family that has a token of the user at
// the client and returns their non-empty AccessJTIs, as
// RevokeRefreshFamily does.
func (s *Store) RevokeRefreshGrant(ctx context.Context, userID, clientID string) ([]string, error) {
	if !storable(userID) || !storable(clientID) {
		return nil, nil
	}
	jtis, err := s.revokeRefresh(ctx, `user_id = $1 AND client_id = $2`, userID, clientID)
	if err != nil {
		return nil, errorf("postgres: revoke refresh tokens of %q at %q: %w", userID, clientID, err)
	}
	return jtis, nil
}

// revokeRefresh revokes the families with a token matching where and
// returns their non-empty AccessJTIs, in one transaction under the
// families' locks.
func (s *Store) revokeRefresh(ctx context.Context, where string, args ...any) ([]string, error) {
	var jtis []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		families, err := lockFamilies(ctx, tx, where, args...)
		if err != nil || len(families) == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked = true
			WHERE family_id = ANY($1) AND NOT revoked`, families); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT access_jti FROM refresh_tokens
			WHERE family_id = ANY($1) AND access_jti <> '' ORDER BY created_at, hash`, families)
		if err != nil {
			return err
		}
		jtis, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return jtis, err
}
