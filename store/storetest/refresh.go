package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	sigil "github.com/sigil-sts/sigil"
)

// fullFamily returns a live family that has never rotated, with every
// field set but RotatedAt and Revoked; its current token is "h0-"+id.
func fullFamily(id string) *sigil.RefreshFamily {
	return &sigil.RefreshFamily{
		ID:            id,
		ClientID:      "web",
		UserID:        "alice",
		Scopes:        []string{"openid", "offline_access"},
		Audience:      []string{"https://api.example.com", "https://other.example.com"},
		AuthTime:      base,
		AMR:           []string{"pwd", "hwk"},
		ACR:           "urn:example:loa:3",
		JKT:           "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		TokenHash:     "h0-" + id,
		CreatedAt:     base,
		IdleExpiresAt: fromNow(time.Hour),
		ExpiresAt:     fromNow(24 * time.Hour),
		// Kept through every rotation, byte for byte.
		AuthorizationDetails: `[{"type":"mcp_tool","resource":"https://mcp.example.com","tools":["search"]}]`,
	}
}

// issued returns an access token that is live for an hour.
func issued(jti string) sigil.IssuedToken {
	return sigil.IssuedToken{JTI: jti, ExpiresAt: fromNow(time.Hour)}
}

// createFamily stores f with the live access token "jti-"+f.ID.
func createFamily(t *testing.T, s sigil.Store, f *sigil.RefreshFamily) {
	t.Helper()
	must(t, "CreateRefreshFamily("+f.ID+")", s.CreateRefreshFamily(t.Context(), f, issued("jti-"+f.ID)))
}

func mustFamily(t *testing.T, s sigil.Store, id string) *sigil.RefreshFamily {
	t.Helper()
	f, err := s.RefreshFamily(t.Context(), id)
	must(t, "RefreshFamily("+id+")", err)
	return f
}

// wantFamily fails t unless family want.ID reads back as want.
func wantFamily(t *testing.T, s sigil.Store, what string, want *sigil.RefreshFamily) {
	t.Helper()
	got, err := s.RefreshFamily(t.Context(), want.ID)
	if err != nil {
		t.Errorf("%s: RefreshFamily(%s): %v", what, want.ID, err)
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: RefreshFamily(%s) (-want +got):\n%s", what, want.ID, diff)
	}
}

// wantNoFamily fails t unless family id reads as absent.
func wantNoFamily(t *testing.T, s sigil.Store, what, id string) {
	t.Helper()
	_, err := s.RefreshFamily(t.Context(), id)
	wantErr(t, what, err, sigil.ErrNotFound)
}

// next returns the rotation of f from its current token to the token
// hash, at the real current time (stores judge idle expiry at r.At), the
// new token idle for two hours, with the access token "jti-"+hash.
func next(f *sigil.RefreshFamily, hash string) sigil.RefreshRotation {
	return sigil.RefreshRotation{
		FamilyID:      f.ID,
		Generation:    f.Generation,
		TokenHash:     f.TokenHash,
		NextHash:      hash,
		At:            fromNow(0),
		IdleExpiresAt: fromNow(2 * time.Hour),
		Access:        issued("jti-" + hash),
	}
}

// rotated returns a copy of f as the rotation r leaves it: the next
// generation, r's token and times, every other field as it was.
func rotated(f *sigil.RefreshFamily, r sigil.RefreshRotation) *sigil.RefreshFamily {
	g := *f
	g.Generation = f.Generation + 1
	g.TokenHash, g.RotatedAt, g.IdleExpiresAt = r.NextHash, r.At, r.IdleExpiresAt
	return &g
}

// mustRotate rotates f to the token hash with next, checks that the
// family reads back as rotated and returns it so.
func mustRotate(t *testing.T, s sigil.Store, f *sigil.RefreshFamily, hash string) *sigil.RefreshFamily {
	t.Helper()
	r := next(f, hash)
	must(t, fmt.Sprintf("RotateRefresh(%s from generation %d)", f.ID, f.Generation), s.RotateRefresh(t.Context(), r))
	want := rotated(f, r)
	wantFamily(t, s, fmt.Sprintf("after RotateRefresh(%s from generation %d)", f.ID, f.Generation), want)
	return want
}

