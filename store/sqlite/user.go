package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// userColumns lists the users columns in the order scanUser reads them.
const userColumns = `id, username, password_hash, claims, disabled, created_at, updated_at`

// scanUser reads one row selected with userColumns. Empty claims read
// back as nil.
func scanUser(row scanner) (*sigil.User, error) {
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
// time; ErrConflict if the ID or the username exists. u is not modified on
// failure.
func (s *Store) CreateUser(ctx context.Context, u *sigil.User) error {
	defer s.writing()()
	if u == nil || u.ID == "" {
		return errors.New("sqlite: create user: empty user ID")
	}
	claims, err := rowcodec.EncodeClaims(u.Claims)
	if err != nil {
		return fmt.Errorf("sqlite: create user %q: %w", u.ID, err)
	}
	now := s.now()
	_, err = s.wconn.ExecContext(ctx, `INSERT INTO users (`+userColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.PasswordHash, claims, u.Disabled,
		rowcodec.UnixNano(now), rowcodec.UnixNano(now))
	if isConstraint(err) {
		return fmt.Errorf("sqlite: create user %q: ID or username exists: %w", u.ID, sigil.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create user %q: %w", u.ID, err)
	}
	u.CreatedAt, u.UpdatedAt = now, now
	return nil
}

// userByIDSQL reads one user by ID (User, prepared in Open).
const userByIDSQL = `SELECT ` + userColumns + ` FROM users WHERE id = ?`

// User returns the user with the given ID; ErrNotFound if there is none.
func (s *Store) User(ctx context.Context, id string) (*sigil.User, error) {
	u, err := scanUser(s.userStmt.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get user %q: %w", id, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get user %q: %w", id, err)
	}
	return u, nil
}

// UserByName returns the user with the given username, compared exactly;
// ErrNotFound if there is none.
func (s *Store) UserByName(ctx context.Context, username string) (*sigil.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get user by name %q: %w", username, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get user by name %q: %w", username, err)
	}
	return u, nil
}

// Users returns every user, ordered by username (byte-wise, as Go
// compares strings).
func (s *Store) Users(ctx context.Context) ([]*sigil.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	us, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	return us, nil
}

// UpdateUser replaces every field of the stored user u.ID except
// CreatedAt, sets UpdatedAt to the current time, and writes both
// timestamps back into u; ErrNotFound if absent, ErrConflict if another
// user has u.Username.
func (s *Store) UpdateUser(ctx context.Context, u *sigil.User) error {
	defer s.writing()()
	if u == nil {
		return errors.New("sqlite: update user: nil user")
	}
	claims, err := rowcodec.EncodeClaims(u.Claims)
	if err != nil {
		return fmt.Errorf("sqlite: update user %q: %w", u.ID, err)
	}
	now := s.now()
	var created int64
	err = s.wconn.QueryRowContext(ctx, `UPDATE users SET
		username = ?, password_hash = ?, claims = ?, disabled = ?, updated_at = ?
		WHERE id = ? RETURNING created_at`,
		u.Username, u.PasswordHash, claims, u.Disabled, rowcodec.UnixNano(now), u.ID).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: update user %q: %w", u.ID, sigil.ErrNotFound)
	}
	if isConstraint(err) {
		return fmt.Errorf("sqlite: update user %q: username %q is taken: %w", u.ID, u.Username, sigil.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: update user %q: %w", u.ID, err)
	}
	u.CreatedAt, u.UpdatedAt = rowcodec.FromUnixNano(created), now
	return nil
}

// DeleteUser removes the user with the given ID and, in the same
// transaction, the user's sessions, consents and refresh families;
// ErrNotFound if absent.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	defer s.writing()()
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return sigil.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_access
			WHERE family_id IN (SELECT id FROM refresh_families WHERE user_id = ?)`, id); err != nil {
			return fmt.Errorf("refresh_access: %w", err)
		}
		for _, table := range []string{"sessions", "consents", "refresh_families"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = ?`, id); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete user %q: %w", id, err)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// collect reads every row of rows (the result of a query that failed with
// err, if err is not nil) with scan, and closes rows.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
