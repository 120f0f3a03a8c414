package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	sigil "github.com/sigil-sts/sigil"
)

// fromNow returns the real time d from now, at microsecond precision.
// Stores compare expiries with their own clock, which the suite cannot
// set: live records expire hours ahead and expired ones hours ago.
func fromNow(d time.Duration) time.Time {
	return time.Now().Add(d).UTC().Truncate(time.Microsecond)
}

// fullSession returns a live session with every field set.
func fullSession(id string) *sigil.Session {
	return &sigil.Session{
		ID:        id,
		UserID:    "alice",
		AuthTime:  base,
		AMR:       []string{"pwd", "otp"},
		ExpiresAt: fromNow(8 * time.Hour),
	}
}

// fullCode returns a live, unredeemed code with every field set.
func fullCode(hash string) *sigil.AuthCode {
	return &sigil.AuthCode{
		Hash:          hash,
		ClientID:      "web",
		UserID:        "alice",
		RedirectURI:   "https://app.example.com/cb?x=1",
		Scopes:        []string{"openid", "profile", "invoices:read"},
		Audience:      []string{"https://api.example.com"},
		Nonce:         "n-0S6_WzA2Mj",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		AuthTime:      base,
		AMR:           []string{"pwd"},
		ACR:           "urn:example:loa:2",
		SessionID:     "sess-1",
		ExpiresAt:     fromNow(time.Hour),
		// Stored and returned byte for byte.
		AuthorizationDetails: `[{"type":"mcp_tool","resource":"https://mcp.example.com/a&b","tools":["search","fetch"]}]`,
	}
}

func mustSession(t *testing.T, s sigil.Store, id string) *sigil.Session {
	t.Helper()
	se, err := s.Session(t.Context(), id)
	must(t, "Session("+id+")", err)
	return se
}

func testSessions(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullSession("s1")
	must(t, "CreateSession", s.CreateSession(ctx, want))
	got := mustSession(t, s, "s1")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Session round trip (-want +got):\n%s", diff)
	}
	// No aliasing either way.
	orig := fullSession("s1")
	orig.ExpiresAt = want.ExpiresAt
	want.AMR[0] = "changed"
	got.AMR[1] = "changed"
	if diff := cmp.Diff(orig, mustSession(t, s, "s1")); diff != "" {
		t.Errorf("stored session changed through aliases (-want +got):\n%s", diff)
	}

	dup := fullSession("s1")
	dup.UserID = "mallory"
	wantErr(t, "CreateSession(duplicate)", s.CreateSession(ctx, dup), sigil.ErrConflict)
	if got := mustSession(t, s, "s1"); got.UserID != "alice" {
		t.Errorf("after conflicting create UserID = %q, want alice", got.UserID)
	}

	expired := fullSession("s-expired")
	expired.ExpiresAt = fromNow(-time.Hour)
	must(t, "CreateSession(expired)", s.CreateSession(ctx, expired))
	_, err := s.Session(ctx, "s-expired")
	wantErr(t, "Session(expired)", err, sigil.ErrNotFound)
	_, err = s.Session(ctx, "absent")
	wantErr(t, "Session(absent)", err, sigil.ErrNotFound)

	must(t, "CreateSession(s2)", s.CreateSession(ctx, fullSession("s2")))
	must(t, "DeleteSession(s1)", s.DeleteSession(ctx, "s1"))
	_, err = s.Session(ctx, "s1")
	wantErr(t, "Session(s1) after delete", err, sigil.ErrNotFound)
	must(t, "DeleteSession(s1) again", s.DeleteSession(ctx, "s1"))
	must(t, "DeleteSession(absent)", s.DeleteSession(ctx, "absent"))
	mustSession(t, s, "s2")
}

