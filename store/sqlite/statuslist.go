package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// statusListColumns are the status_lists columns scanStatusList reads.
const statusListColumns = `id, size, generation, since, holder, usable_until, recycle_after, version`

func scanStatusList(row interface{ Scan(...any) error }) (sigil.StatusList, error) {
	var (
		l                      sigil.StatusList
		since, usable, recycle int64
	)
	if err := row.Scan(&l.ID, &l.Size, &l.Generation, &since, &l.Holder, &usable, &recycle, &l.Version); err != nil {
		return sigil.StatusList{}, err
	}
	l.Since, l.UsableUntil, l.RecycleAfter = rowcodec.FromUnixNano(since), rowcodec.FromUnixNano(usable), rowcodec.FromUnixNano(recycle)
	return l, nil
}

// statusListsAhead selects the recyclable lists of size ?1 at ?2 that come
// before (?3, ?4) in (recycle_after, id) order.
const statusListsAhead = `size = ?1 AND recycle_after <= ?2 AND (recycle_after, id) < (?3, ?4)`

// LeaseStatusList leases a list of l.Size entries, in one transaction: the
// recyclable list (RecycleAfter at or before l.Now) with the oldest
// RecycleAfter among those without entries, or else a new list of
// generation 1. The recyclable lists ahead of the one taken, in
// (RecycleAfter, ID) order, all have entries: their entries are deleted,
// their Holder emptied, their RecycleAfter set to l.Now + l.Quarantine and
// their Version moved. A Size below 1 is an error.
func (s *Store) LeaseStatusList(ctx context.Context, l sigil.StatusLease) (sigil.StatusList, error) {
	if l.Size < 1 {
		return sigil.StatusList{}, fmt.Errorf("sqlite: lease status list: size %d, want > 0", l.Size)
	}
	now := rowcodec.UnixNano(l.Now)
	defer s.writing()()
	var list sigil.StatusList
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		// Choose first, then clear the lists ahead of the choice: a list
		// cleared here is skipped even when l.Quarantine is zero.
		var id, after int64
		err := tx.QueryRowContext(ctx, `SELECT id, recycle_after FROM status_lists AS l
			WHERE size = ? AND recycle_after <= ?
				AND NOT EXISTS (SELECT 1 FROM status_entries WHERE list = l.id)
			ORDER BY recycle_after, id LIMIT 1`, l.Size, now).Scan(&id, &after)
		found := err == nil
		switch {
		case errors.Is(err, sql.ErrNoRows):
			id, after = math.MaxInt64, math.MaxInt64 // every recyclable list is ahead
		case err != nil:
			return fmt.Errorf("find a list to recycle: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM status_entries
			WHERE list IN (SELECT id FROM status_lists WHERE `+statusListsAhead+`)`,
			l.Size, now, after, id); err != nil {
			return fmt.Errorf("clear entries: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE status_lists
			SET holder = '', recycle_after = ?5, version = version + 1
			WHERE `+statusListsAhead,
			l.Size, now, after, id, rowcodec.UnixNano(l.Now.Add(l.Quarantine))); err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
		var row *sql.Row
		if found {
			row = tx.QueryRowContext(ctx, `UPDATE status_lists
				SET generation = generation + 1, since = ?, holder = ?, usable_until = ?, recycle_after = ?, version = version + 1
				WHERE id = ? RETURNING `+statusListColumns,
				now, l.Holder, rowcodec.UnixNano(l.UsableUntil), rowcodec.UnixNano(l.RecycleAfter), id)
		} else {
			row = tx.QueryRowContext(ctx, `INSERT INTO status_lists
				(size, generation, since, holder, usable_until, recycle_after, version)
				VALUES (?, 1, ?, ?, ?, ?, 1) RETURNING `+statusListColumns,
				l.Size, now, l.Holder, rowcodec.UnixNano(l.UsableUntil), rowcodec.UnixNano(l.RecycleAfter))
		}
		list, err = scanStatusList(row)
		return err
	})
	if err != nil {
		return sigil.StatusList{}, fmt.Errorf("sqlite: lease status list: %w", err)
	}
	return list, nil
}

