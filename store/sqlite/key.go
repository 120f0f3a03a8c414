package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

// CreateKey stores k; ErrConflict if the kid exists, or if k is active
// while another active key with the same algorithm exists (the schema
// allows one active key per algorithm; rotation goes through PromoteKey).
// A zero k.CreatedAt is set to the current time, written back into k.
func (s *Store) CreateKey(ctx context.Context, k *sigil.SigningKey) error {
	if k == nil || k.ID == "" {
		return errors.New("sqlite: create key: empty key ID")
	}
	switch k.State {
	case sigil.KeyNext, sigil.KeyActive, sigil.KeyRetired:
	default:
		return fmt.Errorf("sqlite: create key %q: invalid state %q", k.ID, k.State)
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	var retired any // NULL unless retired
	if !k.RetiredAt.IsZero() {
		retired = unixNano(k.RetiredAt)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO signing_keys
		(id, alg, state, public, sealed, created_at, retired_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		k.ID, k.Alg, string(k.State), nonNil(k.Public), nonNil(k.Sealed),
		unixNano(created), retired)
	if isConstraint(err) {
		return fmt.Errorf("sqlite: create key %q: another %s key is active: %w", k.ID, k.Alg, sigil.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create key %q: %w", k.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: create key %q: %w", k.ID, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: create key %q: %w", k.ID, sigil.ErrConflict)
	}
	k.CreatedAt = created
	return nil
}

// nonNil turns a nil slice into an empty one for the NOT NULL blob
// columns; scanning turns it back into nil.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Keys returns every stored key, oldest first (by CreatedAt, then ID).
func (s *Store) Keys(ctx context.Context) ([]*sigil.SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, alg, state, public, sealed, created_at, retired_at
		FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	defer rows.Close()
	var ks []*sigil.SigningKey
	for rows.Next() {
		var (
			k       sigil.SigningKey
			state   string
			created int64
			retired sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.Alg, &state, &k.Public, &k.Sealed, &created, &retired); err != nil {
			return nil, fmt.Errorf("sqlite: list keys: %w", err)
		}
		k.State = sigil.KeyState(state)
		if len(k.Public) == 0 {
			k.Public = nil
		}
		if len(k.Sealed) == 0 {
			k.Sealed = nil
		}
		k.CreatedAt = fromUnixNano(created)
		if retired.Valid {
			k.RetiredAt = fromUnixNano(retired.Int64)
		}
		ks = append(ks, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return ks, nil
}

// PromoteKey makes the next key kid active and, in the same transaction,
// retires at time at every other active key with the same algorithm. Keys
// of other algorithms are untouched. ErrNotFound if kid is absent;
// promoting an active key is a no-op; promoting a retired key is
// ErrConflict.
func (s *Store) PromoteKey(ctx context.Context, kid string, at time.Time) error {
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		var alg, state string
		err := tx.QueryRowContext(ctx, `SELECT alg, state FROM signing_keys WHERE id = ?`, kid).Scan(&alg, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return sigil.ErrNotFound
		}
		if err != nil {
			return err
		}
		switch sigil.KeyState(state) {
		case sigil.KeyActive:
			return nil
		case sigil.KeyRetired:
			return fmt.Errorf("key is retired: %w", sigil.ErrConflict)
		}
		// Retire first: the one-active-key-per-algorithm index is checked
		// statement by statement.
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET state = 'retired', retired_at = ?
			WHERE alg = ? AND state = 'active' AND id <> ?`, unixNano(at), alg, kid); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE signing_keys SET state = 'active', retired_at = NULL WHERE id = ?`, kid)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: promote key %q: %w", kid, err)
	}
	return nil
}

// DeleteKey removes the key kid; ErrNotFound if absent.
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM signing_keys WHERE id = ?`, kid)
	if err != nil {
		return fmt.Errorf("sqlite: delete key %q: %w", kid, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: delete key %q: %w", kid, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: delete key %q: %w", kid, sigil.ErrNotFound)
	}
	return nil
}
