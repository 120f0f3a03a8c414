package sigil

import (
	"context"
	"time"
)

// Token statuses (draft-ietf-oauth-status-list §7.1). Sigil's lists hold
// one bit per token, so only these two occur.
const (
	StatusValid   uint8 = 0
	StatusInvalid uint8 = 1
)

// StatusList is a token status list (draft-ietf-oauth-status-list) as
// stored: its entries live apart, as StatusEntry rows, so that a list of a
// million tokens costs one row per revoked token.
//
// A list is allocated from by one holder (a server) at a time, under a
// lease: the holder picks indexes at random in memory until UsableUntil,
// and every token it issues from the list expires before RecycleAfter.
// After that the list may be leased again: its generation moves on and its
// entries start from VALID.
type StatusList struct {
	// ID is the list's number: the last segment of its URI.
	ID int64
	// Size is the number of entries (indexes 0 to Size-1).
	Size int
	// Generation counts the leases of this list, from 1.
	Generation int64
	// Since is when the current generation's lease began. A token issued
	// before it belongs to an earlier generation and has expired.
	Since time.Time
	// Holder names the server allocating from the list.
	Holder string
	// UsableUntil is when the holder must stop allocating from the list.
	UsableUntil time.Time
	// RecycleAfter is when the list may be leased again.
	RecycleAfter time.Time
	// Version moves whenever an entry changes or the list is leased, so
	// that a published list can be cached until it moves.
	Version int64
}

// StatusEntry is one non-VALID entry of a status list.
type StatusEntry struct {
	Index  uint32
	Status uint8
}

// StatusLease asks StatusListStore.LeaseStatusList for a list.
type StatusLease struct {
	// Holder names the server that will allocate from the list.
	Holder string
	// Size is the number of entries a new list gets; a recycled list is
	// only taken if it has this size.
	Size int
	// Now is the lease time: the generation's Since.
	Now time.Time
	// UsableUntil and RecycleAfter are stored on the list.
	UsableUntil  time.Time
	RecycleAfter time.Time
	// Quarantine is how long a recycled list that held non-VALID entries
	// waits, once they are cleared, before it is leased again: relying
	// parties may still hold a copy showing the old entries for as long
	// as a published list stays usable.
	Quarantine time.Duration
}

// StatusListStore persists token status lists.
type StatusListStore interface {
	// LeaseStatusList gives the caller a list to allocate from, as one
	// atomic step: two callers never hold the same generation of a list.
	// It takes a list of l.Size entries whose RecycleAfter is at or before
	// l.Now and that has no non-VALID entries, moving its generation on;
	// a recycled list that still has entries has them cleared and its
	// RecycleAfter moved to l.Now + l.Quarantine instead, and is skipped.
	// Without a list to recycle it creates one. The returned list carries
	// the lease's Holder, Since (= l.Now), UsableUntil and RecycleAfter.
	LeaseStatusList(ctx context.Context, l StatusLease) (StatusList, error)
	// SetTokenStatus sets entries of list id to status, for tokens issued
	// at issued: if the list's current generation began after issued, the
	// tokens belonged to an earlier generation and have expired, and
	// nothing changes. Indexes outside the list are an error; a status
	// never goes back to VALID (StatusValid is an error). The version
	// moves only when an entry changes. It returns ErrNotFound for an
	// unknown list.
	SetTokenStatus(ctx context.Context, id int64, issued time.Time, idx []uint32, status uint8) error
	// StatusList returns list id and its non-VALID entries in index order,
	// read together; ErrNotFound for an unknown list.
	StatusList(ctx context.Context, id int64) (StatusList, []StatusEntry, error)
	// StatusListVersion returns list id's Version: a cheap check of
	// whether a published copy is still current.
	StatusListVersion(ctx context.Context, id int64) (int64, error)
	// StatusLists returns every list in ID order, without entries.
	StatusLists(ctx context.Context) ([]StatusList, error)
}
