package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

func revoked(t *testing.T, s sigil.Store, ref sigil.TokenRef) bool {
	t.Helper()
	ok, err := s.Revoked(t.Context(), ref)
	must(t, fmt.Sprintf("Revoked(%+v)", ref), err)
	return ok
}

func wantRevoked(t *testing.T, s sigil.Store, what string, ref sigil.TokenRef, want bool) {
	t.Helper()
	if got := revoked(t, s, ref); got != want {
		t.Errorf("%s: Revoked(%+v) = %v, want %v", what, ref, got, want)
	}
}

func revoke(t *testing.T, s sigil.Store, kind sigil.RevocationKind, value string, cutoff, exp time.Time) {
	t.Helper()
	must(t, fmt.Sprintf("Revoke(%s %q)", kind, value),
		s.Revoke(t.Context(), sigil.Revocation{Kind: kind, Value: value, Cutoff: cutoff, ExpiresAt: exp}))
}

// ref returns a token reference whose field for kind is value; the other
// fields hold values nothing revokes.
func ref(kind sigil.RevocationKind, value string, iat time.Time) sigil.TokenRef {
	r := sigil.TokenRef{JTI: "jti-unrevoked", ClientID: "client-unrevoked", Subject: "subject-unrevoked", IssuedAt: iat}
	switch kind {
	case sigil.RevokeJTI:
		r.JTI = value
	case sigil.RevokeClient:
		r.ClientID = value
	case sigil.RevokeSubject:
		r.Subject = value
	}
	return r
}

func testRevokeJTI(t *testing.T, s sigil.Store) {
	revoke(t, s, sigil.RevokeJTI, "j1", base, base.Add(time.Hour))
	// A jti names one token: its iat does not matter.
	wantRevoked(t, s, "jti, iat before", ref(sigil.RevokeJTI, "j1", base.Add(-time.Hour)), true)
	wantRevoked(t, s, "jti, iat after", ref(sigil.RevokeJTI, "j1", base.Add(time.Hour)), true)
	wantRevoked(t, s, "other jti", ref(sigil.RevokeJTI, "j2", base.Add(-time.Hour)), false)
	wantRevoked(t, s, "jti differing in case", ref(sigil.RevokeJTI, "J1", base.Add(-time.Hour)), false)
	wantRevoked(t, s, "jti prefix", ref(sigil.RevokeJTI, "j", base.Add(-time.Hour)), false)
}

// testRevokeCutoff checks the cutoff of a client or subject revocation:
// tokens issued at or before it, in whole seconds, are revoked.
func testRevokeCutoff(kind sigil.RevocationKind) func(*testing.T, sigil.Store) {
	return func(t *testing.T, s sigil.Store) {
		// base is hh:mm:09.5; the cutoff second is hh:mm:09.
		revoke(t, s, kind, "v1", base, base.Add(time.Hour))
		sec := base.Truncate(time.Second)
		for _, tt := range []struct {
			name  string
			value string
			iat   time.Time
			want  bool
		}{
			{"issued an hour before", "v1", base.Add(-time.Hour), true},
			{"issued a second before", "v1", sec.Add(-time.Second), true},
			{"issued at the start of the cutoff second", "v1", sec, true},
			{"issued at the cutoff", "v1", base, true},
			{"issued later in the cutoff second", "v1", base.Add(400 * time.Millisecond), true},
			{"issued the next second", "v1", sec.Add(time.Second), false},
			{"issued an hour after", "v1", base.Add(time.Hour), false},
			{"other value", "v2", base.Add(-time.Hour), false},
			{"value differing in case", "V1", base.Add(-time.Hour), false},
			{"value prefix", "v", base.Add(-time.Hour), false},
		} {
			wantRevoked(t, s, tt.name, ref(kind, tt.value, tt.iat), tt.want)
		}
	}
}

func testRevokeKindsDistinct(t *testing.T, s sigil.Store) {
	early := base.Add(-time.Hour)
	revoke(t, s, sigil.RevokeClient, "x", base, base.Add(time.Hour))
	revoke(t, s, sigil.RevokeSubject, "y", base, base.Add(time.Hour))
	revoke(t, s, sigil.RevokeJTI, "z", base, base.Add(time.Hour))
	for _, tt := range []struct {
		name string
		ref  sigil.TokenRef
	}{
		{"client value as subject and jti", sigil.TokenRef{JTI: "x", ClientID: "c", Subject: "x", IssuedAt: early}},
		{"subject value as client and jti", sigil.TokenRef{JTI: "y", ClientID: "y", Subject: "s", IssuedAt: early}},
		{"jti value as client and subject", sigil.TokenRef{JTI: "j", ClientID: "z", Subject: "z", IssuedAt: early}},
	} {
		wantRevoked(t, s, tt.name, tt.ref, false)
	}
	wantRevoked(t, s, "all three match", sigil.TokenRef{JTI: "z", ClientID: "x", Subject: "y", IssuedAt: early}, true)
}

