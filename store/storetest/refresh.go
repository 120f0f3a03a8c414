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

// fullRefresh returns a live, unspent refresh token with every field set
// except UsedAt and Revoked.
func fullRefresh(hash, family string) *sigil.RefreshToken {
	return &sigil.RefreshToken{
		Hash:            hash,
		FamilyID:        family,
		ClientID:        "web",
		UserID:          "alice",
		Scopes:          []string{"openid", "offline_access"},
		Audience:        []string{"https://api.example.com", "https://other.example.com"},
		AuthTime:        base,
		AMR:             []string{"pwd", "hwk"},
		ACR:             "urn:example:loa:3",
		JKT:             "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		AccessJTI:       "jti-" + hash,
		CreatedAt:       base,
		ExpiresAt:       fromNow(time.Hour),
		FamilyExpiresAt: fromNow(24 * time.Hour),
	}
}

func mustRefresh(t *testing.T, s sigil.Store, hash string) *sigil.RefreshToken {
	t.Helper()
	r, err := s.RefreshToken(t.Context(), hash)
	must(t, "RefreshToken("+hash+")", err)
	return r
}

// wantNoRefresh fails t unless the token hash reads as absent.
func wantNoRefresh(t *testing.T, s sigil.Store, what, hash string) {
	t.Helper()
	_, err := s.RefreshToken(t.Context(), hash)
	wantErr(t, what, err, sigil.ErrNotFound)
}

func testRefreshRoundTrip(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullRefresh("r1", "f1")
	must(t, "CreateRefresh", s.CreateRefresh(ctx, want))
	got := mustRefresh(t, s, "r1")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RefreshToken round trip (-want +got):\n%s", diff)
	}
	orig := *want
	orig.Scopes, orig.AMR = slices.Clone(want.Scopes), slices.Clone(want.AMR)
	orig.Audience = slices.Clone(want.Audience)
	want.Scopes[0] = "changed"
	got.AMR[0] = "changed"
	got.Audience[0] = "changed"
	if diff := cmp.Diff(&orig, mustRefresh(t, s, "r1")); diff != "" {
		t.Errorf("stored token changed through aliases (-want +got):\n%s", diff)
	}

	// Spent and revoked tokens, created as such, round-trip too.
	spent := fullRefresh("r2", "f2")
	spent.UsedAt, spent.Revoked = base.Add(time.Minute), true
	must(t, "CreateRefresh(spent)", s.CreateRefresh(ctx, spent))
	if diff := cmp.Diff(spent, mustRefresh(t, s, "r2")); diff != "" {
		t.Errorf("spent RefreshToken round trip (-want +got):\n%s", diff)
	}

	// A zero CreatedAt is set by the store; the other fields may be empty.
	bare := &sigil.RefreshToken{Hash: "bare", FamilyID: "f3", ExpiresAt: fromNow(time.Hour),
		FamilyExpiresAt: fromNow(time.Hour)}
	before := time.Now()
	must(t, "CreateRefresh(bare)", s.CreateRefresh(ctx, bare))
	after := time.Now()
	checkStamp(t, "CreatedAt", bare.CreatedAt, before, after)
	if diff := cmp.Diff(bare, mustRefresh(t, s, "bare"), cmpopts.EquateEmpty(),
		cmpopts.IgnoreFields(sigil.RefreshToken{}, "AuthTime")); diff != "" {
		t.Errorf("bare RefreshToken round trip (-want +got):\n%s", diff)
	}

	dup := fullRefresh("r1", "f9")
	wantErr(t, "CreateRefresh(duplicate)", s.CreateRefresh(ctx, dup), sigil.ErrConflict)
	if got := mustRefresh(t, s, "r1"); got.FamilyID != "f1" {
		t.Errorf("after conflicting create FamilyID = %q, want f1", got.FamilyID)
	}
	wantNoRefresh(t, s, "RefreshToken(absent)", "absent")

	// Past its idle expiry a token is still read, until its family's
	// absolute expiry.
	idle := fullRefresh("idle", "f4")
	idle.ExpiresAt = fromNow(-time.Hour)
	must(t, "CreateRefresh(idle)", s.CreateRefresh(ctx, idle))
	mustRefresh(t, s, "idle")
	dead := fullRefresh("dead", "f5")
	dead.ExpiresAt, dead.FamilyExpiresAt = fromNow(time.Hour), fromNow(-time.Hour)
	must(t, "CreateRefresh(dead)", s.CreateRefresh(ctx, dead))
	wantNoRefresh(t, s, "RefreshToken(family expired)", "dead")
}