// wantJTIs fails t unless err is nil and got holds the JTIs want. The
// order is not part of the contract, and a JTI returned twice is
// harmless: the two are compared as sets.
func wantJTIs(t *testing.T, what string, got []string, err error, want []string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	got, want = slices.Compact(slices.Sorted(slices.Values(got))), slices.Sorted(slices.Values(want))
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s JTIs (-want +got):\n%s", what, diff)
	}
}

// revokeFamily revokes family id and fails t unless that returns the
// JTIs want.
func revokeFamily(t *testing.T, s sigil.Store, id string, want ...string) {
	t.Helper()
	jtis, err := s.RevokeRefreshFamily(t.Context(), id)
	wantJTIs(t, "RevokeRefreshFamily("+id+")", jtis, err, want)
}

func testRefreshRoundTrip(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullFamily("f1")
	createFamily(t, s, want)
	got := mustFamily(t, s, "f1")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RefreshFamily round trip (-want +got):\n%s", diff)
	}
	// No aliasing either way.
	orig := *want
	orig.Scopes, orig.Audience, orig.AMR = slices.Clone(want.Scopes), slices.Clone(want.Audience), slices.Clone(want.AMR)
	want.Scopes[0], want.AMR[1] = "changed", "changed"
	got.Audience[0], got.AMR[0] = "changed", "changed"
	wantFamily(t, s, "stored family changed through aliases", &orig)

	// A zero CreatedAt is set to the store's current time, in f too; the
	// optional fields may be empty. (A family always has a client.)
	bare := &sigil.RefreshFamily{ID: "bare", ClientID: "web", TokenHash: "h-bare",
		IdleExpiresAt: fromNow(time.Hour), ExpiresAt: fromNow(time.Hour)}
	before := time.Now()
	must(t, "CreateRefreshFamily(bare)", s.CreateRefreshFamily(ctx, bare, issued("jti-bare")))
	after := time.Now()
	checkStamp(t, "CreatedAt set in the family given to CreateRefreshFamily", bare.CreatedAt, before, after)
	got = mustFamily(t, s, "bare")
	checkStamp(t, "CreatedAt stored by CreateRefreshFamily", got.CreatedAt, before, after)
	// A zero AuthTime need not read back as the zero time, but a zero
	// RotatedAt must: it says the family has not rotated.
	if diff := cmp.Diff(bare, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(sigil.RefreshFamily{}, "AuthTime")); diff != "" {
		t.Errorf("bare RefreshFamily round trip (-want +got):\n%s", diff)
	}

	// A new family's token is of generation 0 and the family has not
	// rotated, whatever the caller's Generation and RotatedAt hold.
	odd := fullFamily("odd")
	odd.Generation, odd.RotatedAt = 7, base.Add(time.Minute)
	createFamily(t, s, odd)
	fresh := fullFamily("odd")
	fresh.IdleExpiresAt, fresh.ExpiresAt = odd.IdleExpiresAt, odd.ExpiresAt
	wantFamily(t, s, "family created with a Generation and a RotatedAt", fresh)

	// A duplicate ID is a conflict that stores nothing: neither the
	// family nor its access token.
	dup := fullFamily("f1")
	dup.UserID, dup.TokenHash = "mallory", "h0-mallory"
	wantErr(t, "CreateRefreshFamily(duplicate)", s.CreateRefreshFamily(ctx, dup, issued("jti-dup")), sigil.ErrConflict)
	wantFamily(t, s, "after a conflicting create", &orig)

	wantNoFamily(t, s, "RefreshFamily(absent)", "absent")
	for _, id := range []string{"F1", "f", "f1 ", ""} {
		wantNoFamily(t, s, fmt.Sprintf("RefreshFamily(%q)", id), id)
	}

	// Past its current token's idle expiry a family is still read, until
	// its ExpiresAt.
	idle := fullFamily("idle")
	idle.IdleExpiresAt = fromNow(-time.Hour)
	createFamily(t, s, idle)
	wantFamily(t, s, "family past its idle expiry", idle)
	dead := fullFamily("dead")
	dead.IdleExpiresAt, dead.ExpiresAt = fromNow(-2*time.Hour), fromNow(-time.Hour)
	createFamily(t, s, dead)
	wantNoFamily(t, s, "RefreshFamily(expired)", "dead")

	revokeFamily(t, s, "f1", "jti-f1")
}