func testCodeCreate(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	c := fullCode("c1")
	must(t, "CreateCode", s.CreateCode(ctx, c))
	dup := fullCode("c1")
	dup.ClientID = "other"
	wantErr(t, "CreateCode(duplicate)", s.CreateCode(ctx, dup), sigil.ErrConflict)

	// Every field round-trips through the redemption, which returns the
	// code with it, and the store keeps no reference to the caller's
	// slices, nor hands out its own.
	want := fullCode("c1")
	want.ExpiresAt = c.ExpiresAt
	c.Scopes[0], c.AMR[0] = "changed", "changed"
	r := sigil.Redemption{At: fromNow(0), AccessJTI: "jti-1", RefreshFamily: "fam-1"}
	got, err := s.RedeemCode(ctx, "c1", "web", r)
	must(t, "RedeemCode", err)
	want.Redemption = &r
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RedeemCode result (-want +got):\n%s", diff)
	}
	got.Audience[0] = "changed"
	got.Redemption.AccessJTI = "changed"
	got, err = s.RedeemCode(ctx, "c1", "web", sigil.Redemption{At: base})
	wantErr(t, "RedeemCode(replay)", err, sigil.ErrReplay)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored code changed through aliases (-want +got):\n%s", diff)
	}

	// A code with every optional field empty.
	bare := &sigil.AuthCode{Hash: "bare", AuthTime: base, ExpiresAt: fromNow(time.Hour)}
	must(t, "CreateCode(bare)", s.CreateCode(ctx, bare))
	got, err = s.RedeemCode(ctx, "bare", "", sigil.Redemption{At: base})
	must(t, "RedeemCode(bare)", err)
	bare.Redemption = &sigil.Redemption{At: base}
	if diff := cmp.Diff(bare, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("RedeemCode(bare) (-want +got):\n%s", diff)
	}
}

func testRedeemCode(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullCode("c1")
	must(t, "CreateCode", s.CreateCode(ctx, want))
	first := sigil.Redemption{At: fromNow(0), AccessJTI: "jti-1", RefreshFamily: "fam-1"}
	got, err := s.RedeemCode(ctx, "c1", "web", first)
	must(t, "RedeemCode", err)
	want.Redemption = &first
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RedeemCode (-want +got):\n%s", diff)
	}

	// A replay gets the code with the first redemption, not its own.
	second := sigil.Redemption{At: fromNow(time.Second), AccessJTI: "jti-2"}
	got, err = s.RedeemCode(ctx, "c1", "web", second)
	wantErr(t, "RedeemCode(replay)", err, sigil.ErrReplay)
	if got == nil {
		t.Fatal("RedeemCode(replay) returned no code")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RedeemCode(replay) (-want +got):\n%s", diff)
	}
	got, err = s.RedeemCode(ctx, "c1", "web", second)
	wantErr(t, "RedeemCode(second replay)", err, sigil.ErrReplay)
	if got == nil || got.Redemption == nil || got.Redemption.AccessJTI != "jti-1" {
		t.Errorf("RedeemCode(second replay) = %+v, want the first redemption", got)
	}

	// A zero At is set by the store.
	must(t, "CreateCode(c2)", s.CreateCode(ctx, fullCode("c2")))
	before := time.Now()
	got, err = s.RedeemCode(ctx, "c2", "web", sigil.Redemption{AccessJTI: "jti-3"})
	after := time.Now()
	must(t, "RedeemCode(zero At)", err)
	checkStamp(t, "Redemption.At", got.Redemption.At, before, after)

	c, err := s.RedeemCode(ctx, "absent", "web", first)
	wantErr(t, "RedeemCode(absent)", err, sigil.ErrNotFound)
	if c != nil {
		t.Errorf("RedeemCode(absent) = %+v, want nil", c)
	}
}

// testRedeemCodeExpired: an expired code cannot be redeemed, but a
// redeemed one is still recognised as a replay once it has expired.
func testRedeemCodeExpired(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	expired := fullCode("expired")
	expired.ExpiresAt = fromNow(-time.Hour)
	must(t, "CreateCode(expired)", s.CreateCode(ctx, expired))
	c, err := s.RedeemCode(ctx, "expired", "web", sigil.Redemption{At: base, AccessJTI: "j"})
	wantErr(t, "RedeemCode(expired)", err, sigil.ErrNotFound)
	if c != nil {
		t.Errorf("RedeemCode(expired) = %+v, want nil", c)
	}
	// Still unredeemed: the failed attempt recorded nothing.
	c, err = s.RedeemCode(ctx, "expired", "web", sigil.Redemption{At: base, AccessJTI: "j"})
	wantErr(t, "RedeemCode(expired) again", err, sigil.ErrNotFound)

	// The suite cannot move the store's clock, so this code expires for
	// real, shortly after its redemption.
	const life = 500 * time.Millisecond
	short := fullCode("short")
	short.ExpiresAt = time.Now().Add(life)
	must(t, "CreateCode(short)", s.CreateCode(ctx, short))
	first := sigil.Redemption{At: base, AccessJTI: "jti-1", RefreshFamily: "fam-1"}
	if _, err := s.RedeemCode(ctx, "short", "web", first); err != nil {
		t.Fatalf("RedeemCode(short): %v (took longer than %v?)", err, life)
	}
	time.Sleep(time.Until(short.ExpiresAt) + 50*time.Millisecond)
	c, err = s.RedeemCode(ctx, "short", "web", sigil.Redemption{At: base, AccessJTI: "jti-2"})
	wantErr(t, "RedeemCode(redeemed, then expired)", err, sigil.ErrReplay)
	if c == nil || c.Redemption == nil || *c.Redemption != first {
		t.Errorf("RedeemCode(redeemed, then expired) = %+v, want the code with its first redemption", c)
	}
}