// nextRefresh returns the token to rotate to, with a FamilyID and a later
// FamilyExpiresAt that RotateRefresh must replace by the old token's.
func nextRefresh(hash string, created time.Time) *sigil.RefreshToken {
	n := fullRefresh(hash, "not-the-family")
	n.FamilyExpiresAt = fromNow(1000 * time.Hour)
	n.CreatedAt = created
	return n
}

func testRotateRefresh(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	first := fullRefresh("r1", "fam")
	must(t, "CreateRefresh", s.CreateRefresh(ctx, first))

	n2 := nextRefresh("r2", base.Add(time.Minute))
	must(t, "RotateRefresh(r1)", s.RotateRefresh(ctx, "r1", n2))
	if n2.FamilyID != "fam" || !n2.FamilyExpiresAt.Equal(first.FamilyExpiresAt) {
		t.Errorf("rotated token has family %q until %v, want the old token's %q until %v",
			n2.FamilyID, n2.FamilyExpiresAt, "fam", first.FamilyExpiresAt)
	}
	if diff := cmp.Diff(n2, mustRefresh(t, s, "r2")); diff != "" {
		t.Errorf("rotated token (-want +got):\n%s", diff)
	}
	spent := *first
	spent.UsedAt = n2.CreatedAt
	if diff := cmp.Diff(&spent, mustRefresh(t, s, "r1")); diff != "" {
		t.Errorf("old token after rotation (-want +got):\n%s", diff)
	}

	// The spent token cannot be rotated again, and nothing is stored.
	wantErr(t, "RotateRefresh(r1) again", s.RotateRefresh(ctx, "r1", nextRefresh("r3", base)), sigil.ErrReplay)
	wantNoRefresh(t, s, "token of a replayed rotation", "r3")
	if got := mustRefresh(t, s, "r1"); !got.UsedAt.Equal(n2.CreatedAt) {
		t.Errorf("replayed rotation moved UsedAt to %v", got.UsedAt)
	}

	// A next token whose hash exists is a conflict that spends nothing.
	wantErr(t, "RotateRefresh(r2 to r1)", s.RotateRefresh(ctx, "r2", nextRefresh("r1", base)), sigil.ErrConflict)
	if got := mustRefresh(t, s, "r2"); !got.UsedAt.IsZero() {
		t.Errorf("conflicting rotation spent r2 at %v", got.UsedAt)
	}

	// A zero CreatedAt is set by the store, and spends the old token.
	n3 := nextRefresh("r3", time.Time{})
	before := time.Now()
	must(t, "RotateRefresh(r2)", s.RotateRefresh(ctx, "r2", n3))
	after := time.Now()
	checkStamp(t, "CreatedAt", n3.CreatedAt, before, after)
	if got := mustRefresh(t, s, "r2"); !got.UsedAt.Equal(n3.CreatedAt) {
		t.Errorf("r2.UsedAt = %v, want %v", got.UsedAt, n3.CreatedAt)
	}
	if diff := cmp.Diff(n3, mustRefresh(t, s, "r3")); diff != "" {
		t.Errorf("rotated token (-want +got):\n%s", diff)
	}

	wantErr(t, "RotateRefresh(absent)", s.RotateRefresh(ctx, "absent", nextRefresh("r4", base)), sigil.ErrNotFound)
	wantNoRefresh(t, s, "token of a rotation of an absent one", "r4")
}

// testRotateRefreshRejects: revoked and idle-expired tokens are replays;
// a token whose family has expired is gone.
func testRotateRefreshRejects(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	revoked := fullRefresh("revoked", "f1")
	revoked.Revoked = true
	idle := fullRefresh("idle", "f2")
	idle.ExpiresAt = fromNow(-time.Minute)
	dead := fullRefresh("dead", "f3")
	dead.FamilyExpiresAt = fromNow(-time.Minute)
	for _, tt := range []struct {
		old  *sigil.RefreshToken
		want error
	}{
		{revoked, sigil.ErrReplay},
		{idle, sigil.ErrReplay},
		{dead, sigil.ErrNotFound},
	} {
		must(t, "CreateRefresh("+tt.old.Hash+")", s.CreateRefresh(ctx, tt.old))
		n := nextRefresh("next-"+tt.old.Hash, base)
		wantErr(t, "RotateRefresh("+tt.old.Hash+")", s.RotateRefresh(ctx, tt.old.Hash, n), tt.want)
		wantNoRefresh(t, s, "token of a refused rotation of "+tt.old.Hash, n.Hash)
	}
	for _, hash := range []string{"revoked", "idle"} {
		if got := mustRefresh(t, s, hash); !got.UsedAt.IsZero() {
			t.Errorf("refused rotation spent %s at %v", hash, got.UsedAt)
		}
	}
}

