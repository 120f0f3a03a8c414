package revocation_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/revocation"
	"github.com/sigil-sts/sigil/store/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestChain: the tokens exchanged from a revoked one, as subject or actor
// token, are revoked at every depth; a refused exchange, an exchange older
// than any live token, and other chains are not followed.
func TestChain(t *testing.T) {
	st := openStore(t)
	now := time.Now()
	trail := audit.Direct{Store: st}
	issued := func(jti, subjectToken, actorToken string, at time.Time) {
		t.Helper()
		err := trail.Append(t.Context(), audit.Record{Time: at, Event: audit.TokenIssued, Outcome: audit.Success,
			ClientID: "agent", JTI: jti, SubjectTokenJTI: subjectToken, ActorTokenJTI: actorToken})
		if err != nil {
			t.Fatal(err)
		}
	}
	issued("root", "", "", now)
	issued("by-subject", "root", "", now)
	issued("by-actor", "other", "root", now)
	issued("grandchild", "by-subject", "", now)
	issued("great-grandchild", "grandchild", "", now)
	issued("unrelated", "other", "", now)
	issued("long-ago", "root", "", now.Add(-2*time.Hour))
	if err := trail.Append(t.Context(), audit.Record{Time: now, Event: audit.TokenRefused, Outcome: audit.Failure,
		ClientID: "agent", JTI: "refused", SubjectTokenJTI: "root"}); err != nil {
		t.Fatal(err)
	}

	r := &revocation.Revoker{Store: st, Lifetime: time.Hour, Settle: time.Millisecond}
	if _, err := r.JTIs(t.Context(), []string{"root"}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Chain(t.Context(), []string{"root", "root", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"by-subject", "by-actor", "grandchild", "great-grandchild"}
	if !slices.Equal(res.Exchanged, want) {
		t.Errorf("Chain revoked %v, want %v", res.Exchanged, want)
	}
	for _, jti := range []string{"root", "by-subject", "by-actor", "grandchild", "great-grandchild", "unrelated", "long-ago", "refused", "other"} {
		revoked, err := st.Revoked(t.Context(), sigil.TokenRef{JTI: jti, ClientID: "agent", Subject: "u", IssuedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		if wantRevoked := jti == "root" || slices.Contains(want, jti); revoked != wantRevoked {
			t.Errorf("%s revoked %v, want %v", jti, revoked, wantRevoked)
		}
	}
}

// TestChainFlushesAndStops: Chain flushes the caller's audit queue before
// each search, and a cancelled context stops it while it waits.
func TestChainFlushesAndStops(t *testing.T) {
	st := openStore(t)
	flushes := 0
	r := &revocation.Revoker{Store: st, Lifetime: time.Hour, Settle: time.Millisecond,
		Flush: func(context.Context) error { flushes++; return nil }}
	if _, err := r.Chain(t.Context(), []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if flushes != 1 {
		t.Errorf("%d flushes for one level, want 1", flushes)
	}
	if res, err := r.Chain(t.Context(), nil); err != nil || len(res.Exchanged) != 0 || flushes != 1 {
		t.Errorf("Chain of nothing: %+v, %v, %d flushes; want nothing done", res, err, flushes)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r.Settle = time.Hour
	if _, err := r.Chain(ctx, []string{"a"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Chain with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestExchanged: Exchanged finds a token exchanged from jti at once, as
// subject or actor token, within the lifetime window only.
func TestExchanged(t *testing.T) {
	st := openStore(t)
	now := time.Now()
	trail := audit.Direct{Store: st}
	for _, r := range []audit.Record{
		{Time: now, JTI: "by-subject", SubjectTokenJTI: "root"},
		{Time: now, JTI: "by-actor", SubjectTokenJTI: "other", ActorTokenJTI: "actor"},
		{Time: now.Add(-2 * time.Hour), JTI: "long-ago", SubjectTokenJTI: "old"},
	} {
		r.Event, r.Outcome, r.ClientID = audit.TokenIssued, audit.Success, "agent"
		if err := trail.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	r := &revocation.Revoker{Store: st, Lifetime: time.Hour, Settle: time.Hour}
	for jti, want := range map[string]bool{"root": true, "actor": true, "other": true, "old": false, "by-subject": false} {
		got, err := r.Exchanged(t.Context(), jti)
		if err != nil || got != want {
			t.Errorf("Exchanged(%s) = %v, %v; want %v", jti, got, err, want)
		}
	}
}

// TestChainIDTokens: the ID token issued with a revoked access token is
// revoked with it, and so is what was exchanged from that ID token.
func TestChainIDTokens(t *testing.T) {
	st := openStore(t)
	now := time.Now()
	trail := audit.Direct{Store: st}
	for _, r := range []audit.Record{
		{JTI: "access", Detail: map[string]string{audit.DetailIDTokenJTI: "id-token"}},
		{JTI: "from-id-token", SubjectTokenJTI: "id-token"},
		{JTI: "other-access", Detail: map[string]string{audit.DetailIDTokenJTI: "other-id-token"}},
	} {
		r.Time, r.Event, r.Outcome, r.ClientID = now, audit.TokenIssued, audit.Success, "rp"
		if err := trail.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	r := &revocation.Revoker{Store: st, Lifetime: time.Hour, Settle: time.Millisecond}
	res, err := r.Chain(t.Context(), []string{"access"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.IDTokens, []string{"id-token"}) || !slices.Equal(res.Exchanged, []string{"from-id-token"}) {
		t.Errorf("Chain: ID tokens %v, exchanged %v; want [id-token], [from-id-token]", res.IDTokens, res.Exchanged)
	}
	for jti, want := range map[string]bool{"id-token": true, "from-id-token": true, "other-id-token": false} {
		got, err := st.Revoked(t.Context(), sigil.TokenRef{JTI: jti, ClientID: "rp", Subject: "u", IssuedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s revoked %v, want %v", jti, got, want)
		}
	}
}
