package postgres

import (
	"context"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

func (s *Store) AppendAudit(ctx context.Context, mark sigil.JournalMark, build func(head sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
	return errNotImplemented
}
func (s *Store) JournalSeq(ctx context.Context, journal string) (int64, error) {
	return 0, errNotImplemented
}
func (s *Store) AuditEntries(ctx context.Context, after int64, limit int) ([]sigil.AuditEntry, error) {
	return nil, errNotImplemented
}
func (s *Store) QueryAudit(ctx context.Context, q sigil.AuditQuery) ([]sigil.AuditEntry, error) {
	return nil, errNotImplemented
}
func (s *Store) AuditHead(ctx context.Context) (sigil.AuditHead, error) {
	return sigil.AuditHead{}, errNotImplemented
}
func (s *Store) AddCheckpoint(ctx context.Context, c sigil.AuditCheckpoint) error {
	return errNotImplemented
}
func (s *Store) Checkpoints(ctx context.Context) ([]sigil.AuditCheckpoint, error) {
	return nil, errNotImplemented
}

func (s *Store) LeaseStatusList(ctx context.Context, l sigil.StatusLease) (sigil.StatusList, error) {
	return sigil.StatusList{}, errNotImplemented
}
func (s *Store) SetTokenStatus(ctx context.Context, id int64, issued time.Time, idx []uint32, status uint8) error {
	return errNotImplemented
}
func (s *Store) StatusList(ctx context.Context, id int64) (sigil.StatusList, []sigil.StatusEntry, error) {
	return sigil.StatusList{}, nil, errNotImplemented
}
func (s *Store) StatusListVersion(ctx context.Context, id int64) (int64, error) {
	return 0, errNotImplemented
}
func (s *Store) StatusLists(ctx context.Context) ([]sigil.StatusList, error) {
	return nil, errNotImplemented
}

var _ sigil.Store = (*Store)(nil)