// testRotateRefreshConcurrent: of many concurrent rotations of one token,
// exactly one wins, and only its next token is stored.
func testRotateRefreshConcurrent(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	must(t, "CreateRefresh", s.CreateRefresh(ctx, fullRefresh("r1", "fam")))
	const n = 32
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.RotateRefresh(ctx, "r1", nextRefresh(fmt.Sprintf("next-%02d", i), base.Add(time.Duration(i)*time.Second)))
		}()
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("rotations %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		default:
			wantErr(t, fmt.Sprintf("RotateRefresh #%d", i), err, sigil.ErrReplay)
		}
	}
	if winner < 0 {
		t.Fatal("no rotation succeeded")
	}
	for i := range n {
		hash := fmt.Sprintf("next-%02d", i)
		if i == winner {
			mustRefresh(t, s, hash)
		} else {
			wantNoRefresh(t, s, "token of a losing rotation", hash)
		}
	}
	if got := mustRefresh(t, s, "r1"); !got.UsedAt.Equal(base.Add(time.Duration(winner) * time.Second)) {
		t.Errorf("r1.UsedAt = %v, want the winner's (#%d) CreatedAt", got.UsedAt, winner)
	}
}

// revokedJTIs calls revoke and returns its result sorted.
func revokedJTIs(t *testing.T, what string, revoke func() ([]string, error)) []string {
	t.Helper()
	jtis, err := revoke()
	must(t, what, err)
	slices.Sort(jtis)
	return jtis
}

func testRevokeRefreshFamily(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	// Family fam: r1 → r2 → r3, r3 issued without an access token.
	must(t, "CreateRefresh", s.CreateRefresh(ctx, fullRefresh("r1", "fam")))
	must(t, "RotateRefresh(r1)", s.RotateRefresh(ctx, "r1", nextRefresh("r2", base.Add(time.Minute))))
	r3 := nextRefresh("r3", base.Add(2*time.Minute))
	r3.AccessJTI = ""
	must(t, "RotateRefresh(r2)", s.RotateRefresh(ctx, "r2", r3))
	must(t, "CreateRefresh(other)", s.CreateRefresh(ctx, fullRefresh("other", "fam-other")))

	jtis := revokedJTIs(t, "RevokeRefreshFamily", func() ([]string, error) { return s.RevokeRefreshFamily(ctx, "fam") })
	if diff := cmp.Diff([]string{"jti-r1", "jti-r2"}, jtis); diff != "" {
		t.Errorf("RevokeRefreshFamily AccessJTIs (-want +got):\n%s", diff)
	}
	for _, hash := range []string{"r1", "r2", "r3"} {
		if !mustRefresh(t, s, hash).Revoked {
			t.Errorf("%s not revoked with its family", hash)
		}
	}
	if mustRefresh(t, s, "other").Revoked {
		t.Error("another family's token was revoked")
	}
	// The family's live token is dead.
	wantErr(t, "RotateRefresh(r3) after revocation", s.RotateRefresh(ctx, "r3", nextRefresh("r4", base)), sigil.ErrReplay)
	wantNoRefresh(t, s, "token of a rotation after revocation", "r4")

	// Revoking again returns the same JTIs; an unknown family has none.
	again := revokedJTIs(t, "RevokeRefreshFamily again", func() ([]string, error) { return s.RevokeRefreshFamily(ctx, "fam") })
	if diff := cmp.Diff(jtis, again); diff != "" {
		t.Errorf("RevokeRefreshFamily again (-first +again):\n%s", diff)
	}
	if jtis, err := s.RevokeRefreshFamily(ctx, "absent"); err != nil || len(jtis) != 0 {
		t.Errorf("RevokeRefreshFamily(absent) = %q, %v; want none, nil", jtis, err)
	}
}