func testRevokeEmptyNeverMatches(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	late, early := base.Add(time.Hour), base.Add(-time.Hour)
	revoke(t, s, sigil.RevokeJTI, "j", late, late)
	revoke(t, s, sigil.RevokeClient, "c", late, late)
	revoke(t, s, sigil.RevokeSubject, "s", late, late)
	empty := []sigil.TokenRef{
		{},
		{IssuedAt: early},
		{JTI: "other", IssuedAt: early},
		{ClientID: "other", IssuedAt: early},
		{Subject: "other", IssuedAt: early},
	}
	for _, r := range empty {
		wantRevoked(t, s, "empty fields", r, false)
	}
	// A store may refuse a revocation with an empty value; if it accepts
	// one, empty token fields must still match nothing.
	for _, kind := range []sigil.RevocationKind{sigil.RevokeJTI, sigil.RevokeClient, sigil.RevokeSubject} {
		err := s.Revoke(ctx, sigil.Revocation{Kind: kind, Value: "", Cutoff: late, ExpiresAt: late})
		if err != nil {
			t.Logf("Revoke(%s, empty value) refused: %v", kind, err)
		}
	}
	for _, r := range empty {
		wantRevoked(t, s, "empty fields after revoking empty values", r, false)
	}
}

func testRevokeMovesForward(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	t1, t2, t3 := base, base.Add(time.Hour), base.Add(2*time.Hour)
	e1, e2 := base.Add(5*time.Hour), base.Add(10*time.Hour)
	for _, kind := range []sigil.RevocationKind{sigil.RevokeClient, sigil.RevokeSubject} {
		value := "v-" + string(kind)
		between := ref(kind, value, t1.Add(30*time.Minute)) // after t1, before t2
		later := ref(kind, value, t2.Add(30*time.Minute))   // after t2, before t3

		revoke(t, s, kind, value, t2, e2)
		wantRevoked(t, s, string(kind)+" cut at t2", between, true)
		wantRevoked(t, s, string(kind)+" cut at t2", later, false)

		// An older cutoff and expiry must not move the record back.
		revoke(t, s, kind, value, t1, e1)
		wantRevoked(t, s, string(kind)+" re-revoked at earlier t1", between, true)
		wantRevoked(t, s, string(kind)+" re-revoked at earlier t1", later, false)

		// A later cutoff moves it forward.
		revoke(t, s, kind, value, t3, e1)
		wantRevoked(t, s, string(kind)+" re-revoked at t3", later, true)
	}
	revoke(t, s, sigil.RevokeJTI, "j", t1, e2)
	revoke(t, s, sigil.RevokeJTI, "j", t1, e1)

	// Every expiry stayed at e2.
	n, err := s.PurgeRevocations(ctx, e1.Add(time.Hour))
	must(t, "PurgeRevocations", err)
	if n != 0 {
		t.Errorf("PurgeRevocations between the expiries deleted %d, want 0 (expiry moved back)", n)
	}
	wantRevoked(t, s, "jti after purge between expiries", ref(sigil.RevokeJTI, "j", t1), true)
	n, err = s.PurgeRevocations(ctx, e2.Add(time.Hour))
	must(t, "PurgeRevocations", err)
	if n != 3 {
		t.Errorf("PurgeRevocations after the later expiry deleted %d, want 3", n)
	}
	wantRevoked(t, s, "client after final purge", ref(sigil.RevokeClient, "v-client", t1), false)
}

func testPurgeRevocations(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	now := base.Truncate(time.Second)
	early := now.Add(-3 * time.Hour)
	n, err := s.PurgeRevocations(ctx, now)
	must(t, "PurgeRevocations(empty)", err)
	if n != 0 {
		t.Errorf("PurgeRevocations on an empty store = %d, want 0", n)
	}
	revoke(t, s, sigil.RevokeJTI, "a", early, now.Add(-2*time.Hour))
	revoke(t, s, sigil.RevokeClient, "b", now, now.Add(-time.Hour))
	revoke(t, s, sigil.RevokeSubject, "c", now, now) // expires exactly now: not before now
	revoke(t, s, sigil.RevokeJTI, "d", early, now.Add(time.Hour))

	n, err = s.PurgeRevocations(ctx, now)
	must(t, "PurgeRevocations", err)
	if n != 2 {
		t.Errorf("PurgeRevocations = %d, want 2", n)
	}
	wantRevoked(t, s, "purged jti", ref(sigil.RevokeJTI, "a", early), false)
	wantRevoked(t, s, "purged client", ref(sigil.RevokeClient, "b", early), false)
	wantRevoked(t, s, "kept subject", ref(sigil.RevokeSubject, "c", early), true)
	wantRevoked(t, s, "kept jti", ref(sigil.RevokeJTI, "d", early), true)

	n, err = s.PurgeRevocations(ctx, now)
	must(t, "PurgeRevocations again", err)
	if n != 0 {
		t.Errorf("second PurgeRevocations = %d, want 0", n)
	}
	n, err = s.PurgeRevocations(ctx, now.Add(time.Second))
	must(t, "PurgeRevocations a second later", err)
	if n != 1 {
		t.Errorf("PurgeRevocations a second later = %d, want 1", n)
	}
}

