package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// Refresh families (migration 0006): one row per family, rotated in
// place, and the access tokens issued from each in refresh_access.
//
// Every write to a family goes through its row, and the primary key and
// row locks order them on any number of nodes: a rotation is one UPDATE
// of the row, a revocation an upsert of it, a creation an insert that
// waits for, or is waited for by, a revocation's upsert of the same ID.
// Whatever reads what another write committed (a revocation's access
// tokens) does so in a later statement of the same READ COMMITTED
// transaction, whose snapshot is taken after the row lock was granted;
// within one statement it would not see the rows the lock's previous
// holder inserted. Statements that lock several families
// (RevokeRefreshTokens, DeleteUser, PurgeAuthz) lock them in ID order, so
// two cannot deadlock.
//
// A family revoked before it exists is a placeholder row: revoked, with
// an empty client_id, user_id and token_hash. No family has an empty
// token_hash (CreateRefreshFamily and RotateRefresh refuse one), which is
// how reads tell a placeholder, and treat it as absent; a family may have
// an empty ClientID.

// revokedFamilyGrace is how long after its revocation PurgeAuthz keeps
// the placeholder of a family revoked before it existed, which makes
// CreateRefreshFamily refuse the family. It only has to outlast the code
// redemption in flight that is about to create the family.
const revokedFamilyGrace = time.Hour

// familyColumns lists the refresh_families columns in the order
// scanFamily reads them.
const familyColumns = `id, client_id, user_id, scopes, audience, auth_time, amr, acr, jkt,
	generation, token_hash, created_at, rotated_at, idle_expires_at, expires_at, revoked,
	authorization_details`

// lockFamiliesSQL selects the IDs of the families matching where and
// locks their rows in ID order, for an UPDATE or DELETE … WHERE id IN
// (…) of several families.
func lockFamiliesSQL(where string) string {
	return `SELECT id FROM refresh_families WHERE ` + where + ` ORDER BY id FOR UPDATE`
}