// testRedeemCodeConcurrent: of many concurrent redemptions of one code,
// exactly one succeeds, and every other one is told of it.
func testRedeemCodeConcurrent(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	must(t, "CreateCode", s.CreateCode(ctx, fullCode("c1")))
	const n = 32
	start := make(chan struct{})
	var wg sync.WaitGroup
	codes := make([]*sigil.AuthCode, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], errs[i] = s.RedeemCode(ctx, "c1", "web", sigil.Redemption{At: base, AccessJTI: fmt.Sprint(i)})
		}()
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("redemptions %d and %d both succeeded", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no redemption succeeded")
	}
	for i, err := range errs {
		if i == winner {
			continue
		}
		wantErr(t, fmt.Sprintf("RedeemCode #%d", i), err, sigil.ErrReplay)
		if c := codes[i]; c == nil || c.Redemption == nil || c.Redemption.AccessJTI != fmt.Sprint(winner) {
			t.Errorf("RedeemCode #%d returned %+v, want the winner's (#%d) redemption", i, c, winner)
		}
	}
}

// testRedeemCodeOtherClient: a code presented by another client is
// absent to it, before and after its redemption, and neither spent nor
// marked: its own client redeems it afterwards and replays it as usual.
func testRedeemCodeOtherClient(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullCode("c1")
	must(t, "CreateCode", s.CreateCode(ctx, want))
	for _, client := range []string{"mallory", "", "WEB", "web "} {
		c, err := s.RedeemCode(ctx, "c1", client, sigil.Redemption{At: base, AccessJTI: "jti-mallory", RefreshFamily: "fam-mallory"})
		wantErr(t, fmt.Sprintf("RedeemCode(client %q)", client), err, sigil.ErrNotFound)
		if c != nil {
			t.Errorf("RedeemCode(client %q) = %+v, want nil", client, c)
		}
	}

	first := sigil.Redemption{At: fromNow(0), AccessJTI: "jti-1", RefreshFamily: "fam-1"}
	got, err := s.RedeemCode(ctx, "c1", "web", first)
	must(t, "RedeemCode(its client) after another's", err)
	want.Redemption = &first
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RedeemCode(its client) after another's (-want +got):\n%s", diff)
	}

	// Redeemed, the code is still absent to the other client: no replay,
	// so nothing the code issued would be revoked on its word.
	c, err := s.RedeemCode(ctx, "c1", "mallory", sigil.Redemption{At: base, AccessJTI: "jti-mallory"})
	wantErr(t, "RedeemCode(redeemed, other client)", err, sigil.ErrNotFound)
	if c != nil {
		t.Errorf("RedeemCode(redeemed, other client) = %+v, want nil", c)
	}
	got, err = s.RedeemCode(ctx, "c1", "web", sigil.Redemption{At: base, AccessJTI: "jti-2"})
	wantErr(t, "RedeemCode(its client, replay)", err, sigil.ErrReplay)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RedeemCode(its client, replay) (-want +got):\n%s", diff)
	}
}

