package postgres

import (
	"context"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

func (s *Store) CreateClient(ctx context.Context, c *sigil.Client) error { return errNotImplemented }
func (s *Store) Client(ctx context.Context, id string) (*sigil.Client, error) {
	return nil, errNotImplemented
}
func (s *Store) Clients(ctx context.Context) ([]*sigil.Client, error)    { return nil, errNotImplemented }
func (s *Store) UpdateClient(ctx context.Context, c *sigil.Client) error { return errNotImplemented }
func (s *Store) DeleteClient(ctx context.Context, id string) error       { return errNotImplemented }

func (s *Store) CreateKey(ctx context.Context, k *sigil.SigningKey) error { return errNotImplemented }
func (s *Store) Keys(ctx context.Context) ([]*sigil.SigningKey, error)    { return nil, errNotImplemented }
func (s *Store) ArchivedKeys(ctx context.Context) ([]*sigil.SigningKey, error) {
	return nil, errNotImplemented
}
func (s *Store) PromoteKey(ctx context.Context, kid string, at time.Time) error {
	return errNotImplemented
}
func (s *Store) DeleteKey(ctx context.Context, kid string) error { return errNotImplemented }

func (s *Store) Revoke(ctx context.Context, r sigil.Revocation) error { return errNotImplemented }
func (s *Store) Revoked(ctx context.Context, t sigil.TokenRef) (bool, error) {
	return false, errNotImplemented
}
func (s *Store) PurgeRevocations(ctx context.Context, now time.Time) (int, error) {
	return 0, errNotImplemented
}

func (s *Store) MarkJTI(ctx context.Context, key string, exp time.Time) error {
	return errNotImplemented
}
func (s *Store) PurgeReplay(ctx context.Context, now time.Time) (int, error) {
	return 0, errNotImplemented
}
