package issuer_test

// Attack tests from the security review of revocation by delegation chain
// (package revocation). Each test states the behaviour a secure STS must
// show; each failed on main at the time of the review.

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/issuer"
)

// TestAttackChainRevocationSurvivesHangUp: a replayed code revokes the
// tokens of its first redemption and, half a second later, the tokens
// exchanged from them. The request that triggers it may be the thief's,
// and the thief hangs up at once: the chain must be revoked all the same,
// since nothing will ever retry it (the code is spent, the family gone).
func TestAttackChainRevocationSurvivesHangUp(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	p := newPKCE()
	code := newBrowser(t, n).codeFor(d.a, d.a.authParams(p, "openid read:files"), "alice", alicePassword).Get("code")
	first := n.redeem(t, d.a, code, p.verifier)
	if first.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", first.status, first.body)
	}
	at := first.str(t, "access_token")
	r := d.exchange(t, d.a.auth(), with(subjectParams(at), "audience", issuer.ClientAudience(d.b.ClientID)))
	if r.status != http.StatusOK {
		t.Fatalf("A's exchange: %d %s", r.status, r.body)
	}
	exchanged := r.str(t, "access_token")

	// The replay, from a client that gives up after 100 ms.
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.verifier}, "redirect_uri": {d.a.redirectURI}}
	req, err := http.NewRequest(http.MethodPost, n.url("/token"), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(d.a.info.ClientID), url.QueryEscape(d.a.info.ClientSecret))
	if resp, err := (&http.Client{Timeout: 100 * time.Millisecond}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the replay was answered within 100 ms (%d): it no longer waits for the chain", resp.StatusCode)
	}

	if n.active(t, d.a.auth(), at) {
		t.Error("the replayed code's access token is active")
	}
	eventually(t, 5*time.Second, "the token exchanged from the replayed code's token to be revoked", func() bool {
		return !n.active(t, d.a.auth(), exchanged)
	})
}

// TestAttackExchangeOutrunsChainRevocation: a second node, whose audit
// writer reaches the shared store late (a slow commit, a database
// failover, a queue under load), exchanges alice's token; her token is
// then revoked on the first node, whose walk of the chain reads the store
// half a second later and does not find the exchange yet. The exchanged
// token must not come out of this live: it is linked to alice's token
// only in the trail, so neither a revocation record nor its status list
// entry would ever reach it.
func TestAttackExchangeOutrunsChainRevocation(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	user := d.userAT.str(t, "access_token")

	gs := &gatedStore{AuditStore: n.srv.Core.Store, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	journal, err := audit.OpenJournal(filepath.Join(t.TempDir(), "audit.journal"))
	if err != nil {
		t.Fatal(err)
	}
	w := &audit.Writer{Journal: journal, Store: gs, Node: "lagging", Log: quietLog()}
	release := startGated(t, w, gs)
	second := issuerOn(t, n, w)

	// A exchanges alice's token at the second node.
	exchanged := make(chan reply, 1)
	go func() {
		form := with(subjectParams(user), "grant_type", grantExchange, "audience", issuer.ClientAudience(d.b.ClientID))
		req, _ := http.NewRequest(http.MethodPost, second+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(d.a.info.ClientID), url.QueryEscape(d.a.info.ClientSecret))
		exchanged <- n.do(t, req)
	}()
	select {
	case <-gs.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the second node's audit writer never reached the store")
	}

	// alice's token is revoked on the first node meanwhile.
	if r := n.postForm(t, "/revoke", url.Values{"token": {user}}, d.a.auth()); r.status != http.StatusOK {
		t.Fatalf("RFC 7009 of alice's token: %d %s", r.status, r.body)
	}
	release()
	var r reply
	select {
	case r = <-exchanged:
	case <-time.After(10 * time.Second):
		t.Fatal("the exchange never finished")
	}
	if r.status != http.StatusOK {
		return // refused: nothing escaped
	}
	tok := r.str(t, "access_token")
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n.active(t, d.a.auth(), tok) {
		t.Errorf("a token exchanged from alice's token is active after her token was revoked")
	}
}

// TestAttackChainRevocationAfterGrantChange: agent A exchanged alice's
// token, then lost the token exchange grant (the operator narrowed it).
// A's revocation of alice's token through RFC 7009 must still take the
// token exchanged from it: what A may do now says nothing about what it
// did while its token lived.
func TestAttackChainRevocationAfterGrantChange(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	user := d.userAT.str(t, "access_token")
	r := d.exchange(t, d.a.auth(), with(subjectParams(user), "audience", issuer.ClientAudience(d.b.ClientID)))
	if r.status != http.StatusOK {
		t.Fatalf("A's exchange: %d %s", r.status, r.body)
	}
	exchanged := r.str(t, "access_token")

	ctx := context.Background()
	c, err := n.srv.Core.Store.Client(ctx, d.a.info.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	c.GrantTypes = slices.DeleteFunc(c.GrantTypes, func(g string) bool { return g == grantExchange })
	if err := n.srv.Core.Store.UpdateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	n.srv.Issuer.Cache.Invalidate()

	if r := n.postForm(t, "/revoke", url.Values{"token": {user}}, d.a.auth()); r.status != http.StatusOK {
		t.Fatalf("RFC 7009 of alice's token: %d %s", r.status, r.body)
	}
	if n.active(t, d.a.auth(), exchanged) {
		t.Errorf("the token A exchanged from alice's token is active after her token was revoked")
	}
}