// scanFamily reads one row selected with familyColumns. Empty lists read
// back as nil; RotatedAt is zero before the first rotation.
func scanFamily(row pgx.Row) (*sigil.RefreshFamily, error) {
	var (
		f                                       sigil.RefreshFamily
		scopes, audience, amr                   []byte
		authTime, created, idleUntil, expiresAt int64
		rotated                                 *int64
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
	if rotated != nil {
		f.RotatedAt = rowcodec.FromUnixNano(*rotated)
	}
	return &f, nil
}

// createFamilySQL inserts a family ($1-$13, $16) unless its ID exists, and
// its first access token ($14 jti, $15 expiry; none if the jti is empty) only
// if the family was inserted, in one statement. It returns how many
// families it inserted: 0 or 1.
const createFamilySQL = `WITH f AS (
		INSERT INTO refresh_families (` + familyColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, NULL, $12, $13, false, $16)
		ON CONFLICT (id) DO NOTHING
		RETURNING id
	), a AS (
		INSERT INTO refresh_access (family_id, jti, expires_at)
		SELECT id, $14::text, $15 FROM f WHERE $14::text <> ''
	)
	SELECT count(*) FROM f`

// CreateRefreshFamily stores a new family, at generation 0, unrotated and
// live whatever f.Generation, f.RotatedAt and f.Revoked hold, and access,
// the access token issued with it (none if access.JTI is empty), in one
// statement. ErrConflict if the ID exists; ErrReplay, storing nothing, if
// RevokeRefreshFamily revoked the ID before it existed. A zero
// f.CreatedAt is set to the current time, written back into f. An empty
// ID or TokenHash is an error, and so is text PostgreSQL cannot store
// (NUL, invalid UTF-8).
//
// The insert does nothing if the ID exists, and waits for a revocation of
// the same ID in flight on any node to commit first: of the two, whichever
// runs second sees the other's row, so the family is either refused or
// stored and then revoked, never stored live after its revocation.
func (s *Store) CreateRefreshFamily(ctx context.Context, f *sigil.RefreshFamily, access sigil.IssuedToken) error {
	switch {
	case f == nil || f.ID == "":
		return errors.New("postgres: create refresh family: empty family ID")
	case f.TokenHash == "":
		return fmt.Errorf("postgres: create refresh family %q: empty token hash", f.ID)
	}
	created := f.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	var inserted int
	err := s.pool.QueryRow(ctx, createFamilySQL,
		f.ID, f.ClientID, f.UserID, rowcodec.EncodeList(f.Scopes), rowcodec.EncodeList(f.Audience),
		rowcodec.UnixNano(f.AuthTime), rowcodec.EncodeList(f.AMR), f.ACR, f.JKT, f.TokenHash,
		rowcodec.UnixNano(created), rowcodec.UnixNano(f.IdleExpiresAt), rowcodec.UnixNano(f.ExpiresAt),
		access.JTI, rowcodec.UnixNano(access.ExpiresAt), f.AuthorizationDetails).Scan(&inserted)
	if err != nil {
		return errorf("postgres: create refresh family %q: %w", f.ID, err)
	}
	if inserted == 0 {
		// The ID exists, and a row never changes between a placeholder
		// and a family: this read cannot contradict the insert.
		var placeholder bool
		err := s.pool.QueryRow(ctx, `SELECT token_hash = '' FROM refresh_families WHERE id = $1`, f.ID).
			Scan(&placeholder)
		switch {
		case err == nil && placeholder:
			return errorf("postgres: create refresh family %q: revoked before it was created: %w", f.ID, sigil.ErrReplay)
		case err == nil || errors.Is(err, pgx.ErrNoRows): // purged since
			return errorf("postgres: create refresh family %q: %w", f.ID, sigil.ErrConflict)
		default:
			return errorf("postgres: create refresh family %q: %w", f.ID, err)
		}
	}
	f.CreatedAt = created
	return nil
}

// RefreshFamily returns a family, revoked ones included, until its
// ExpiresAt; ErrNotFound after it, if it is absent, or if it is only the
// placeholder of a revocation before its creation.
func (s *Store) RefreshFamily(ctx context.Context, id string) (*sigil.RefreshFamily, error) {
	if !storable(id) {
		return nil, errorf("postgres: get refresh family %q: %w", id, sigil.ErrNotFound)
	}
	f, err := scanFamily(s.pool.QueryRow(ctx, `SELECT `+familyColumns+` FROM refresh_families
		WHERE id = $1 AND expires_at > $2 AND token_hash <> ''`, id, rowcodec.UnixNano(s.Now())))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: get refresh family %q: %w", id, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: get refresh family %q: %w", id, err)
	}
	return f, nil
}

// rotateSQL moves family $4 from token $5 (generation) / $6 (hash) to
// $1 (next hash) at $2 with idle expiry $3, unless it is revoked, the
// token is past its idle expiry or the family's at $2, or the family is
// past its expiry at $7 (now); and records access token $8 (jti; none if
// empty) expiring at $9 if it did. It returns how many families it
// rotated: 0 or 1.
const rotateSQL = `WITH r AS (
		UPDATE refresh_families
		SET generation = generation + 1, token_hash = $1, rotated_at = $2, idle_expires_at = $3
		WHERE id = $4 AND generation = $5 AND token_hash = $6 AND NOT revoked
			AND idle_expires_at > $2 AND expires_at > $2 AND expires_at > $7
		RETURNING id
	), a AS (
		INSERT INTO refresh_access (family_id, jti, expires_at)
		SELECT id, $8::text, $9 FROM r WHERE $8::text <> ''
	)
	SELECT count(*) FROM r`

// RotateRefresh moves family r.FamilyID from its token r.Generation (hash
// r.TokenHash) to the next, at r.At (the current time if zero), and
// records r.Access (nothing if its JTI is empty), in one statement.
// ErrReplay, changing nothing, if that token is not the current one, the
// family is revoked, or the token is past its idle expiry at r.At (or the
// family past its ExpiresAt at r.At: no token outlives its family);
// ErrNotFound if the family is absent, past its ExpiresAt at the current
// time, or a placeholder of a revocation. ErrConflict if r.Access.JTI is
// already recorded in the family. r.IdleExpiresAt is stored as given.
//
// The UPDATE's WHERE clause names the presented generation and hash. Of
// concurrent rotations from one token on any nodes, one locks the row and
// the others wait for it, re-check the clause against the row it
// committed, find the generation moved on and change nothing. A
// revocation committed first leaves the row revoked, which the clause
// refuses in the same way.
func (s *Store) RotateRefresh(ctx context.Context, r sigil.RefreshRotation) error {
	if r.NextHash == "" {
		return fmt.Errorf("postgres: rotate refresh family %q: empty next token hash", r.FamilyID)
	}
	if !storable(r.FamilyID) {
		return errorf("postgres: rotate refresh family %q: %w", r.FamilyID, sigil.ErrNotFound)
	}
	if r.At.IsZero() {
		r.At = s.now()
	}
	now := rowcodec.UnixNano(s.Now())
	if storable(r.TokenHash) { // else no row holds it: only explain why
		var rotated int
		err := s.pool.QueryRow(ctx, rotateSQL, r.NextHash, rowcodec.UnixNano(r.At),
			rowcodec.UnixNano(r.IdleExpiresAt), r.FamilyID, r.Generation, r.TokenHash, now,
			r.Access.JTI, rowcodec.UnixNano(r.Access.ExpiresAt)).Scan(&rotated)
		if _, ok := uniqueViolation(err); ok {
			return errorf("postgres: rotate refresh family %q: access token %q recorded before: %w",
				r.FamilyID, r.Access.JTI, sigil.ErrConflict)
		}
		if err != nil {
			return errorf("postgres: rotate refresh family %q: %w", r.FamilyID, err)
		}
		if rotated == 1 {
			return nil
		}
	}
	if err := s.whyNotRotated(ctx, r, now); err != nil {
		return errorf("postgres: rotate refresh family %q: %w", r.FamilyID, err)
	}
	return nil
}

// whyNotRotated reads family r.FamilyID after RotateRefresh changed
// nothing and returns why. Its generation only grows, a revoked family
// stays revoked and the idle expiry moves only with the generation, so
// this read cannot contradict the update, except for a family created
// since, which was absent then: ErrNotFound.
func (s *Store) whyNotRotated(ctx context.Context, r sigil.RefreshRotation, now int64) error {
	var (
		generation             int64
		hash                   string
		revoked                bool
		idleUntil, familyUntil int64
	)
	err := s.pool.QueryRow(ctx, `SELECT generation, token_hash, revoked, idle_expires_at, expires_at
		FROM refresh_families WHERE id = $1 AND expires_at > $2 AND token_hash <> ''`, r.FamilyID, now).
		Scan(&generation, &hash, &revoked, &idleUntil, &familyUntil)
	at := rowcodec.UnixNano(r.At)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return sigil.ErrNotFound
	case err != nil:
		return err
	case revoked:
		return fmt.Errorf("family revoked: %w", sigil.ErrReplay)
	case generation != r.Generation:
		return fmt.Errorf("token of generation %d presented, the family is at %d: %w", r.Generation, generation, sigil.ErrReplay)
	case hash != r.TokenHash:
		return fmt.Errorf("token hash does not match generation %d: %w", generation, sigil.ErrReplay)
	case min(idleUntil, familyUntil) <= at:
		return fmt.Errorf("token idle-expired at %v: %w", rowcodec.FromUnixNano(min(idleUntil, familyUntil)), sigil.ErrReplay)
	}
	return sigil.ErrNotFound
}

// RevokeRefreshFamily marks a family revoked and returns the JTIs of the
// unexpired access tokens issued from it, soonest to expire first, in one
// transaction. An ID not stored yet gets a placeholder row, revoked and
// expiring an hour from now (revoking again does not extend it), so that
// CreateRefreshFamily refuses it. An ID PostgreSQL could not have stored
// has nothing to revoke.
//
// The upsert locks the family's row, or waits for the transaction that
// holds it: a rotation or a creation in flight on another node commits
// first, or finds the family revoked. The access tokens are read by a
// second statement, whose snapshot is taken after that wait, so it sees
// the token a rotation it waited for recorded; a read in the upsert's own
// statement would miss it.
func (s *Store) RevokeRefreshFamily(ctx context.Context, id string) ([]string, error) {
	if !storable(id) {
		return nil, nil
	}
	now := s.now()
	until := rowcodec.UnixNano(now.Add(revokedFamilyGrace))
	var jtis []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO refresh_families (`+familyColumns+`)
			VALUES ($1, '', '', '[]', '[]', 0, '[]', '', '', 0, '', $2, NULL, $3, $3, true, '')
			ON CONFLICT (id) DO UPDATE SET revoked = true`,
			id, rowcodec.UnixNano(now), until); err != nil {
			return err
		}
		var err error
		jtis, err = accessJTIs(ctx, tx, []string{id}, rowcodec.UnixNano(s.Now()))
		return err
	})
	if err != nil {
		return nil, errorf("postgres: revoke refresh family %q: %w", id, err)
	}
	return jtis, nil
}