func testConsents(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	cs, err := s.Consents(ctx, "alice")
	must(t, "Consents(none)", err)
	if len(cs) != 0 {
		t.Fatalf("Consents with none stored = %d, want 0", len(cs))
	}
	_, err = s.Consent(ctx, "alice", "web")
	wantErr(t, "Consent(absent)", err, sigil.ErrNotFound)

	want := &sigil.Consent{UserID: "alice", ClientID: "web", Scopes: []string{"openid", "email"},
		Audience: []string{"https://api.example.com"}, GrantedAt: base}
	must(t, "SaveConsent", s.SaveConsent(ctx, want))
	got, err := s.Consent(ctx, "alice", "web")
	must(t, "Consent", err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Consent round trip (-want +got):\n%s", diff)
	}
	want.Scopes[0] = "changed"
	got.Audience[0] = "changed"
	got, err = s.Consent(ctx, "alice", "web")
	must(t, "Consent", err)
	if got.Scopes[0] != "openid" || got.Audience[0] != "https://api.example.com" {
		t.Errorf("stored consent changed through aliases: %+v", got)
	}

	// Saving again replaces every field.
	repl := &sigil.Consent{UserID: "alice", ClientID: "web", Scopes: []string{"openid"}, GrantedAt: base.Add(time.Hour)}
	must(t, "SaveConsent(replace)", s.SaveConsent(ctx, repl))
	got, err = s.Consent(ctx, "alice", "web")
	must(t, "Consent after replace", err)
	if diff := cmp.Diff(repl, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Consent after replace (-want +got):\n%s", diff)
	}

	// Consents lists one user's, ordered by client ID byte-wise.
	for _, client := range []string{"b", "B", "a10", "a9", "é"} {
		must(t, "SaveConsent", s.SaveConsent(ctx, &sigil.Consent{UserID: "alice", ClientID: client, GrantedAt: base}))
	}
	must(t, "SaveConsent(bob)", s.SaveConsent(ctx, &sigil.Consent{UserID: "bob", ClientID: "web", GrantedAt: base}))
	cs, err = s.Consents(ctx, "alice")
	must(t, "Consents", err)
	var clients []string
	for _, c := range cs {
		if c.UserID != "alice" {
			t.Errorf("Consents(alice) lists a consent of %q", c.UserID)
		}
		clients = append(clients, c.ClientID)
	}
	if diff := cmp.Diff([]string{"B", "a10", "a9", "b", "web", "é"}, clients); diff != "" {
		t.Errorf("Consents(alice) clients (-want +got):\n%s", diff)
	}

	must(t, "DeleteConsent", s.DeleteConsent(ctx, "alice", "web"))
	_, err = s.Consent(ctx, "alice", "web")
	wantErr(t, "Consent after delete", err, sigil.ErrNotFound)
	wantErr(t, "DeleteConsent again", s.DeleteConsent(ctx, "alice", "web"), sigil.ErrNotFound)
	if _, err := s.Consent(ctx, "bob", "web"); err != nil {
		t.Errorf("DeleteConsent(alice, web) took bob's: %v", err)
	}
}

// fullPushed returns a live pushed request with every field set.
func fullPushed(hash string) *sigil.PushedRequest {
	return &sigil.PushedRequest{
		Hash:      hash,
		ClientID:  "web",
		Params:    "response_type=code&client_id=web&scope=openid+profile&state=%C3%A9",
		ExpiresAt: fromNow(time.Minute),
	}
}

func testPushedRequest(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullPushed("p1")
	must(t, "PushRequest", s.PushRequest(ctx, want))
	dup := fullPushed("p1")
	dup.Params = "other"
	wantErr(t, "PushRequest(duplicate)", s.PushRequest(ctx, dup), sigil.ErrConflict)

	got, err := s.TakePushedRequest(ctx, "p1", "web")
	must(t, "TakePushedRequest", err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TakePushedRequest (-want +got):\n%s", diff)
	}
	// Each request_uri works once.
	got, err = s.TakePushedRequest(ctx, "p1", "web")
	wantErr(t, "TakePushedRequest again", err, sigil.ErrNotFound)
	if got != nil {
		t.Errorf("TakePushedRequest again = %+v, want nil", got)
	}

	expired := fullPushed("p-expired")
	expired.ExpiresAt = fromNow(-time.Minute)
	must(t, "PushRequest(expired)", s.PushRequest(ctx, expired))
	_, err = s.TakePushedRequest(ctx, "p-expired", "web")
	wantErr(t, "TakePushedRequest(expired)", err, sigil.ErrNotFound)
	_, err = s.TakePushedRequest(ctx, "absent", "web")
	wantErr(t, "TakePushedRequest(absent)", err, sigil.ErrNotFound)

	// Concurrent takes: one gets the request.
	must(t, "PushRequest(p2)", s.PushRequest(ctx, fullPushed("p2")))
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.TakePushedRequest(ctx, "p2", "web")
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else {
			wantErr(t, "concurrent TakePushedRequest", err, sigil.ErrNotFound)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent takes of one request succeeded, want 1", wins)
	}
}