// testCreateRefreshRevokedFamily: a revoked family takes no new token,
// whether it had tokens when it was revoked or not (a replayed code
// revokes the family its first redemption is about to store).
func testCreateRefreshRevokedFamily(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	if jtis, err := s.RevokeRefreshFamily(ctx, "fam-empty"); err != nil || len(jtis) != 0 {
		t.Fatalf("RevokeRefreshFamily(empty family) = %q, %v; want none, nil", jtis, err)
	}
	wantErr(t, "CreateRefresh(revoked empty family)", s.CreateRefresh(ctx, fullRefresh("r1", "fam-empty")), sigil.ErrReplay)
	wantNoRefresh(t, s, "token refused by its revoked family", "r1")
	// Created revoked, it is refused all the same: the store stores
	// nothing in a revoked family.
	revoked := fullRefresh("r1", "fam-empty")
	revoked.Revoked = true
	wantErr(t, "CreateRefresh(revoked token, revoked family)", s.CreateRefresh(ctx, revoked), sigil.ErrReplay)
	wantNoRefresh(t, s, "revoked token refused by its revoked family", "r1")

	must(t, "CreateRefresh(fam)", s.CreateRefresh(ctx, fullRefresh("a1", "fam")))
	jtis := revokedJTIs(t, "RevokeRefreshFamily(fam)", func() ([]string, error) { return s.RevokeRefreshFamily(ctx, "fam") })
	if diff := cmp.Diff([]string{"jti-a1"}, jtis); diff != "" {
		t.Errorf("RevokeRefreshFamily(fam) (-want +got):\n%s", diff)
	}
	wantErr(t, "CreateRefresh(revoked family)", s.CreateRefresh(ctx, fullRefresh("a2", "fam")), sigil.ErrReplay)
	wantNoRefresh(t, s, "token refused by its revoked family", "a2")
	wantErr(t, "RotateRefresh(revoked token)", s.RotateRefresh(ctx, "a1", nextRefresh("a3", base)), sigil.ErrReplay)
	wantNoRefresh(t, s, "token of a rotation in a revoked family", "a3")

	// Revoking by user or client marks tokens, not families: the
	// families it finds have tokens, which stay revoked.
	must(t, "CreateRefresh(fam-b)", s.CreateRefresh(ctx, fullRefresh("b1", "fam-b")))
	revokedJTIs(t, "RevokeRefreshTokens(alice, web)", func() ([]string, error) { return s.RevokeRefreshTokens(ctx, "alice", "web") })
	if !mustRefresh(t, s, "b1").Revoked {
		t.Error("RevokeRefreshTokens(alice, web) left b1 live")
	}

	// Other families are unaffected, including one whose ID extends a
	// revoked one's.
	for _, fam := range []string{"fam-empty2", "fam-", "other"} {
		must(t, "CreateRefresh("+fam+")", s.CreateRefresh(ctx, fullRefresh("t-"+fam, fam)))
		if mustRefresh(t, s, "t-"+fam).Revoked {
			t.Errorf("token of family %q stored revoked", fam)
		}
	}
}

// testCreateRefreshRevokeConcurrent races a family's first token against
// the family's revocation: either the token is stored first and revoked
// with its family (its JTI returned), or it is refused; it is never left
// live.
func testCreateRefreshRevokeConcurrent(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	const n = 24
	start := make(chan struct{})
	var wg sync.WaitGroup
	created := make([]error, n)
	revoked := make([][]string, n)
	revokeErrs := make([]error, n)
	for i := range n {
		hash, fam := fmt.Sprintf("r%02d", i), fmt.Sprintf("fam-%02d", i)
		wg.Go(func() {
			<-start
			created[i] = s.CreateRefresh(ctx, fullRefresh(hash, fam))
		})
		wg.Go(func() {
			<-start
			revoked[i], revokeErrs[i] = s.RevokeRefreshFamily(ctx, fam)
		})
	}
	close(start)
	wg.Wait()

	var stored, refused int
	for i := range n {
		hash := fmt.Sprintf("r%02d", i)
		must(t, "RevokeRefreshFamily", revokeErrs[i])
		switch err := created[i]; {
		case err == nil:
			stored++
			if !mustRefresh(t, s, hash).Revoked {
				t.Errorf("%s stored live after its family's revocation", hash)
			}
			if !slices.Equal(revoked[i], []string{"jti-" + hash}) {
				t.Errorf("revocation after %s was stored returned %q, want its JTI", hash, revoked[i])
			}
		case errors.Is(err, sigil.ErrReplay):
			refused++
			wantNoRefresh(t, s, "token refused by its revoked family", hash)
			if len(revoked[i]) != 0 {
				t.Errorf("revocation before %s was refused returned %q, want none", hash, revoked[i])
			}
		default:
			t.Errorf("CreateRefresh(%s) racing its family's revocation: %v", hash, err)
		}
	}
	t.Logf("%d tokens stored then revoked, %d refused", stored, refused)
}

