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

// lockFamily takes the transaction-level advisory lock of a refresh
// family, whether or not it has tokens. Every write to a family (its
// first token, rotation, revocation and the mark it records, a user's
// deletion) holds its lock, so they happen one after the other; each
// statement after the lock, under READ COMMITTED, sees what the lock's
// previous holder committed. Row locks would not do: a revocation's
// UPDATE does not see the token a rotation it waited for inserted, which
// would escape the revocation, and a family's first token has no row to
// lock before it is inserted. The lock's name includes the schema, as
// advisory locks are per database. A transaction taking several takes
// them in family order (lockFamilies), so two cannot deadlock.
func lockFamily(ctx context.Context, tx pgx.Tx, family string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(
		hashtextextended('sigil refresh family ' || current_schema() || ' ' || $1, 0))`, family); err != nil {
		return fmt.Errorf("lock refresh family %q: %w", family, err)
	}
	return nil
}

// lockFamilies takes, in family order, the locks (lockFamily) of the
// refresh families that have a token matching where, and returns the
// families. A family whose first token is being stored by a transaction
// still open is not among them: only a family's ID, known to whoever
// revokes it by ID, can be locked before it has a token.
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
		if err := lockFamily(ctx, tx, f); err != nil {
			return nil, err
		}
	}
	return families, nil
}

// CreateRefresh stores t, the first token of a family or a token outside
// rotation; ErrConflict if the hash exists, ErrReplay, storing nothing, if
// RevokeRefreshFamily recorded t.FamilyID as revoked (until PurgeAuthz
// deletes the mark, an hour later). A zero t.CreatedAt is set to the
// current time, written back into t. Text PostgreSQL cannot store (NUL,
// invalid UTF-8) is an error.
//
// It checks for the mark and inserts under the family's lock, which
// RevokeRefreshFamily holds while it records the mark and revokes the
// family's tokens: whichever of the two runs second on any node sees what
// the first committed, so the token is either refused or stored and
// then revoked, never stored live after its family's revocation.
func (s *Store) CreateRefresh(ctx context.Context, t *sigil.RefreshToken) error {
	if t == nil || t.Hash == "" {
		return errors.New("postgres: create refresh token: empty token hash")
	}
	created := t.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockFamily(ctx, tx, t.FamilyID); err != nil {
			return err
		}
		var revokedAt int64
		err := tx.QueryRow(ctx, `SELECT revoked_at FROM revoked_families WHERE family_id = $1`, t.FamilyID).
			Scan(&revokedAt)
		if err == nil {
			return fmt.Errorf("family revoked at %v: %w", rowcodec.FromUnixNano(revokedAt), sigil.ErrReplay)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return insertRefresh(ctx, tx, t, rowcodec.UnixNano(created))
	})
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

// RevokeRefreshFamily marks every token of a family revoked, records the
// family as revoked at the current time (CreateRefresh refuses it until
// PurgeAuthz deletes the mark an hour later; revoking again moves the
// mark forward), and returns the non-empty AccessJTIs recorded in it,
// oldest token first, in one transaction under the family's lock: a
// rotation in flight either finishes first, and its new token is revoked
// too, or finds its token revoked; so does a first token in flight
// (CreateRefresh), or it finds the mark. A family without tokens yields
// none and no error, and is recorded all the same: a replayed code
// revokes the family its first redemption has not stored yet. A family
// ID PostgreSQL could not have stored has nothing to revoke.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) ([]string, error) {
	if !storable(familyID) {
		return nil, nil
	}
	var jtis []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockFamily(ctx, tx, familyID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO revoked_families (family_id, revoked_at) VALUES ($1, $2)
			ON CONFLICT (family_id) DO UPDATE
			SET revoked_at = GREATEST(revoked_families.revoked_at, excluded.revoked_at)`,
			familyID, rowcodec.UnixNano(s.now())); err != nil {
			return fmt.Errorf("record the revocation: %w", err)
		}
		var err error
		jtis, err = revokeFamilies(ctx, tx, []string{familyID})
		return err
	})
	if err != nil {
		return nil, errorf("postgres: revoke refresh family %q: %w", familyID, err)
	}
	return jtis, nil
}

// RevokeRefreshTokens revokes every family that has a token of the user
// at the client, of the user at any client (clientID empty) or of the
// client for any user (userID empty), and returns their non-empty
// AccessJTIs, oldest token first; both empty is an error. It runs in one
// transaction under the families' locks (lockFamilies), so a rotation in
// flight in one of them is revoked too or finds its token revoked. The
// families are not recorded as revoked: they already have tokens, which
// stay revoked until they expire.
func (s *Store) RevokeRefreshTokens(ctx context.Context, userID, clientID string) ([]string, error) {
	var (
		where string
		args  []any
	)
	switch {
	case userID != "" && clientID != "":
		where, args = `user_id = $1 AND client_id = $2`, []any{userID, clientID}
	case userID != "":
		where, args = `user_id = $1`, []any{userID}
	case clientID != "":
		where, args = `client_id = $1`, []any{clientID}
	default:
		return nil, errors.New("postgres: revoke refresh tokens: neither a user nor a client given")
	}
	if !storable(userID) || !storable(clientID) {
		return nil, nil
	}
	var jtis []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		families, err := lockFamilies(ctx, tx, where, args...)
		if err != nil || len(families) == 0 {
			return err
		}
		jtis, err = revokeFamilies(ctx, tx, families)
		return err
	})
	if err != nil {
		return nil, errorf("postgres: revoke refresh tokens of user %q at client %q: %w", userID, clientID, err)
	}
	return jtis, nil
}

// revokeFamilies marks the tokens of families revoked and returns their
// non-empty AccessJTIs, in tx, which holds the families' locks.
func revokeFamilies(ctx context.Context, tx pgx.Tx, families []string) ([]string, error) {
	if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked = true
		WHERE family_id = ANY($1) AND NOT revoked`, families); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT access_jti FROM refresh_tokens
		WHERE family_id = ANY($1) AND access_jti <> '' ORDER BY created_at, hash`, families)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
