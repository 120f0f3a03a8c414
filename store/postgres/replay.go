package postgres

import (
	"context"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// markJTISQL inserts a replay entry, or takes over an existing one only if
// it has expired. Parameters: $1 key (BYTEA, so that any Go string is
// stored exactly, NUL and invalid UTF-8 included, as in SQLite), $2
// expiry, $3 now, both in unix nanoseconds. It is one statement, so the
// check and the write are atomic across connections and nodes: of
// concurrent calls, one inserts (or updates) and locks the row, and the
// others wait for it, then see its new expiry in the WHERE clause and
// change nothing. It changes one row when the key is new or expired and
// none when the key is live.
const markJTISQL = `INSERT INTO replay (key, expires_at) VALUES ($1, $2)
	ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
	WHERE replay.expires_at <= $3`

// MarkJTI records key until exp. It returns ErrReplay when key is recorded
// with an expiry after s.Now(); an entry whose expiry has passed is
// replaced.
func (s *Store) MarkJTI(ctx context.Context, key string, exp time.Time) error {
	tag, err := s.pool.Exec(ctx, markJTISQL, []byte(key), rowcodec.UnixNano(exp), rowcodec.UnixNano(s.Now()))
	if err != nil {
		return errorf("postgres: mark jti %q: %w", key, err)
	}
	if tag.RowsAffected() == 0 {
		return errorf("postgres: mark jti %q: %w", key, sigil.ErrReplay)
	}
	return nil
}

// PurgeReplay deletes entries whose expiry lies before now and returns how
// many it deleted.
func (s *Store) PurgeReplay(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM replay WHERE expires_at < $1`, rowcodec.UnixNano(now))
	if err != nil {
		return 0, errorf("postgres: purge replay cache: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
