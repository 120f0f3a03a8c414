package sqlite

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

// TestAuthzTwoStores: two Stores on one file (two processes) race to
// redeem one code and to rotate one refresh family from one token. Their write mutexes are
// separate, so only SQLite's lock makes exactly one of them win each.
func TestAuthzTwoStores(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	a, b := openClosed(t, dir), openClosed(t, dir)
	live := time.Now().Add(time.Hour)
	for i := range 10 {
		code, token := fmt.Sprintf("code-%d", i), fmt.Sprintf("rt-%d", i)
		if err := a.CreateCode(ctx, &sigil.AuthCode{Hash: code, ExpiresAt: live}); err != nil {
			t.Fatal(err)
		}
		if err := a.CreateRefreshFamily(ctx, &sigil.RefreshFamily{ID: token, ClientID: "c", TokenHash: token,
			IdleExpiresAt: live, ExpiresAt: live}, sigil.IssuedToken{}); err != nil {
			t.Fatal(err)
		}
		var redeemed, rotated atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for j := range 16 {
			s := []*Store{a, b}[j%2]
			wg.Go(func() {
				<-start
				_, err := s.RedeemCode(ctx, code, "", sigil.Redemption{AccessJTI: fmt.Sprint(j)})
				switch {
				case err == nil:
					redeemed.Add(1)
				case !errors.Is(err, sigil.ErrReplay):
					t.Errorf("RedeemCode(%s): %v", code, err)
				}
			})
			wg.Go(func() {
				<-start
				err := s.RotateRefresh(ctx, sigil.RefreshRotation{FamilyID: token, TokenHash: token,
					NextHash: fmt.Sprintf("%s-next-%d", token, j), IdleExpiresAt: live})
				switch {
				case err == nil:
					rotated.Add(1)
				case !errors.Is(err, sigil.ErrReplay):
					t.Errorf("RotateRefresh(%s): %v", token, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if redeemed.Load() != 1 || rotated.Load() != 1 {
			t.Errorf("race %d across two stores: %d redemptions and %d rotations won, want 1 each", i, redeemed.Load(), rotated.Load())
		}
	}
}

// TestRevokeCreateTwoStores: a family stored through one Store races its
// revocation through another on the same file. Only SQLite's write lock
// orders them; the family is refused or revoked, never left live.
func TestRevokeCreateTwoStores(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	a, b := openClosed(t, dir), openClosed(t, dir)
	live := time.Now().Add(time.Hour)
	const n = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	created := make([]error, n)
	revoked := make([][]string, n)
	revokeErrs := make([]error, n)
	for i := range n {
		hash, family := fmt.Sprintf("rt-%d", i), fmt.Sprintf("fam-%d", i)
		creator, revoker := a, b
		if i%2 == 1 {
			creator, revoker = b, a
		}
		wg.Go(func() {
			<-start
			created[i] = creator.CreateRefreshFamily(ctx, &sigil.RefreshFamily{ID: family, ClientID: "c",
				TokenHash: hash, IdleExpiresAt: live, ExpiresAt: live}, sigil.IssuedToken{JTI: "jti-" + hash, ExpiresAt: live})
		})
		wg.Go(func() {
			<-start
			revoked[i], revokeErrs[i] = revoker.RevokeRefreshFamily(ctx, family)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		family := fmt.Sprintf("fam-%d", i)
		if revokeErrs[i] != nil {
			t.Fatalf("RevokeRefreshFamily: %v", revokeErrs[i])
		}
		switch err := created[i]; {
		case err == nil:
			if f, err := a.RefreshFamily(ctx, family); err != nil || !f.Revoked || len(revoked[i]) != 1 {
				t.Errorf("%s stored before its revocation: %+v, %v, revocation returned %q; want it revoked and its JTI returned", family, f, err, revoked[i])
			}
		case errors.Is(err, sigil.ErrReplay):
			if _, err := a.RefreshFamily(ctx, family); !errors.Is(err, sigil.ErrNotFound) {
				t.Errorf("%s refused but readable: %v", family, err)
			}
		default:
			t.Errorf("CreateRefreshFamily(%s): %v", family, err)
		}
	}
}

// TestAuthzExpiryBoundaries: a record is live until exactly its expiry,
// by the store's clock; a redeemed code stays a replay after it.
func TestAuthzExpiryBoundaries(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, t.TempDir())
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Now = func() time.Time { return now }
	exp := now.Add(time.Minute)

	if err := s.CreateSession(ctx, &sigil.Session{ID: "s", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	for _, hash := range []string{"redeemed", "unredeemed"} {
		if err := s.CreateCode(ctx, &sigil.AuthCode{Hash: hash, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRefreshFamily(ctx, &sigil.RefreshFamily{ID: "f", ClientID: "c", TokenHash: "rt",
		IdleExpiresAt: exp, ExpiresAt: exp.Add(time.Hour)}, sigil.IssuedToken{}); err != nil {
		t.Fatal(err)
	}
	if err := s.PushRequest(ctx, &sigil.PushedRequest{Hash: "p", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}

	now = exp.Add(-time.Nanosecond)
	if _, err := s.Session(ctx, "s"); err != nil {
		t.Errorf("Session just before its expiry: %v", err)
	}
	c, err := s.RedeemCode(ctx, "redeemed", "", sigil.Redemption{AccessJTI: "j"})
	if err != nil {
		t.Fatalf("RedeemCode just before its expiry: %v", err)
	}
	if !c.Redemption.At.Equal(now.Truncate(time.Microsecond)) {
		t.Errorf("zero Redemption.At became %v, want the store's now %v", c.Redemption.At, now)
	}

	now = exp
	if _, err := s.Session(ctx, "s"); !errors.Is(err, sigil.ErrNotFound) {
		t.Errorf("Session at its expiry: %v, want ErrNotFound", err)
	}
	if _, err := s.RedeemCode(ctx, "unredeemed", "", sigil.Redemption{}); !errors.Is(err, sigil.ErrNotFound) {
		t.Errorf("RedeemCode at its expiry: %v, want ErrNotFound", err)
	}
	if c, err := s.RedeemCode(ctx, "redeemed", "", sigil.Redemption{AccessJTI: "k"}); !errors.Is(err, sigil.ErrReplay) || c.Redemption.AccessJTI != "j" {
		t.Errorf("RedeemCode of a redeemed code at its expiry: %+v, %v; want the first redemption and ErrReplay", c, err)
	}
	if _, err := s.TakePushedRequest(ctx, "p", ""); !errors.Is(err, sigil.ErrNotFound) {
		t.Errorf("TakePushedRequest at its expiry: %v, want ErrNotFound", err)
	}
	if err := s.RotateRefresh(ctx, sigil.RefreshRotation{FamilyID: "f", TokenHash: "rt", NextHash: "rt2"}); !errors.Is(err, sigil.ErrReplay) {
		t.Errorf("RotateRefresh at its idle expiry: %v, want ErrReplay", err)
	}
	if _, err := s.RefreshFamily(ctx, "f"); err != nil {
		t.Errorf("RefreshFamily at its token's idle expiry: %v", err)
	}
	now = exp.Add(time.Hour)
	if _, err := s.RefreshFamily(ctx, "f"); !errors.Is(err, sigil.ErrNotFound) {
		t.Errorf("RefreshFamily at its expiry: %v, want ErrNotFound", err)
	}
}