// testRotateRefresh rotates a family along a chain of tokens: each
// rotation moves it on one generation and changes nothing but the token
// and its times; every earlier token is then reuse, refused without
// change; the access tokens of the rotations are the family's.
func testRotateRefresh(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	f := fullFamily("fam")
	createFamily(t, s, f)
	other := fullFamily("fam-other")
	createFamily(t, s, other)

	history := []*sigil.RefreshFamily{f}
	jtis := []string{"jti-fam"}
	for i := 1; i <= 5; i++ {
		hash := fmt.Sprintf("h%d", i)
		f = mustRotate(t, s, f, hash)
		history = append(history, f)
		jtis = append(jtis, "jti-"+hash)
		// Every earlier token is now reuse.
		for _, old := range history[:len(history)-1] {
			r := next(old, "replayed-"+hash)
			wantErr(t, fmt.Sprintf("RotateRefresh from generation %d at generation %d", old.Generation, f.Generation),
				s.RotateRefresh(ctx, r), sigil.ErrReplay)
		}
		wantFamily(t, s, "after replayed rotations", f)
	}
	wantFamily(t, s, "another family", other)

	// Idle expiry is judged at r.At, not by the store's clock: a token the
	// real clock has idled out still rotates at an earlier r.At.
	late := fullFamily("late")
	late.IdleExpiresAt = fromNow(-time.Hour)
	createFamily(t, s, late)
	r := next(late, "late-1")
	r.At = fromNow(-2 * time.Hour)
	must(t, "RotateRefresh(at an r.At before the idle expiry)", s.RotateRefresh(ctx, r))
	wantFamily(t, s, "after a rotation at an earlier r.At", rotated(late, r))

	// The family's access tokens are its first one and each rotation's;
	// the replays recorded none.
	revokeFamily(t, s, "fam", jtis...)
	revokeFamily(t, s, "fam-other", "jti-fam-other")
}

// testRotateRefreshRejects presents tokens that are not a family's live
// current token: each is refused with its error, changing nothing (the
// family reads back the same, is not revoked, still rotates from its
// current token, and recorded no access token).
func testRotateRefreshRejects(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	other := fullFamily("fam-other")
	createFamily(t, s, other)
	for i, tt := range []struct {
		name string
		// idle and expires set the family's IdleExpiresAt and ExpiresAt
		// from now; zero means an hour and a day.
		idle, expires time.Duration
		// rotations is how many times the family rotates first.
		rotations int
		revoked   bool
		absent    bool
		// present returns the refused rotation, given the family's states
		// from its creation (states[0]) to the current one.
		present func(states []*sigil.RefreshFamily) sigil.RefreshRotation
		want    error
	}{
		{name: "previous generation", rotations: 1, want: sigil.ErrReplay,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation { return next(st[0], "x") }},
		{name: "older generation", rotations: 3, want: sigil.ErrReplay,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation { return next(st[1], "x") }},
		{name: "current hash, previous generation", rotations: 1, want: sigil.ErrReplay,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation {
				r := next(st[1], "x")
				r.Generation = 0
				return r
			}},
		{name: "current hash, later generation", rotations: 1, want: sigil.ErrReplay,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation {
				r := next(st[1], "x")
				r.Generation = 2
				return r
			}},
		{name: "current generation, wrong hash", want: sigil.ErrReplay,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation {
				r := next(st[0], "x")
				r.TokenHash = "forged"
				return r
			}},
		{name: "current generation, previous hash", rotations: 1, want: sigil.ErrReplay,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation {
				r := next(st[1], "x")
				r.TokenHash = st[0].TokenHash
				return r
			}},
		{name: "another family's token", want: sigil.ErrReplay,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation {
				r := next(st[0], "x")
				r.TokenHash = "h0-fam-other"
				return r
			}},
		{name: "revoked", rotations: 1, revoked: true, want: sigil.ErrReplay,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation { return next(st[len(st)-1], "x") }},
		{name: "idle expiry before r.At", want: sigil.ErrReplay,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation {
				r := next(st[0], "x")
				r.At = fromNow(2 * time.Hour)
				return r
			}},
		{name: "idle expired", idle: -time.Hour, want: sigil.ErrReplay,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation { return next(st[0], "x") }},
		{name: "absent", absent: true, want: sigil.ErrNotFound,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation { return next(st[0], "x") }},
		// The caller caps the idle expiry at ExpiresAt, so an expired
		// family is idle too: absent all the same.
		{name: "expired", idle: -2 * time.Hour, expires: -time.Hour, want: sigil.ErrNotFound,
			present: func(st []*sigil.RefreshFamily) sigil.RefreshRotation { return next(st[0], "x") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := fullFamily(fmt.Sprintf("fam-%02d", i))
			if tt.idle != 0 {
				f.IdleExpiresAt = fromNow(tt.idle)
			}
			if tt.expires != 0 {
				f.ExpiresAt = fromNow(tt.expires)
			}
			states := []*sigil.RefreshFamily{f}
			jtis := []string{"jti-" + f.ID}
			if !tt.absent {
				createFamily(t, s, f)
			}
			for n := range tt.rotations {
				hash := fmt.Sprintf("%s-h%d", f.ID, n+1)
				f = mustRotate(t, s, f, hash)
				states = append(states, f)
				jtis = append(jtis, "jti-"+hash)
			}
			if tt.revoked {
				revokeFamily(t, s, f.ID, jtis...)
				f.Revoked = true
			}

			r := tt.present(states)
			r.Access.JTI = "jti-refused"
			wantErr(t, "RotateRefresh", s.RotateRefresh(ctx, r), tt.want)
			switch {
			case tt.absent || tt.expires < 0:
				wantNoFamily(t, s, "RefreshFamily after a refused rotation", f.ID)
			default:
				wantFamily(t, s, "after a refused rotation", f)
			}
			if !tt.absent && !tt.revoked && tt.idle >= 0 && tt.expires >= 0 {
				f = mustRotate(t, s, f, f.ID+"-after")
				jtis = append(jtis, "jti-"+f.TokenHash)
			}
			switch {
			case tt.absent:
				// A rotation of an absent family left no access token for
				// a later revocation to find.
				revokeFamily(t, s, f.ID)
			case tt.expires >= 0:
				revokeFamily(t, s, f.ID, jtis...)
			}
		})
	}
	wantFamily(t, s, "the family whose token was presented for another", other)
}