// testPushedRequestOtherClient: another client's take finds nothing and
// leaves the request for its own client.
func testPushedRequestOtherClient(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullPushed("p1")
	must(t, "PushRequest", s.PushRequest(ctx, want))
	for _, client := range []string{"mallory", "", "WEB"} {
		p, err := s.TakePushedRequest(ctx, "p1", client)
		wantErr(t, fmt.Sprintf("TakePushedRequest(client %q)", client), err, sigil.ErrNotFound)
		if p != nil {
			t.Errorf("TakePushedRequest(client %q) = %+v, want nil", client, p)
		}
	}
	got, err := s.TakePushedRequest(ctx, "p1", "web")
	must(t, "TakePushedRequest(its client) after another's", err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TakePushedRequest(its client) (-want +got):\n%s", diff)
	}
	_, err = s.TakePushedRequest(ctx, "p1", "web")
	wantErr(t, "TakePushedRequest(its client) again", err, sigil.ErrNotFound)
}

// testDeleteSessions: a user's sessions end together, and the count is of
// the live ones; other users keep theirs.
func testDeleteSessions(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	for _, se := range []struct {
		id, user string
		live     bool
	}{
		{"a1", "alice", true}, {"a2", "alice", true}, {"a-expired", "alice", false},
		{"b1", "bob", true}, {"alice", "alicia", true},
	} {
		x := fullSession(se.id)
		x.UserID = se.user
		if !se.live {
			x.ExpiresAt = fromNow(-time.Hour)
		}
		must(t, "CreateSession", s.CreateSession(ctx, x))
	}

	n, err := s.DeleteSessions(ctx, "alice")
	must(t, "DeleteSessions(alice)", err)
	if n != 2 {
		t.Errorf("DeleteSessions(alice) = %d, want 2 (her live sessions)", n)
	}
	for _, id := range []string{"a1", "a2"} {
		_, err := s.Session(ctx, id)
		wantErr(t, "Session("+id+") after DeleteSessions", err, sigil.ErrNotFound)
	}
	for _, id := range []string{"b1", "alice"} {
		if _, err := s.Session(ctx, id); err != nil {
			t.Errorf("another user's session %s after DeleteSessions(alice): %v", id, err)
		}
	}
	// The expired one went too: nothing of alice's is left to purge.
	if n, err := s.PurgeAuthz(ctx, fromNow(0)); err != nil || n != 0 {
		t.Errorf("PurgeAuthz after DeleteSessions = %d, %v; want 0, nil", n, err)
	}

	for _, user := range []string{"alice", "nobody", ""} {
		if n, err := s.DeleteSessions(ctx, user); err != nil || n != 0 {
			t.Errorf("DeleteSessions(%q) = %d, %v; want 0, nil", user, n, err)
		}
	}
	mustSession(t, s, "b1")
}

