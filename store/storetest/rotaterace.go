package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

// RotateRevokeTwoStores rotates families along their chains on store a
// while store b (another node on the same database) revokes them, by
// family or by user: every access token a successful rotation recorded
// must be among the JTIs the revocation returned. Stores run it with two
// handles on one database.
func RotateRevokeTwoStores(t *testing.T, a, b sigil.Store, byUser bool) {
	ctx := t.Context()
	const families = 16
	var mu sync.Mutex
	var wg sync.WaitGroup
	rotatedJTIs := map[string][]string{}
	start := make(chan struct{})
	for i := range families {
		id := fmt.Sprintf("race-%v-%02d", byUser, i)
		f := fullFamily(id)
		f.UserID = "racer"
		createFamily(t, a, f)
		wg.Go(func() {
			<-start
			cur := *f
			for g := 0; ; g++ {
				h := fmt.Sprintf("h-%s-%d", id, g+1)
				r := next(&cur, h)
				err := a.RotateRefresh(ctx, r)
				if err != nil {
					if !errors.Is(err, sigil.ErrReplay) {
						t.Errorf("rotate %s: %v", id, err)
					}
					return
				}
				mu.Lock()
				rotatedJTIs[id] = append(rotatedJTIs[id], r.Access.JTI)
				mu.Unlock()
				cur = *rotated(&cur, r)
			}
		})
	}
	close(start)
	time.Sleep(30 * time.Millisecond)
	revoked := map[string]bool{}
	if byUser {
		jtis, err := b.RevokeRefreshTokens(ctx, "racer", "")
		must(t, "RevokeRefreshTokens", err)
		for _, j := range jtis {
			revoked[j] = true
		}
	} else {
		for i := range families {
			jtis, err := b.RevokeRefreshFamily(ctx, fmt.Sprintf("race-%v-%02d", byUser, i))
			must(t, "RevokeRefreshFamily", err)
			for _, j := range jtis {
				revoked[j] = true
			}
		}
	}
	wg.Wait()
	n := 0
	for id, js := range rotatedJTIs {
		for _, j := range js {
			n++
			if !revoked[j] {
				t.Errorf("%s: access token %s recorded by a successful rotation escaped the revocation", id, j)
			}
		}
	}
	t.Logf("%d rotations, %d JTIs revoked", n, len(revoked))
}