// testRotateRefreshConcurrent: of many concurrent rotations from one
// token, exactly one wins and the others are replays; the family holds
// the winner's token and access token only.
func testRotateRefreshConcurrent(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	f := fullFamily("fam")
	createFamily(t, s, f)
	// From generation 1: a store that confuses a generation with 0 fails.
	f = mustRotate(t, s, f, "h1")
	const n = 32
	rs := make([]sigil.RefreshRotation, n)
	for i := range rs {
		rs[i] = next(f, fmt.Sprintf("next-%02d", i))
		rs[i].At = rs[i].At.Add(time.Duration(i) * time.Millisecond)
		rs[i].IdleExpiresAt = rs[i].IdleExpiresAt.Add(time.Duration(i) * time.Minute)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.RotateRefresh(ctx, rs[i])
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("rotations %d and %d from one token both succeeded", winner, i)
		case err == nil:
			winner = i
		default:
			wantErr(t, fmt.Sprintf("RotateRefresh #%d", i), err, sigil.ErrReplay)
		}
	}
	if winner < 0 {
		t.Fatal("no rotation succeeded")
	}
	wantFamily(t, s, fmt.Sprintf("after concurrent rotations (#%d won)", winner), rotated(f, rs[winner]))
	revokeFamily(t, s, "fam", "jti-fam", "jti-h1", rs[winner].Access.JTI)
}