func markJTI(t *testing.T, s sigil.Store, key string, exp time.Time, want error) {
	t.Helper()
	err := s.MarkJTI(t.Context(), key, exp)
	if want == nil {
		must(t, fmt.Sprintf("MarkJTI(%q, %v)", key, exp), err)
		return
	}
	wantErr(t, fmt.Sprintf("MarkJTI(%q, %v)", key, exp), err, want)
}

func testMarkJTI(t *testing.T, s sigil.Store) {
	now := time.Now()
	markJTI(t, s, "k1", now.Add(time.Hour), nil)
	markJTI(t, s, "k1", now.Add(time.Hour), sigil.ErrReplay)
	markJTI(t, s, "k1", now.Add(2*time.Hour), sigil.ErrReplay)
	// A live entry is not replaced by a call with a past expiry either.
	markJTI(t, s, "k1", now.Add(-time.Hour), sigil.ErrReplay)
	markJTI(t, s, "k1", now.Add(time.Hour), sigil.ErrReplay)
	markJTI(t, s, "k2", now.Add(time.Hour), nil)
	markJTI(t, s, "K1", now.Add(time.Hour), nil)
}

func testMarkJTIExpired(t *testing.T, s sigil.Store) {
	now := time.Now()
	// An entry whose expiry has passed does not block its key.
	markJTI(t, s, "k", now.Add(-time.Hour), nil)
	markJTI(t, s, "k", now.Add(-time.Minute), nil)
	markJTI(t, s, "k", now.Add(time.Hour), nil)
	markJTI(t, s, "k", now.Add(time.Hour), sigil.ErrReplay)
}

// testMarkJTIConcurrent races 16 goroutines on one key, both a new key and
// a key whose entry has expired: exactly one may win each race.
func testMarkJTIConcurrent(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	const n = 16
	now := time.Now()
	for round := range 4 {
		key := fmt.Sprintf("hot-%d", round)
		if round%2 == 1 {
			markJTI(t, s, key, now.Add(-time.Hour), nil)
		}
		start := make(chan struct{})
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = s.MarkJTI(ctx, key, now.Add(time.Hour))
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, sigil.ErrReplay):
				t.Errorf("MarkJTI(%q): %v, want nil or ErrReplay", key, err)
			}
		}
		if wins != 1 {
			t.Errorf("MarkJTI(%q) from %d goroutines: %d succeeded, want exactly 1", key, n, wins)
		}
	}
}

func testPurgeReplay(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	now := time.Now()
	n, err := s.PurgeReplay(ctx, now)
	must(t, "PurgeReplay(empty)", err)
	if n != 0 {
		t.Errorf("PurgeReplay on an empty store = %d, want 0", n)
	}
	markJTI(t, s, "a", now.Add(-2*time.Hour), nil)
	markJTI(t, s, "b", now.Add(-time.Hour), nil)
	markJTI(t, s, "c", now.Add(time.Hour), nil)
	markJTI(t, s, "d", now.Add(2*time.Hour), nil)

	n, err = s.PurgeReplay(ctx, now)
	must(t, "PurgeReplay", err)
	if n != 2 {
		t.Errorf("PurgeReplay = %d, want 2", n)
	}
	n, err = s.PurgeReplay(ctx, now)
	must(t, "PurgeReplay again", err)
	if n != 0 {
		t.Errorf("second PurgeReplay = %d, want 0", n)
	}
	// Live entries survived the purge.
	markJTI(t, s, "c", now.Add(time.Hour), sigil.ErrReplay)
	markJTI(t, s, "d", now.Add(time.Hour), sigil.ErrReplay)
	n, err = s.PurgeReplay(ctx, now.Add(3*time.Hour))
	must(t, "PurgeReplay later", err)
	if n != 2 {
		t.Errorf("PurgeReplay three hours on = %d, want 2", n)
	}
}
