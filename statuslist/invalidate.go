package statuslist

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/token"
)

// Invalidate sets the status of the tokens with identifiers jtis to
// INVALID, reading each token's list entry from its jti
// (token.NewStatusJTI), one store write per list. Identifiers without a
// position, positions in unknown lists or past a list's end (no token of
// ours has them), and positions in lists that have since been recycled
// (their tokens expired) are skipped. It returns how many identifiers it
// passed on to the store: live entries, now INVALID (a repeated
// identifier counts each time).
func Invalidate(ctx context.Context, st sigil.StatusListStore, jtis ...string) (int, error) {
	lists, err := st.StatusLists(ctx)
	if err != nil {
		return 0, fmt.Errorf("statuslist: invalidate: %w", err)
	}
	known := make(map[uint32]sigil.StatusList, len(lists))
	for _, l := range lists {
		known[uint32(l.ID)] = l
	}
	type group struct {
		issued time.Time // the earliest issue time in the group
		idx    []uint32
	}
	groups := map[uint32]*group{}
	n := 0
	for _, jti := range jtis {
		issued, list, idx, ok := token.StatusOfJTI(jti)
		if !ok {
			continue
		}
		// An entry allocated before its list's current generation belongs
		// to an expired token; setting it now would revoke whichever live
		// token holds that index today.
		l, ok := known[list]
		if !ok || issued.Before(l.Since) || int(idx) >= l.Size {
			continue
		}
		g := groups[list]
		if g == nil {
			g = &group{issued: issued}
			groups[list] = g
		}
		g.idx = append(g.idx, idx)
		n++
		if issued.Before(g.issued) {
			g.issued = issued
		}
	}
	for _, list := range slices.Sorted(maps.Keys(groups)) {
		g := groups[list]
		// Should the list be recycled after StatusLists read it, its new
		// generation begins after every issue time here, and the store
		// changes nothing.
		err := st.SetTokenStatus(ctx, int64(list), g.issued, g.idx, sigil.StatusInvalid)
		if err != nil && !errors.Is(err, sigil.ErrNotFound) {
			return n, fmt.Errorf("statuslist: invalidate entries of list %d: %w", list, err)
		}
	}
	return n, nil
}
