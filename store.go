package sigil

import (
	"context"
	"errors"
)

// Sentinel errors returned by stores; check them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrReplay   = errors.New("already seen")
	// ErrUnavailable is wrapped by errors from a store that cannot be
	// reached (a database down or restarting): callers answer 503 and
	// the client retries.
	ErrUnavailable = errors.New("store unavailable")
)

// Store is the whole persistence layer: one value per aggregate interface.
type Store interface {
	ClientStore
	UserStore
	AuthzStore
	DeviceStore
	KeyStore
	RevocationStore
	ReplayCache
	AuditStore
	StatusListStore
	// Version returns a number that changes whenever any process commits a
	// change to clients, users or signing keys. Revocation, replay-cache and audit
	// writes do not move it (nothing caches them, and any client can cause
	// them), nor do status-list writes (each list has a Version of its
	// own). Values from any Store on the same database are comparable.
	// Caches poll it to learn when to reload.
	Version(ctx context.Context) (int64, error)
	// Close releases the store's resources.
	Close() error
}

// ChangeNotifier is implemented by stores that announce changes as they
// commit (PostgreSQL's LISTEN/NOTIFY), so that caches need not wait for
// their next poll of Store.Version.
type ChangeNotifier interface {
	// WatchChanges calls changed after each committed change to clients,
	// users or signing keys, by any process on the same database, until ctx
	// ends or the store can no longer listen; it returns why it stopped.
	// Polling stays the fallback: a notification can be lost while the
	// listener reconnects.
	WatchChanges(ctx context.Context, changed func()) error
}
