package sqlite

import (
	"context"
	"fmt"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// markJTISQL inserts a replay entry, or takes over an existing one only if
// it has expired. Parameters: ?1 key, ?2 expiry, ?3 now, both in unix
// nanoseconds. It is one statement, so the check and the write are atomic
// across connections and processes: SQLite runs it under the write lock.
// It changes one row when the key is new or expired and none when the key
// is live.
const markJTISQL = `INSERT INTO replay (key, expires_at) VALUES (?1, ?2)
	ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
	WHERE replay.expires_at <= ?3`

// MarkJTI records key until exp. It returns ErrReplay when key is recorded
// with an expiry after s.Now(); an entry whose expiry has passed is
// replaced.
func (s *Store) MarkJTI(ctx context.Context, key string, exp time.Time) error {
	defer s.writing()()
	res, err := s.markStmt.ExecContext(ctx, key, rowcodec.UnixNano(exp), rowcodec.UnixNano(s.Now()))
	if err != nil {
		return fmt.Errorf("sqlite: mark jti %q: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: mark jti %q: %w", key, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: mark jti %q: %w", key, sigil.ErrReplay)
	}
	return nil
}

// PurgeReplay deletes entries whose expiry lies before now and returns how
// many it deleted.
func (s *Store) PurgeReplay(ctx context.Context, now time.Time) (int, error) {
	defer s.writing()()
	res, err := s.wconn.ExecContext(ctx, `DELETE FROM replay WHERE expires_at < ?`, rowcodec.UnixNano(now))
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge replay cache: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge replay cache: %w", err)
	}
	return int(n), nil
}
