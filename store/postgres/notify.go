package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// WatchChanges listens on its own connection (not one of the pool's) for
// the notifications migration 0002's triggers send with every change to
// clients or signing keys in this schema, and calls changed for each.
func (s *Store) WatchChanges(ctx context.Context, changed func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return errorf("postgres: listen: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return errorf("postgres: listen: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN sigil_changes"); err != nil {
		return errorf("postgres: listen: %w", err)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return errorf("postgres: listen: %w", err)
		}
		if n.Payload == schema {
			changed()
		}
	}
}