// testRotateRefreshManyFamilies rotates many families at once, each along
// a chain, while refused rotations (a forged token, an absent family)
// race them: a store may commit rotations together, but each succeeds or
// fails on its own.
func testRotateRefreshManyFamilies(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	const (
		n      = 32
		rounds = 4
	)
	fams := make([]*sigil.RefreshFamily, n)
	for i := range fams {
		fams[i] = fullFamily(fmt.Sprintf("fam-%02d", i))
		fams[i].UserID = fmt.Sprintf("user-%02d", i)
		createFamily(t, s, fams[i])
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	final := make([]*sigil.RefreshFamily, n)
	errs := make([]error, n)
	forged := make([][rounds]error, n)
	absent := make([][rounds]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			f := fams[i]
			for round := range rounds {
				r := next(f, fmt.Sprintf("%s-h%d", f.ID, round+1))
				if err := s.RotateRefresh(ctx, r); err != nil {
					errs[i] = fmt.Errorf("rotation %d: %w", round+1, err)
					return
				}
				f = rotated(f, r)
			}
			final[i] = f
		})
		wg.Go(func() {
			<-start
			for round := range rounds {
				r := next(fams[i], "forged-next")
				r.TokenHash = "forged"
				forged[i][round] = s.RotateRefresh(ctx, r)
			}
		})
		wg.Go(func() {
			<-start
			for round := range rounds {
				absent[i][round] = s.RotateRefresh(ctx, next(fullFamily(fmt.Sprintf("absent-%02d", i)), "absent-next"))
			}
		})
	}
	close(start)
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Errorf("RotateRefresh(%s), racing others: %v", fams[i].ID, errs[i])
			continue
		}
		for round := range rounds {
			wantErr(t, fmt.Sprintf("RotateRefresh(%s with a forged token)", fams[i].ID), forged[i][round], sigil.ErrReplay)
			wantErr(t, fmt.Sprintf("RotateRefresh(absent-%02d)", i), absent[i][round], sigil.ErrNotFound)
		}
		wantFamily(t, s, "after concurrent rotations of many families", final[i])
		wantNoFamily(t, s, "family of a refused rotation", fmt.Sprintf("absent-%02d", i))
	}
}

func testRevokeRefreshFamily(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	// Family fam: access tokens jti-fam (live), jti-h1 (live), jti-h2
	// (expired), jti-h3 (live).
	f := fullFamily("fam")
	createFamily(t, s, f)
	f = mustRotate(t, s, f, "h1")
	r := next(f, "h2")
	r.Access.ExpiresAt = fromNow(-time.Minute)
	must(t, "RotateRefresh(h1)", s.RotateRefresh(ctx, r))
	f = rotated(f, r)
	f = mustRotate(t, s, f, "h3")
	// Families whose IDs extend or shorten fam's, and one whose only
	// access token has expired.
	others := []*sigil.RefreshFamily{fullFamily("fam-2"), fullFamily("fa"), fullFamily("FAM")}
	for _, o := range others {
		createFamily(t, s, o)
	}
	stale := fullFamily("stale")
	must(t, "CreateRefreshFamily(stale)", s.CreateRefreshFamily(ctx, stale, sigil.IssuedToken{JTI: "jti-stale", ExpiresAt: fromNow(-time.Hour)}))

	revokeFamily(t, s, "fam", "jti-fam", "jti-h1", "jti-h3")
	f.Revoked = true
	wantFamily(t, s, "revoked family", f)
	for _, o := range others {
		wantFamily(t, s, "another family", o)
	}

	// Its current token is dead: a replay, changing nothing.
	wantErr(t, "RotateRefresh after revocation", s.RotateRefresh(ctx, next(f, "h4")), sigil.ErrReplay)
	wantFamily(t, s, "revoked family after a refused rotation", f)

	// Revoking again returns the same tokens, still unexpired.
	revokeFamily(t, s, "fam", "jti-fam", "jti-h1", "jti-h3")
	wantFamily(t, s, "family revoked twice", f)

	revokeFamily(t, s, "stale")
	stale.Revoked = true
	wantFamily(t, s, "revoked family without live access tokens", stale)

	for _, o := range others {
		revokeFamily(t, s, o.ID, "jti-"+o.ID)
	}
}

