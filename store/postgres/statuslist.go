package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// statusListColumns are the status_lists columns scanStatusList reads.
const statusListColumns = `id, size, generation, since, holder, usable_until, recycle_after, version`

// scanStatusList reads statusListColumns, then more, from row.
func scanStatusList(row pgx.Row, more ...any) (sigil.StatusList, error) {
	var (
		l                      sigil.StatusList
		since, usable, recycle int64
	)
	dst := append([]any{&l.ID, &l.Size, &l.Generation, &since, &l.Holder, &usable, &recycle, &l.Version}, more...)
	if err := row.Scan(dst...); err != nil {
		return sigil.StatusList{}, err
	}
	l.Since, l.UsableUntil, l.RecycleAfter = rowcodec.FromUnixNano(since), rowcodec.FromUnixNano(usable), rowcodec.FromUnixNano(recycle)
	return l, nil
}

// statusListsAhead selects the recyclable lists of size $1 at $2 that come
// before ($3, $4) in (recycle_after, id) order.
const statusListsAhead = `size = $1 AND recycle_after <= $2 AND (recycle_after, id) < ($3, $4)`

// LeaseStatusList leases a list of l.Size entries, in one transaction: the
// recyclable list (RecycleAfter at or before l.Now) with the oldest
// RecycleAfter among those without entries, or else a new list of
// generation 1. The recyclable lists ahead of the one taken, in
// (RecycleAfter, ID) order, all have entries: their entries are deleted,
// their Holder emptied, their RecycleAfter set to l.Now + l.Quarantine and
// their Version moved. A Size below 1 is an error.
//
// Leases from every node are serialized by a transaction-level advisory
// lock (one per schema), so they happen one after another as under the
// SQLite store's write lock: two leases never take the same generation of
// a list. Leases are rare (one per list and holder for hours), so one
// lock for all sizes costs nothing. The transaction then locks the rows
// of every recyclable list of l.Size before it looks at their entries:
// SetTokenStatus locks its list's row before it writes entries, so the
// entries of those lists cannot change until the lease commits, and a
// revocation that waited on the lock sees the new generation's Since.
func (s *Store) LeaseStatusList(ctx context.Context, l sigil.StatusLease) (sigil.StatusList, error) {
	if l.Size < 1 {
		return sigil.StatusList{}, errorf("postgres: lease status list: size %d, want > 0", l.Size)
	}
	if l.Size > math.MaxInt32 {
		return sigil.StatusList{}, errorf("postgres: lease status list: size %d, want at most %d", l.Size, math.MaxInt32)
	}
	now := rowcodec.UnixNano(l.Now)
	var list sigil.StatusList
	err := s.lockingTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('sigil status lease ' || current_schema(), 0))`); err != nil {
			return fmt.Errorf("lock leases: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT id FROM status_lists WHERE size = $1 AND recycle_after <= $2
			ORDER BY recycle_after, id FOR NO KEY UPDATE`, l.Size, now); err != nil {
			return fmt.Errorf("lock recyclable lists: %w", err)
		}
		// Choose first, then clear the lists ahead of the choice: a list
		// cleared here is skipped even when l.Quarantine is zero. Each
		// statement of a READ COMMITTED transaction reads a snapshot
		// taken after the locks above were granted.
		var id, after int64
		err := tx.QueryRow(ctx, `SELECT id, recycle_after FROM status_lists AS l
			WHERE size = $1 AND recycle_after <= $2
				AND NOT EXISTS (SELECT 1 FROM status_entries WHERE list = l.id)
			ORDER BY recycle_after, id LIMIT 1`, l.Size, now).Scan(&id, &after)
		found := err == nil
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			id, after = math.MaxInt64, math.MaxInt64 // every recyclable list is ahead
		case err != nil:
			return fmt.Errorf("find a list to recycle: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM status_entries
			WHERE list IN (SELECT id FROM status_lists WHERE `+statusListsAhead+`)`,
			l.Size, now, after, id); err != nil {
			return fmt.Errorf("clear entries: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE status_lists
			SET holder = '', recycle_after = $5, version = version + 1
			WHERE `+statusListsAhead,
			l.Size, now, after, id, rowcodec.UnixNano(l.Now.Add(l.Quarantine))); err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
		var row pgx.Row
		if found {
			row = tx.QueryRow(ctx, `UPDATE status_lists
				SET generation = generation + 1, since = $1, holder = $2, usable_until = $3, recycle_after = $4, version = version + 1
				WHERE id = $5 RETURNING `+statusListColumns,
				now, l.Holder, rowcodec.UnixNano(l.UsableUntil), rowcodec.UnixNano(l.RecycleAfter), id)
		} else {
			row = tx.QueryRow(ctx, `INSERT INTO status_lists
				(size, generation, since, holder, usable_until, recycle_after, version)
				VALUES ($1, 1, $2, $3, $4, $5, 1) RETURNING `+statusListColumns,
				l.Size, now, l.Holder, rowcodec.UnixNano(l.UsableUntil), rowcodec.UnixNano(l.RecycleAfter))
		}
		list, err = scanStatusList(row)
		return err
	})
	if err != nil {
		return sigil.StatusList{}, errorf("postgres: lease status list: %w", err)
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
//
// The transaction locks the list's row first (FOR NO KEY UPDATE), so
// calls on one list run one after another, and a call racing a lease of
// the list either finishes before the lease looks at the entries or
// waits for it and then reads the new generation's Since.
func (s *Store) SetTokenStatus(ctx context.Context, id int64, issued time.Time, idx []uint32, status uint8) error {
	if status == sigil.StatusValid {
		return errorf("postgres: set token status on list %d: a status never goes back to VALID", id)
	}
	err := s.lockingTx(ctx, func(tx pgx.Tx) error {
		var size, since int64
		err := tx.QueryRow(ctx, `SELECT size, since FROM status_lists WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&size, &since)
		if errors.Is(err, pgx.ErrNoRows) {
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
		if len(idx) == 0 {
			return nil
		}
		// Every index is below size, an INTEGER: it fits an int32.
		is := make([]int32, len(idx))
		for k, i := range idx {
			is[k] = int32(i)
		}
		// DISTINCT: ON CONFLICT DO UPDATE refuses to touch a row twice
		// in one statement.
		tag, err := tx.Exec(ctx, `INSERT INTO status_entries (list, idx, status)
			SELECT DISTINCT $1::bigint, i, $3::smallint FROM unnest($2::integer[]) AS i
			ON CONFLICT (list, idx) DO UPDATE SET status = excluded.status
			WHERE status_entries.status <> excluded.status`, id, is, int16(status))
		if err != nil {
			return fmt.Errorf("write entries: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE status_lists SET version = version + 1 WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return errorf("postgres: set token status on list %d: %w", id, err)
	}
	return nil
}

// StatusList returns list id and its entries in index order, read by one
// statement, and so from one snapshot, so that the entries match the
// list's Version; ErrNotFound for an unknown list.
func (s *Store) StatusList(ctx context.Context, id int64) (sigil.StatusList, []sigil.StatusEntry, error) {
	var (
		idx    []int32
		status []int16
	)
	list, err := scanStatusList(s.pool.QueryRow(ctx, `SELECT `+statusListColumns+`, e.idx, e.status
		FROM status_lists AS l, LATERAL (
			SELECT array_agg(idx ORDER BY idx) AS idx, array_agg(status ORDER BY idx) AS status
			FROM status_entries WHERE list = l.id) AS e
		WHERE l.id = $1`, id), &idx, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		err = sigil.ErrNotFound
	}
	if err != nil {
		return sigil.StatusList{}, nil, errorf("postgres: get status list %d: %w", id, err)
	}
	if len(idx) != len(status) {
		return sigil.StatusList{}, nil, errorf("postgres: get status list %d: %d indexes for %d statuses", id, len(idx), len(status))
	}
	var entries []sigil.StatusEntry
	if len(idx) > 0 {
		entries = make([]sigil.StatusEntry, len(idx))
		for k := range idx {
			entries[k] = sigil.StatusEntry{Index: uint32(idx[k]), Status: uint8(status[k])}
		}
	}
	return list, entries, nil
}

// StatusListVersion returns list id's Version; ErrNotFound for an
// unknown list.
func (s *Store) StatusListVersion(ctx context.Context, id int64) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM status_lists WHERE id = $1`, id).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		err = sigil.ErrNotFound
	}
	if err != nil {
		return 0, errorf("postgres: get status list %d version: %w", id, err)
	}
	return v, nil
}

// StatusLists returns every list in ID order, without entries.
func (s *Store) StatusLists(ctx context.Context) ([]sigil.StatusList, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+statusListColumns+` FROM status_lists ORDER BY id`)
	if err != nil {
		return nil, errorf("postgres: list status lists: %w", err)
	}
	defer rows.Close()
	var lists []sigil.StatusList
	for rows.Next() {
		l, err := scanStatusList(rows)
		if err != nil {
			return nil, errorf("postgres: list status lists: %w", err)
		}
		lists = append(lists, l)
	}
	if err := rows.Err(); err != nil {
		return nil, errorf("postgres: list status lists: %w", err)
	}
	return lists, nil
}
