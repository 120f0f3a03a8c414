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

// CreateKey stores k; ErrConflict if the kid exists, live or archived (a
// kid names one key for ever, so a checkpoint's kid header is never
// ambiguous), or if k is active while another active key with the same
// algorithm exists (the schema allows one active key per algorithm;
// rotation goes through PromoteKey). A zero k.CreatedAt is set to the
// current time, written back into k.
func (s *Store) CreateKey(ctx context.Context, k *sigil.SigningKey) error {
	if k == nil || k.ID == "" {
		return errors.New("postgres: create key: empty key ID")
	}
	switch k.State {
	case sigil.KeyNext, sigil.KeyActive, sigil.KeyRetired:
	default:
		return errorf("postgres: create key %q: invalid state %q", k.ID, k.State)
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	var retired *int64 // NULL unless retired
	if !k.RetiredAt.IsZero() {
		n := rowcodec.UnixNano(k.RetiredAt)
		retired = &n
	}
	var archived bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockChanges(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO signing_keys
			(id, alg, state, public, sealed, created_at, retired_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.Alg, string(k.State), nonNil(k.Public), nonNil(k.Sealed),
			rowcodec.UnixNano(created), retired); err != nil {
			return err
		}
		// The archive is checked after the insert, in a statement of its
		// own and so with a fresh snapshot: a DeleteKey of the same kid
		// that the insert waited for has committed by then and its
		// archived row is visible. Checked inside the insert, it could be
		// missed, and the kid named two keys.
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM key_archive WHERE id = $1)`,
			k.ID).Scan(&archived); err != nil {
			return err
		}
		if archived {
			return sigil.ErrConflict // rolls the insert back
		}
		return nil
	})
	if constraint, ok := uniqueViolation(err); ok {
		if constraint == "signing_keys_one_active" {
			return errorf("postgres: create key %q: another %s key is active: %w", k.ID, k.Alg, sigil.ErrConflict)
		}
		return errorf("postgres: create key %q: kid exists: %w", k.ID, sigil.ErrConflict)
	}
	if archived {
		return errorf("postgres: create key %q: kid is archived: %w", k.ID, sigil.ErrConflict)
	}
	if err != nil {
		return errorf("postgres: create key %q: %w", k.ID, err)
	}
	k.CreatedAt = created
	return nil
}

// nonNil turns a nil slice into an empty one for the NOT NULL BYTEA
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

// Keys returns every stored key, oldest first (by CreatedAt, then ID
// byte-wise).
func (s *Store) Keys(ctx context.Context) ([]*sigil.SigningKey, error) {
	ks, err := s.queryKeys(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, errorf("postgres: list keys: %w", err)
	}
	return ks, nil
}

// ArchivedKeys returns the keys DeleteKey archived, oldest first (by
// CreatedAt, then ID byte-wise), with every field as it was when the key
// was deleted.
func (s *Store) ArchivedKeys(ctx context.Context) ([]*sigil.SigningKey, error) {
	ks, err := s.queryKeys(ctx, `SELECT `+keyColumns+` FROM key_archive ORDER BY created_at, id`)
	if err != nil {
		return nil, errorf("postgres: list archived keys: %w", err)
	}
	return ks, nil
}

// queryKeys runs query, which selects keyColumns, and reads the keys.
func (s *Store) queryKeys(ctx context.Context, query string) ([]*sigil.SigningKey, error) {
	rows, err := s.pool.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*sigil.SigningKey, error) {
		return scanKey(row)
	})
}

// scanKey reads one row selected with keyColumns. Empty Public and Sealed
// read back as nil.
func scanKey(row pgx.Row) (*sigil.SigningKey, error) {
	var (
		k       sigil.SigningKey
		state   string
		created int64
		retired *int64
	)
	if err := row.Scan(&k.ID, &k.Alg, &state, &k.Public, &k.Sealed, &created, &retired); err != nil {
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
	if retired != nil {
		k.RetiredAt = rowcodec.FromUnixNano(*retired)
	}
	return &k, nil
}

// PromoteKey makes the next key kid active and, in the same transaction,
// retires at time at every other active key with the same algorithm. Keys
// of other algorithms are untouched. ErrNotFound if kid is absent;
// promoting an active key is a no-op; promoting a retired key is
// ErrConflict.
//
// The transaction first locks every key of kid's algorithm, in ID order,
// so promotions of one algorithm from several nodes run one after the
// other as they do under SQLite's write lock, and a concurrent DeleteKey
// of kid either finishes first (ErrNotFound) or waits. An active key of
// the algorithm that CreateKey inserts while the promotion runs makes it
// fail with ErrConflict.
func (s *Store) PromoteKey(ctx context.Context, kid string, at time.Time) error {
	if !storable(kid) {
		return errorf("postgres: promote key %q: %w", kid, sigil.ErrNotFound)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockChanges(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, alg, state FROM signing_keys
			WHERE alg = (SELECT alg FROM signing_keys WHERE id = $1)
			ORDER BY id FOR UPDATE`, kid)
		if err != nil {
			return err
		}
		var (
			id, a, st  string // the row ForEachRow scanned
			alg, state string // kid's
		)
		if _, err := pgx.ForEachRow(rows, []any{&id, &a, &st}, func() error {
			if id == kid {
				alg, state = a, st
			}
			return nil
		}); err != nil {
			return err
		}
		if state == "" {
			return sigil.ErrNotFound // absent, or deleted while we waited
		}
		switch sigil.KeyState(state) {
		case sigil.KeyActive:
			return nil
		case sigil.KeyRetired:
			return fmt.Errorf("key is retired: %w", sigil.ErrConflict)
		}
		// Retire first: PostgreSQL checks the one-active-key-per-algorithm
		// index row by row, so the old key must be out of it before the
		// new one goes in.
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET state = 'retired', retired_at = $1
			WHERE alg = $2 AND state = 'active' AND id <> $3`, rowcodec.UnixNano(at), alg, kid); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE signing_keys SET state = 'active', retired_at = NULL WHERE id = $1`, kid)
		if _, ok := uniqueViolation(err); ok {
			return fmt.Errorf("another %s key became active: %w", alg, sigil.ErrConflict)
		}
		return err
	})
	if err != nil {
		return errorf("postgres: promote key %q: %w", kid, err)
	}
	return nil
}