// testCreateRefreshRevokedFamily: a family revoked before it exists (a
// replayed code revokes the family its first redemption is about to
// create) cannot be created; revoking an existing family is no such
// mark.
func testCreateRefreshRevokedFamily(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	revokeFamily(t, s, "early")
	wantNoFamily(t, s, "RefreshFamily of a family revoked before it existed", "early")
	// Absent, or revoked: the contract allows either, but not a rotation.
	if err := s.RotateRefresh(ctx, next(fullFamily("early"), "h1")); !errors.Is(err, sigil.ErrNotFound) && !errors.Is(err, sigil.ErrReplay) {
		t.Errorf("RotateRefresh of a family revoked before it existed: %v, want ErrNotFound or ErrReplay", err)
	}
	for range 2 {
		err := s.CreateRefreshFamily(ctx, fullFamily("early"), issued("jti-early"))
		wantErr(t, "CreateRefreshFamily(revoked before it existed)", err, sigil.ErrReplay)
		wantNoFamily(t, s, "family refused as revoked", "early")
	}
	// Revoking it again still finds no access token: the refused creates
	// stored none.
	revokeFamily(t, s, "early")

	// Other IDs, including ones that extend or shorten it, are free.
	for _, id := range []string{"early-2", "earl", "EARLY", "early "} {
		f := fullFamily(id)
		createFamily(t, s, f)
		wantFamily(t, s, "family beside one revoked before it existed", f)
	}

	// A family revoked once it exists: creating it again is a conflict,
	// not a replay, and changes nothing.
	f := fullFamily("late")
	createFamily(t, s, f)
	revokeFamily(t, s, "late", "jti-late")
	f.Revoked = true
	dup := fullFamily("late")
	dup.UserID, dup.TokenHash = "mallory", "h0-mallory"
	wantErr(t, "CreateRefreshFamily(revoked, existing)", s.CreateRefreshFamily(ctx, dup, issued("jti-dup")), sigil.ErrConflict)
	wantFamily(t, s, "revoked family after a conflicting create", f)
	revokeFamily(t, s, "late", "jti-late")
}

// testCreateRefreshRevokeConcurrent races a family's creation against its
// revocation, many times: either the family is stored first and revoked
// (the revocation returning its access token), or its creation is refused
// and nothing is stored; it is never left live.
func testCreateRefreshRevokeConcurrent(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	const (
		rounds = 40
		width  = 8
	)
	var stored, refused int
	for round := range rounds {
		start := make(chan struct{})
		var wg sync.WaitGroup
		created := make([]error, width)
		revoked := make([][]string, width)
		revokeErrs := make([]error, width)
		ids := make([]string, width)
		for i := range width {
			ids[i] = fmt.Sprintf("fam-%02d-%d", round, i)
			wg.Go(func() {
				<-start
				created[i] = s.CreateRefreshFamily(ctx, fullFamily(ids[i]), issued("jti-"+ids[i]))
			})
			wg.Go(func() {
				<-start
				revoked[i], revokeErrs[i] = s.RevokeRefreshFamily(ctx, ids[i])
			})
		}
		close(start)
		wg.Wait()

		for i, id := range ids {
			must(t, "RevokeRefreshFamily("+id+")", revokeErrs[i])
			switch err := created[i]; {
			case err == nil:
				stored++
				f, err := s.RefreshFamily(ctx, id)
				switch {
				case err != nil:
					t.Errorf("RefreshFamily(%s) created before its revocation: %v", id, err)
				case !f.Revoked:
					t.Errorf("%s stored live despite its revocation", id)
				}
				wantJTIs(t, "revocation after "+id+" was stored", revoked[i], nil, []string{"jti-" + id})
			case errors.Is(err, sigil.ErrReplay):
				refused++
				wantNoFamily(t, s, "family refused as revoked", id)
				wantJTIs(t, "revocation before "+id+" was refused", revoked[i], nil, nil)
			default:
				t.Errorf("CreateRefreshFamily(%s) racing its revocation: %v", id, err)
			}
		}
		if t.Failed() {
			break
		}
	}
	t.Logf("%d families stored then revoked, %d refused", stored, refused)
}