// SetTokenStatus sets entries idx of list id to status in one
// transaction, checking, in this order, that status is not VALID, that
// the list exists (ErrNotFound), that every index lies inside it, and
// that its current generation began at or before issued (if not, it
// changes nothing and returns nil). An entry already holding another
// non-VALID status takes the new one. The list's Version moves once if
// any entry changed.
func (s *Store) SetTokenStatus(ctx context.Context, id int64, issued time.Time, idx []uint32, status uint8) error {
	if status == sigil.StatusValid {
		return fmt.Errorf("sqlite: set token status on list %d: a status never goes back to VALID", id)
	}
	defer s.writing()()
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		var size, since int64
		err := tx.QueryRowContext(ctx, `SELECT size, since FROM status_lists WHERE id = ?`, id).Scan(&size, &since)
		if errors.Is(err, sql.ErrNoRows) {
			return sigil.ErrNotFound
		}
		if err != nil {
			return err
		}
		for _, i := range idx {
			if int64(i) >= size {
				return fmt.Errorf("index %d outside the list's %d entries", i, size)
			}
		}
		if rowcodec.UnixNano(issued) < since {
			return nil // the tokens belonged to an earlier generation
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO status_entries (list, idx, status) VALUES (?, ?, ?)
			ON CONFLICT (list, idx) DO UPDATE SET status = excluded.status
			WHERE status_entries.status <> excluded.status`)
		if err != nil {
			return err
		}
		defer st.Close()
		changed := false
		for _, i := range idx {
			res, err := st.ExecContext(ctx, id, i, status)
			if err != nil {
				return fmt.Errorf("index %d: %w", i, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			changed = changed || n > 0
		}
		if !changed {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE status_lists SET version = version + 1 WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set token status on list %d: %w", id, err)
	}
	return nil
}

// StatusList returns list id and its entries in index order, read in one
// transaction so that the entries match the list's Version; ErrNotFound
// for an unknown list.
func (s *Store) StatusList(ctx context.Context, id int64) (sigil.StatusList, []sigil.StatusEntry, error) {
	list, entries, err := s.statusList(ctx, id)
	if err != nil {
		return sigil.StatusList{}, nil, fmt.Errorf("sqlite: get status list %d: %w", id, err)
	}
	return list, entries, nil
}

func (s *Store) statusList(ctx context.Context, id int64) (sigil.StatusList, []sigil.StatusEntry, error) {
	// A read-only transaction begins DEFERRED despite _txlock: it takes
	// no write lock, and in WAL mode both queries read one snapshot.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return sigil.StatusList{}, nil, err
	}
	defer tx.Rollback()
	list, err := scanStatusList(tx.QueryRowContext(ctx, `SELECT `+statusListColumns+` FROM status_lists WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sigil.StatusList{}, nil, sigil.ErrNotFound
	}
	if err != nil {
		return sigil.StatusList{}, nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT idx, status FROM status_entries WHERE list = ? ORDER BY idx`, id)
	if err != nil {
		return sigil.StatusList{}, nil, err
	}
	defer rows.Close()
	var entries []sigil.StatusEntry
	for rows.Next() {
		var e sigil.StatusEntry
		if err := rows.Scan(&e.Index, &e.Status); err != nil {
			return sigil.StatusList{}, nil, err
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return sigil.StatusList{}, nil, err
	}
	return list, entries, nil
}

// StatusListVersion returns list id's Version; ErrNotFound for an
// unknown list.
func (s *Store) StatusListVersion(ctx context.Context, id int64) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM status_lists WHERE id = ?`, id).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = sigil.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: get status list %d version: %w", id, err)
	}
	return v, nil
}

// StatusLists returns every list in ID order, without entries.
func (s *Store) StatusLists(ctx context.Context) ([]sigil.StatusList, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+statusListColumns+` FROM status_lists ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list status lists: %w", err)
	}
	defer rows.Close()
	var lists []sigil.StatusList
	for rows.Next() {
		l, err := scanStatusList(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list status lists: %w", err)
		}
		lists = append(lists, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list status lists: %w", err)
	}
	return lists, nil
}