// DeleteKey moves the key kid from signing_keys into key_archive, stamped
// with the current time, in one transaction: Keys stops listing it,
// ArchivedKeys lists it, and its kid stays taken. ErrNotFound if kid is
// not a live key, also when it is already archived. The row is deleted
// first and archived as the delete returned it: the delete locks it, so
// the archive holds the key as it was last committed (after a concurrent
// PromoteKey, say), and of two concurrent deletes one finds nothing.
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	if !storable(kid) {
		return errorf("postgres: delete key %q: %w", kid, sigil.ErrNotFound)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockChanges(ctx, tx); err != nil {
			return err
		}
		var (
			alg, state     string
			public, sealed []byte
			created        int64
			retired        *int64
		)
		err := tx.QueryRow(ctx, `DELETE FROM signing_keys WHERE id = $1 RETURNING alg, state, public, sealed, created_at, retired_at`,
			kid).Scan(&alg, &state, &public, &sealed, &created, &retired)
		if errors.Is(err, pgx.ErrNoRows) {
			return sigil.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO key_archive (`+keyColumns+`, archived_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			kid, alg, state, nonNil(public), nonNil(sealed), created, retired, rowcodec.UnixNano(s.now())); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		return nil
	})
	if err != nil {
		return errorf("postgres: delete key %q: %w", kid, err)
	}
	return nil
}

// lockChanges locks the change counter's row, first in every transaction
// that writes signing keys. Their statement triggers take it anyway, at
// the end of each statement; taken first, it orders key writers before
// they lock any key row, so two of them (CreateKey of an active key and
// PromoteKey, say) cannot deadlock, each holding what the other waits for.
func lockChanges(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT 1 FROM changes WHERE id = 1 FOR UPDATE`)
	return err
}
