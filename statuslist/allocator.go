package statuslist

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
)

// Allocator defaults.
const (
	// DefaultSize is the entries in a list: 2^20, 128 KiB of bits that
	// compress to a few hundred bytes while few are revoked.
	DefaultSize = 1 << 20
	// DefaultLease is how long a server allocates from one list before
	// it takes another.
	DefaultLease = 10 * time.Minute
	// fillLimit is the fraction of a list allocated before the allocator
	// moves to another, keeping random picks cheap (at most two tries on
	// average) and the index of a token unrelated to how many came first.
	fillLimit = 2
)

// Entry is a token's place in a status list.
type Entry struct {
	List  uint32
	Index uint32
	// URI is the list's URI: the status_list.uri claim.
	URI string
}

// Allocator hands out status list entries to new tokens. It leases a
// list from the store and picks unused indexes in it at random, in
// memory; one store call per lease, none per token. Set the fields before
// the first Allocate; it is safe for concurrent use afterwards.
type Allocator struct {
	// Store holds the lists.
	Store sigil.StatusListStore
	// Holder names this server in leases.
	Holder string
	// BaseURI is the lists' URI prefix: a list's URI is BaseURI followed
	// by its ID.
	BaseURI string
	// Size is the entries of a new list; zero means DefaultSize.
	Size int
	// Lease is how long to allocate from one list; zero means
	// DefaultLease.
	Lease time.Duration
	// Retention is how long after its lease a list's tokens may still be
	// accepted: the longest token lifetime plus the verifiers' leeway.
	// The list is not recycled before.
	Retention time.Duration
	// Quarantine is how long a relying party may keep using a published
	// copy of a list (see sigil.StatusLease).
	Quarantine time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu  sync.Mutex
	rng *rand.Rand
	cur *lease
}

// lease is the list being allocated from.
type lease struct {
	list  sigil.StatusList
	uri   string
	used  []uint64 // one bit per entry
	count int
}

// Allocate returns an unused entry for a token issued now. It leases a
// new list when the current one is past its lease or has reached the fill
// limit.
func (a *Allocator) Allocate(ctx context.Context) (Entry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	// A clock that stepped back behind the lease's start would give tokens
	// an issue time before Since, which revocation takes for an earlier
	// generation's: take a new lease from the clock as it is.
	if a.cur == nil || !now.Before(a.cur.list.UsableUntil) || a.cur.count >= a.cur.list.Size/fillLimit ||
		now.Truncate(time.Millisecond).Before(a.cur.list.Since) {
		if err := a.renew(ctx, now); err != nil {
			return Entry{}, err
		}
	}
	l := a.cur
	for {
		i := a.rng.IntN(l.list.Size)
		if l.used[i/64]&(1<<(i%64)) == 0 {
			l.used[i/64] |= 1 << (i % 64)
			l.count++
			return Entry{List: uint32(l.list.ID), Index: uint32(i), URI: l.uri}, nil
		}
	}
}

// renew leases a new list. Called with mu held.
func (a *Allocator) renew(ctx context.Context, now time.Time) error {
	if a.rng == nil {
		var seed [32]byte
		crand.Read(seed[:])
		a.rng = rand.New(rand.NewChaCha8(seed))
	}
	size := a.Size
	if size == 0 {
		size = DefaultSize
	}
	dur := a.Lease
	if dur == 0 {
		dur = DefaultLease
	}
	if a.Retention <= 0 {
		return errors.New("statuslist: allocator has no retention")
	}
	// A token issued under this lease must not predate the generation's
	// Since, or a revocation would take it for an earlier generation's:
	// Since is truncated to the millisecond, as jti times are
	// (token.StatusOfJTI), and callers read their clock for iat after
	// Allocate. (Since needs no guard against a clock stepping back: a
	// list is only leased again after RecycleAfter, long after every
	// token of its last generation.)
	now = now.Truncate(time.Millisecond)
	until := now.Add(dur)
	l, err := a.Store.LeaseStatusList(ctx, sigil.StatusLease{
		Holder: a.Holder, Size: size, Now: now, UsableUntil: until,
		RecycleAfter: until.Add(a.Retention), Quarantine: a.Quarantine,
	})
	if err != nil {
		return fmt.Errorf("statuslist: lease a list: %w", err)
	}
	if l.ID <= 0 || l.ID > 1<<32-1 || l.Size != size {
		return fmt.Errorf("statuslist: store leased list %d of %d entries, want an id below 2^32 and %d entries", l.ID, l.Size, size)
	}
	a.cur = &lease{list: l, uri: a.BaseURI + strconv.FormatInt(l.ID, 10), used: make([]uint64, (size+63)/64)}
	return nil
}

func (a *Allocator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
