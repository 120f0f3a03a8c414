package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// userColumns lists the users columns in the order scanUser reads them.
const userColumns = `id, username, password_hash, claims, disabled, created_at, updated_at`

// scanUser reads one row selected with userColumns. Empty claims read
// back as nil, as in the SQLite store.
func scanUser(row pgx.Row) (*sigil.User, error) {
	var (
		u                sigil.User
		claims           []byte
		created, updated int64
	)
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &claims, &u.Disabled, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if u.Claims, err = rowcodec.DecodeClaims(claims); err != nil {
		return nil, fmt.Errorf("decode user %q claims: %w", u.ID, err)
	}
	u.CreatedAt, u.UpdatedAt = rowcodec.FromUnixNano(created), rowcodec.FromUnixNano(updated)
	return &u, nil
}

// CreateUser stores u and sets u.CreatedAt and u.UpdatedAt to the current
// time; ErrConflict if the ID or the username exists, also when another
// node creates it at the same moment. u is not modified on failure. Text
// PostgreSQL cannot store (NUL, invalid UTF-8) is an error.
func (s *Store) CreateUser(ctx context.Context, u *sigil.User) error {
	if u == nil || u.ID == "" {
		return errors.New("postgres: create user: empty user ID")
	}
	claims, err := rowcodec.EncodeClaims(u.Claims)
	if err != nil {
		return errorf("postgres: create user %q: %w", u.ID, err)
	}
	now := s.now()
	_, err = s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.ID, u.Username, u.PasswordHash, claims, u.Disabled,
		rowcodec.UnixNano(now), rowcodec.UnixNano(now))
	if _, ok := uniqueViolation(err); ok {
		return errorf("postgres: create user %q: ID or username exists: %w", u.ID, sigil.ErrConflict)
	}
	if err != nil {
		return errorf("postgres: create user %q: %w", u.ID, err)
	}
	u.CreatedAt, u.UpdatedAt = now, now
	return nil
}

// User returns the user with the given ID; ErrNotFound if there is none.
func (s *Store) User(ctx context.Context, id string) (*sigil.User, error) {
	if !storable(id) {
		return nil, errorf("postgres: get user %q: %w", id, sigil.ErrNotFound)
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: get user %q: %w", id, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: get user %q: %w", id, err)
	}
	return u, nil
}

// UserByName returns the user with the given username, compared exactly;
// ErrNotFound if there is none, also for a username PostgreSQL could not
// have stored (it is typed by whoever signs in).
func (s *Store) UserByName(ctx context.Context, username string) (*sigil.User, error) {
	if !storable(username) {
		return nil, errorf("postgres: get user by name %q: %w", username, sigil.ErrNotFound)
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, username))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: get user by name %q: %w", username, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: get user by name %q: %w", username, err)
	}
	return u, nil
}

// Users returns every user, ordered by username (byte-wise, as Go
// compares strings: the column has the C collation).
func (s *Store) Users(ctx context.Context) ([]*sigil.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, errorf("postgres: list users: %w", err)
	}
	us, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*sigil.User, error) {
		return scanUser(row)
	})
	if err != nil {
		return nil, errorf("postgres: list users: %w", err)
	}
	return us, nil
}

// UpdateUser replaces every field of the stored user u.ID except
// CreatedAt, sets UpdatedAt to the current time, and writes both
// timestamps back into u; ErrNotFound if absent, ErrConflict if another
// user has u.Username.
func (s *Store) UpdateUser(ctx context.Context, u *sigil.User) error {
	if u == nil {
		return errors.New("postgres: update user: nil user")
	}
	if !storable(u.ID) {
		return errorf("postgres: update user %q: %w", u.ID, sigil.ErrNotFound)
	}
	claims, err := rowcodec.EncodeClaims(u.Claims)
	if err != nil {
		return errorf("postgres: update user %q: %w", u.ID, err)
	}
	now := s.now()
	var created int64
	err = s.pool.QueryRow(ctx, `UPDATE users SET
		username = $1, password_hash = $2, claims = $3, disabled = $4, updated_at = $5
		WHERE id = $6 RETURNING created_at`,
		u.Username, u.PasswordHash, claims, u.Disabled, rowcodec.UnixNano(now), u.ID).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return errorf("postgres: update user %q: %w", u.ID, sigil.ErrNotFound)
	}
	if _, ok := uniqueViolation(err); ok {
		return errorf("postgres: update user %q: username %q is taken: %w", u.ID, u.Username, sigil.ErrConflict)
	}
	if err != nil {
		return errorf("postgres: update user %q: %w", u.ID, err)
	}
	u.CreatedAt, u.UpdatedAt = rowcodec.FromUnixNano(created), now
	return nil
}

// DeleteUser removes the user with the given ID and, in the same
// transaction, the user's sessions, consents and refresh families with
// their access tokens; ErrNotFound if absent. The families' rows are
// locked first (see deleteFamilies), so that a rotation in flight cannot
// leave an access token behind.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if !storable(id) {
		return errorf("postgres: delete user %q: %w", id, sigil.ErrNotFound)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return sigil.ErrNotFound
		}
		for _, table := range []string{"sessions", "consents"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE user_id = $1`, id); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		_, err = deleteFamilies(ctx, tx, `user_id = $1`, id)
		return err
	})
	if err != nil {
		return errorf("postgres: delete user %q: %w", id, err)
	}
	return nil
}
