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

// CreateKey stores k; ErrConflict if the kid exists, live or archived (a
// kid names one key for ever, so a checkpoint's kid header is never
// ambiguous), or if k is active while another active key with the same
// algorithm exists (the schema allows one active key per algorithm;
// rotation goes through PromoteKey). A zero k.CreatedAt is set to the
// current time, written back into k.
func (s *Store) CreateKey(ctx context.Context, k *sigil.SigningKey) error {
	defer s.writing()()
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
		retired = rowcodec.UnixNano(k.RetiredAt)
	}
	// One statement, so the archive check and the insert are atomic. The
	// WHERE clause also keeps SQLite from reading ON CONFLICT as a join
	// constraint.
	res, err := s.wconn.ExecContext(ctx, `INSERT INTO signing_keys
		(id, alg, state, public, sealed, created_at, retired_at)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
		WHERE NOT EXISTS (SELECT 1 FROM key_archive WHERE id = ?1)
		ON CONFLICT (id) DO NOTHING`,
		k.ID, k.Alg, string(k.State), nonNil(k.Public), nonNil(k.Sealed),
		rowcodec.UnixNano(created), retired)
	if isConstraint(err) {
		return fmt.Errorf("sqlite: create key %q: another %s key is active: %w", k.ID, k.Alg, sigil.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create key %q: %w", k.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: create key %q: %w", k.ID, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: create key %q: kid exists or is archived: %w", k.ID, sigil.ErrConflict)
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

// keyColumns lists the key columns in the order queryKeys reads them; the
// archive has the same ones, plus archived_at.
const keyColumns = `id, alg, state, public, sealed, created_at, retired_at`

// Keys returns every stored key, oldest first (by CreatedAt, then ID).
func (s *Store) Keys(ctx context.Context) ([]*sigil.SigningKey, error) {
	ks, err := s.queryKeys(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return ks, nil
}

// ArchivedKeys returns the keys DeleteKey archived, oldest first (by
// CreatedAt, then ID), with every field as it was when the key was
// deleted.
func (s *Store) ArchivedKeys(ctx context.Context) ([]*sigil.SigningKey, error) {
	ks, err := s.queryKeys(ctx, `SELECT `+keyColumns+` FROM key_archive ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list archived keys: %w", err)
	}
	return ks, nil
}

// queryKeys runs query, which selects keyColumns, and reads the keys.
// Empty Public and Sealed read back as nil.
func (s *Store) queryKeys(ctx context.Context, query string) ([]*sigil.SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
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
			return nil, err
		}
		k.State = sigil.KeyState(state)
		if len(k.Public) == 0 {
			k.Public = nil
		}
		if len(k.Sealed) == 0 {
			k.Sealed = nil
		}
		k.CreatedAt = rowcodec.FromUnixNano(created)
		if retired.Valid {
			k.RetiredAt = rowcodec.FromUnixNano(retired.Int64)
		}
		ks = append(ks, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return ks, nil
}

// PromoteKey makes the next key kid active and, in the same transaction,
// retires at time at every other active key with the same algorithm. Keys
// of other algorithms are untouched. ErrNotFound if kid is absent;
// promoting an active key is a no-op; promoting a retired key is
// ErrConflict.
func (s *Store) PromoteKey(ctx context.Context, kid string, at time.Time) error {
	defer s.writing()()
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
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
			WHERE alg = ? AND state = 'active' AND id <> ?`, rowcodec.UnixNano(at), alg, kid); err != nil {
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

// DeleteKey moves the key kid from signing_keys into key_archive, stamped
// with the current time, in one transaction: Keys stops listing it,
// ArchivedKeys lists it, and its kid stays taken. ErrNotFound if kid is
// not a live key, also when it is already archived.
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	defer s.writing()()
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO key_archive
			(`+keyColumns+`, archived_at)
			SELECT `+keyColumns+`, ? FROM signing_keys WHERE id = ?`,
			rowcodec.UnixNano(s.now()), kid)
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return sigil.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE id = ?`, kid)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete key %q: %w", kid, err)
	}
	return nil
}