// testPurgeAuthz purges at an instant ten hours ahead, so that records
// on either side of it are still live for lookups by the real clock.
func testPurgeAuthz(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	now := fromNow(10 * time.Hour)
	gone, kept := now.Add(-time.Hour), now.Add(time.Hour)

	for id, exp := range map[string]time.Time{"s-gone": gone, "s-kept": kept} {
		se := fullSession(id)
		se.ExpiresAt = exp
		must(t, "CreateSession", s.CreateSession(ctx, se))
	}
	// Redeemed codes are kept an hour past their expiry.
	for hash, exp := range map[string]time.Time{
		"c-gone": gone, "c-kept": kept,
		"c-redeemed-gone": now.Add(-90 * time.Minute), "c-redeemed-kept": now.Add(-30 * time.Minute),
	} {
		c := fullCode(hash)
		c.ExpiresAt = exp
		must(t, "CreateCode", s.CreateCode(ctx, c))
	}
	for _, hash := range []string{"c-redeemed-gone", "c-redeemed-kept"} {
		_, err := s.RedeemCode(ctx, hash, "web", sigil.Redemption{At: base, AccessJTI: "j-" + hash})
		must(t, "RedeemCode", err)
	}
	// Refresh families are kept until their ExpiresAt, however long they
	// have been idle, revoked ones too; a family's access tokens go with
	// it, even one that would outlive it.
	fams := map[string]*sigil.RefreshFamily{}
	for id, exp := range map[string]time.Time{"f-gone": gone, "f-kept": kept, "f-revoked": kept} {
		f := fullFamily(id)
		f.IdleExpiresAt, f.ExpiresAt = fromNow(-time.Hour), exp
		must(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, f, sigil.IssuedToken{JTI: "jti-" + id, ExpiresAt: kept}))
		fams[id] = f
	}
	revokeFamily(t, s, "f-revoked", "jti-f-revoked")
	fams["f-revoked"].Revoked = true
	// A live family's access tokens go at their own expiry: jti-old is
	// purged, jti-new kept.
	f := fullFamily("f-access")
	f.ExpiresAt = kept
	must(t, "CreateRefreshFamily(f-access)", s.CreateRefreshFamily(ctx, f, sigil.IssuedToken{JTI: "jti-old", ExpiresAt: gone}))
	r := next(f, "f-access-h1")
	r.Access = sigil.IssuedToken{JTI: "jti-new", ExpiresAt: kept}
	must(t, "RotateRefresh(f-access)", s.RotateRefresh(ctx, r))
	fams["f-access"] = rotated(f, r)
	// A family revoked before it existed is remembered for an hour.
	revokeFamily(t, s, "f-early")
	for _, f := range fams {
		wantFamily(t, s, "before the purge", f)
	}
	for hash, exp := range map[string]time.Time{"p-gone": gone, "p-kept": kept} {
		p := fullPushed(hash)
		p.ExpiresAt = exp
		must(t, "PushRequest", s.PushRequest(ctx, p))
	}
	// Consents do not expire.
	must(t, "SaveConsent", s.SaveConsent(ctx, &sigil.Consent{UserID: "alice", ClientID: "web", GrantedAt: base}))

	n, err := s.PurgeAuthz(ctx, now)
	must(t, "PurgeAuthz", err)
	if n != 6 {
		t.Errorf("PurgeAuthz = %d, want 6 (a session, two codes, a refresh family, a family revoked before it existed, a pushed request)", n)
	}

	_, err = s.Session(ctx, "s-gone")
	wantErr(t, "Session(s-gone) after purge", err, sigil.ErrNotFound)
	mustSession(t, s, "s-kept")

	_, err = s.RedeemCode(ctx, "c-gone", "web", sigil.Redemption{At: base})
	wantErr(t, "RedeemCode(c-gone) after purge", err, sigil.ErrNotFound)
	_, err = s.RedeemCode(ctx, "c-redeemed-gone", "web", sigil.Redemption{At: base})
	wantErr(t, "RedeemCode(c-redeemed-gone) after purge", err, sigil.ErrNotFound)
	c, err := s.RedeemCode(ctx, "c-redeemed-kept", "web", sigil.Redemption{At: base})
	wantErr(t, "RedeemCode(c-redeemed-kept) after purge", err, sigil.ErrReplay)
	if c == nil || c.Redemption == nil || c.Redemption.AccessJTI != "j-c-redeemed-kept" {
		t.Errorf("RedeemCode(c-redeemed-kept) = %+v, want its first redemption", c)
	}
	_, err = s.RedeemCode(ctx, "c-kept", "web", sigil.Redemption{At: base})
	must(t, "RedeemCode(c-kept) after purge", err)

	wantNoFamily(t, s, "RefreshFamily(f-gone) after purge", "f-gone")
	delete(fams, "f-gone")
	for _, f := range fams {
		wantFamily(t, s, "after purge", f)
	}

	_, err = s.TakePushedRequest(ctx, "p-gone", "web")
	wantErr(t, "TakePushedRequest(p-gone) after purge", err, sigil.ErrNotFound)
	if _, err := s.TakePushedRequest(ctx, "p-kept", "web"); err != nil {
		t.Errorf("TakePushedRequest(p-kept) after purge: %v", err)
	}
	if _, err := s.Consent(ctx, "alice", "web"); err != nil {
		t.Errorf("Consent after purge: %v", err)
	}

	n, err = s.PurgeAuthz(ctx, now)
	must(t, "PurgeAuthz again", err)
	if n != 0 {
		t.Errorf("PurgeAuthz again = %d, want 0", n)
	}

	// The purged access tokens are no longer returned by a revocation:
	// f-access's expired one, and f-gone's, whose ID is free again.
	revokeFamily(t, s, "f-access", "jti-new")
	revokeFamily(t, s, "f-kept", "jti-f-kept")
	must(t, "CreateRefreshFamily(f-gone) after purge", s.CreateRefreshFamily(ctx, fullFamily("f-gone"), issued("jti-f-gone-2")))
	revokeFamily(t, s, "f-gone", "jti-f-gone-2")
	// The revocation before f-early existed is forgotten.
	createFamily(t, s, fullFamily("f-early"))
}