// RevokeRefreshTokens revokes every family of the user at the client, of
// the user at any client (clientID empty) or of the client for any user
// (userID empty), and returns the JTIs of their unexpired access tokens,
// soonest to expire first; both empty is an error. Placeholders have no
// client or user, so none matches.
//
// It runs in one transaction. The UPDATE locks the families in ID order,
// waiting for rotations in flight; the access tokens are read by a second
// statement, which sees what those rotations recorded (see
// RevokeRefreshFamily). A family whose creation is still in flight is not
// among them: it is created after the revocation.
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
		rows, err := tx.Query(ctx, `UPDATE refresh_families SET revoked = true
			WHERE id IN (`+lockFamiliesSQL(where)+`) RETURNING id`, args...)
		if err != nil {
			return err
		}
		families, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(families) == 0 {
			return err
		}
		jtis, err = accessJTIs(ctx, tx, families, rowcodec.UnixNano(s.Now()))
		return err
	})
	if err != nil {
		return nil, errorf("postgres: revoke refresh tokens of user %q at client %q: %w", userID, clientID, err)
	}
	return jtis, nil
}

// accessJTIs returns the JTIs of the access tokens issued from families
// that are unexpired at now, soonest to expire first.
func accessJTIs(ctx context.Context, tx pgx.Tx, families []string, now int64) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT jti FROM refresh_access
		WHERE family_id = ANY($1) AND expires_at > $2 ORDER BY expires_at, jti`, families, now)
	if err != nil {
		return nil, fmt.Errorf("read access tokens: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// deleteFamilies deletes, in tx, the families matching where (locking
// them in ID order) and the access tokens issued from them, and returns
// how many families it deleted. The access tokens are deleted by a second
// statement, which sees those a rotation the first waited for recorded.
func deleteFamilies(ctx context.Context, tx pgx.Tx, where string, args ...any) (int64, error) {
	rows, err := tx.Query(ctx, `DELETE FROM refresh_families WHERE id IN (`+lockFamiliesSQL(where)+`)
		RETURNING id`, args...)
	if err != nil {
		return 0, fmt.Errorf("refresh families: %w", err)
	}
	families, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("refresh families: %w", err)
	}
	if len(families) == 0 {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM refresh_access WHERE family_id = ANY($1)`, families); err != nil {
		return 0, fmt.Errorf("access tokens of refresh families: %w", err)
	}
	return int64(len(families)), nil
}