// testRevokeRefreshTokens revokes by user and client, by user alone and
// by client alone: each revokes the matching families, whole, and
// nobody else's, and returns their live access tokens.
func testRevokeRefreshTokens(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	fams := map[string]*sigil.RefreshFamily{}
	for _, f := range []struct{ id, user, client string }{
		{"aw1", "alice", "web"},
		{"aw2", "alice", "web"},
		{"ac", "alice", "cli"},
		{"bw", "bob", "web"},
		{"bc", "bob", "cli"},
		{"cc", "carol", "cli"},
		{"dw", "dave", "web"},
		// User and client columns swapped: matched by neither alice nor web.
		{"wa", "web", "alice"},
	} {
		fam := fullFamily(f.id)
		fam.UserID, fam.ClientID = f.user, f.client
		createFamily(t, s, fam)
		fams[f.id] = fam
	}
	fams["aw1"] = mustRotate(t, s, fams["aw1"], "aw1-h1")
	// bc's second access token has expired: it is not returned.
	r := next(fams["bc"], "bc-h1")
	r.Access.ExpiresAt = fromNow(-time.Minute)
	must(t, "RotateRefresh(bc)", s.RotateRefresh(ctx, r))
	fams["bc"] = rotated(fams["bc"], r)

	for _, step := range []struct {
		user, client string
		want         []string // JTIs
		revokes      []string // families this step revokes for the first time
	}{
		// A withdrawn consent: alice at web, both of her families there.
		{"alice", "web", []string{"jti-aw1", "jti-aw1-h1", "jti-aw2"}, []string{"aw1", "aw2"}},
		// A user's every grant.
		{"bob", "", []string{"jti-bw", "jti-bc"}, []string{"bw", "bc"}},
		// A client's every grant, bob's revoked before and returned again.
		{"", "cli", []string{"jti-ac", "jti-bc", "jti-cc"}, []string{"ac", "cc"}},
		{"carol", "web", nil, nil},
		// Every family of alice's is revoked already; none has client alice.
		{"alice", "", []string{"jti-aw1", "jti-aw1-h1", "jti-aw2", "jti-ac"}, nil},
		{"", "web", []string{"jti-aw1", "jti-aw1-h1", "jti-aw2", "jti-bw", "jti-dw"}, []string{"dw"}},
		{"nobody", "", nil, nil},
		{"", "nothing", nil, nil},
	} {
		what := fmt.Sprintf("RevokeRefreshTokens(%q, %q)", step.user, step.client)
		jtis, err := s.RevokeRefreshTokens(ctx, step.user, step.client)
		wantJTIs(t, what, jtis, err, step.want)
		for _, id := range step.revokes {
			fams[id].Revoked = true
		}
		for _, f := range fams {
			wantFamily(t, s, "after "+what, f)
		}
	}
	wantErr(t, "RotateRefresh(revoked by user)", s.RotateRefresh(ctx, next(fams["bw"], "bw-h1")), sigil.ErrReplay)

	// Neither a user nor a client is not "everybody".
	jtis, err := s.RevokeRefreshTokens(ctx, "", "")
	if err == nil {
		t.Errorf(`RevokeRefreshTokens("", "") = %q, nil; want an error`, jtis)
	}
	wantFamily(t, s, `after RevokeRefreshTokens("", "")`, fams["wa"])
	mustRotate(t, s, fams["wa"], "wa-h1")
}

// testPurgeRevokedFamilies: PurgeAuthz keeps the mark of a family revoked
// before it existed for an hour after the revocation, by the store's
// clock, then deletes it, counted with the rest.
func testPurgeRevokedFamilies(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	// Revoking again counts once.
	for _, id := range []string{"fam-1", "fam-2", "fam-1"} {
		revokeFamily(t, s, id)
	}

	n, err := s.PurgeAuthz(ctx, fromNow(30*time.Minute))
	must(t, "PurgeAuthz(within the hour)", err)
	if n != 0 {
		t.Errorf("PurgeAuthz within the hour after the revocations = %d, want 0", n)
	}
	wantErr(t, "CreateRefreshFamily(revoked before it existed) after an early purge",
		s.CreateRefreshFamily(ctx, fullFamily("fam-1"), issued("jti-refused")), sigil.ErrReplay)
	wantNoFamily(t, s, "family refused after an early purge", "fam-1")

	n, err = s.PurgeAuthz(ctx, fromNow(2*time.Hour))
	must(t, "PurgeAuthz(after the hour)", err)
	if n != 2 {
		t.Errorf("PurgeAuthz more than an hour after the revocations = %d, want 2 (the families revoked before they existed)", n)
	}
	// The mark has done its work: the ID is free again. (The access token
	// outlives the purges below.)
	f := fullFamily("fam-1")
	must(t, "CreateRefreshFamily(fam-1) once its early revocation was purged",
		s.CreateRefreshFamily(ctx, f, sigil.IssuedToken{JTI: "jti-fam-1", ExpiresAt: f.ExpiresAt}))
	wantFamily(t, s, "family created once its early revocation was purged", f)
	if n, err := s.PurgeAuthz(ctx, fromNow(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("PurgeAuthz again = %d, %v; want 0, nil", n, err)
	}
	// Its refused creation left no access token behind.
	revokeFamily(t, s, "fam-1", "jti-fam-1")
}