// testRevokeRefreshTokens revokes by user and client, by user alone and
// by client alone; each takes whole families, and nobody else's.
func testRevokeRefreshTokens(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	for _, r := range []struct{ hash, family, user, client string }{
		{"a", "f-alice-web-1", "alice", "web"},
		{"b", "f-alice-web-2", "alice", "web"},
		{"c", "f-alice-cli", "alice", "cli"},
		{"d", "f-bob-web", "bob", "web"},
		{"e", "f-bob-cli", "bob", "cli"},
		{"f", "f-carol-cli", "carol", "cli"},
		{"g", "f-dave-web", "dave", "web"},
	} {
		tok := fullRefresh(r.hash, r.family)
		tok.UserID, tok.ClientID = r.user, r.client
		must(t, "CreateRefresh", s.CreateRefresh(ctx, tok))
	}
	must(t, "RotateRefresh(a)", s.RotateRefresh(ctx, "a", nextRefresh("a2", base)))
	// The family of a token without an access token yields no JTI.
	noJTI := nextRefresh("e2", base)
	noJTI.AccessJTI, noJTI.UserID, noJTI.ClientID = "", "bob", "cli"
	must(t, "RotateRefresh(e)", s.RotateRefresh(ctx, "e", noJTI))

	revoked := map[string]bool{}
	for _, step := range []struct {
		user, client string
		want         []string // sorted JTIs
		now          []string // tokens revoked by this step
	}{
		// A withdrawn consent: alice at web, both of her families there.
		{"alice", "web", []string{"jti-a", "jti-a2", "jti-b"}, []string{"a", "a2", "b"}},
		// A user's every grant.
		{"bob", "", []string{"jti-d", "jti-e"}, []string{"d", "e", "e2"}},
		// A client's every grant, bob's revoked before and returned again.
		{"", "cli", []string{"jti-c", "jti-e", "jti-f"}, []string{"c", "f"}},
		{"carol", "web", nil, nil},
		{"nobody", "", nil, nil},
		{"", "nothing", nil, nil},
	} {
		what := fmt.Sprintf("RevokeRefreshTokens(%q, %q)", step.user, step.client)
		jtis := revokedJTIs(t, what, func() ([]string, error) { return s.RevokeRefreshTokens(ctx, step.user, step.client) })
		if diff := cmp.Diff(step.want, jtis, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s AccessJTIs (-want +got):\n%s", what, diff)
		}
		for _, hash := range step.now {
			revoked[hash] = true
		}
		for _, hash := range []string{"a", "a2", "b", "c", "d", "e", "e2", "f", "g"} {
			if got := mustRefresh(t, s, hash).Revoked; got != revoked[hash] {
				t.Errorf("after %s %s.Revoked = %v, want %v", what, hash, got, revoked[hash])
			}
		}
	}

	// Neither a user nor a client is not "everybody".
	jtis, err := s.RevokeRefreshTokens(ctx, "", "")
	if err == nil {
		t.Errorf(`RevokeRefreshTokens("", "") = %q, nil; want an error`, jtis)
	}
	if mustRefresh(t, s, "g").Revoked {
		t.Error(`RevokeRefreshTokens("", "") revoked a token`)
	}
}

// testPurgeRevokedFamilies: PurgeAuthz keeps a revoked family's mark for
// an hour after the revocation, by the store's clock, and then deletes
// it, counted with the rest.
func testPurgeRevokedFamilies(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	for _, fam := range []string{"fam-1", "fam-2"} {
		if _, err := s.RevokeRefreshFamily(ctx, fam); err != nil {
			t.Fatal(err)
		}
	}
	// Revoking again counts once.
	if _, err := s.RevokeRefreshFamily(ctx, "fam-1"); err != nil {
		t.Fatal(err)
	}

	n, err := s.PurgeAuthz(ctx, fromNow(30*time.Minute))
	must(t, "PurgeAuthz(within the hour)", err)
	if n != 0 {
		t.Errorf("PurgeAuthz within the hour after the revocations = %d, want 0", n)
	}
	wantErr(t, "CreateRefresh(revoked family) after an early purge", s.CreateRefresh(ctx, fullRefresh("r1", "fam-1")), sigil.ErrReplay)

	n, err = s.PurgeAuthz(ctx, fromNow(2*time.Hour))
	must(t, "PurgeAuthz(after the hour)", err)
	if n != 2 {
		t.Errorf("PurgeAuthz more than an hour after the revocations = %d, want 2 (the families' marks)", n)
	}
	// The mark has done its work: the family ID is free again.
	must(t, "CreateRefresh(family whose mark was purged)", s.CreateRefresh(ctx, fullRefresh("r1", "fam-1")))
	if n, err := s.PurgeAuthz(ctx, fromNow(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("PurgeAuthz again = %d, %v; want 0, nil", n, err)
	}
}
