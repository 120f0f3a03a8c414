package issuer_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/issuer"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// TestRevocationReachesExchangedTokens: revoking a token revokes the tokens
// exchanged from it, as subject token or as actor token, at any depth,
// and nothing above it: through RFC 7009, the admin API by jti, and the
// deletion of the agent. Each token is checked both ways a resource
// server can: introspection and its status list entry.
func TestRevocationReachesExchangedTokens(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.StatusListTTL = time.Second })
	n.admin().RevokeSettle = time.Millisecond
	d := newDelegation(t, n, nil)
	user := d.userAT.str(t, "access_token") // alice's token at agent A
	a, b := d.a.auth(), basic(d.b)

	// chain has A exchange alice's token (with actor as its actor token,
	// when set) for one addressed to sub-agent B, and B exchange that for
	// one for the tool: alice → A → B.
	chain := func(actor string) (ab, bTool string) {
		t.Helper()
		p := with(subjectParams(user), "audience", issuer.ClientAudience(d.b.ClientID))
		if actor != "" {
			p = with(p, "actor_token", actor, "actor_token_type", issuer.TokenTypeAccessToken)
		}
		r := d.exchange(t, a, p)
		if r.status != http.StatusOK {
			t.Fatalf("A's exchange: %d %s", r.status, r.body)
		}
		ab = r.str(t, "access_token")
		r = d.exchange(t, b, with(subjectParams(ab), "resource", toolURL))
		if r.status != http.StatusOK {
			t.Fatalf("B's exchange: %d %s", r.status, r.body)
		}
		return ab, r.str(t, "access_token")
	}
	type tok struct {
		name, raw string
		caller    auth // who may introspect it
	}
	var all []tok
	add := func(name, raw string, caller auth) { all = append(all, tok{name, raw, caller}) }
	// want checks every token: revoked exactly when named.
	want := func(step string, revoked ...string) {
		t.Helper()
		sl := &verify.StatusLists{Keys: n.srv.Core.Keys, Issuer: n.issuer}
		for _, tk := range all {
			wantRevoked := false
			for _, r := range revoked {
				wantRevoked = wantRevoked || r == tk.name
			}
			if active := n.active(t, tk.caller, tk.raw); active == wantRevoked {
				t.Errorf("after %s: %s active %v, want %v", step, tk.name, active, !wantRevoked)
			}
			var c token.Claims
			if err := c.UnmarshalJSON(mustJSON(t, claims(t, tk.raw))); err != nil {
				t.Fatal(err)
			}
			err := sl.Check(context.Background(), c.StatusList())
			if isRevoked := errors.Is(err, verify.ErrRevoked); isRevoked != wantRevoked || (err != nil && !isRevoked) {
				t.Errorf("after %s: %s status %v, want revoked %v", step, tk.name, err, wantRevoked)
			}
		}
	}

	add("user", user, a)
	actor1 := n.token(t, d.a.info, nil)
	add("actor1", actor1, a)
	ab1, bt1 := chain(actor1)
	add("ab1", ab1, a)
	add("bt1", bt1, b)
	actor2 := n.token(t, d.a.info, nil)
	add("actor2", actor2, a)
	ab2, bt2 := chain(actor2)
	add("ab2", ab2, a)
	add("bt2", bt2, b)
	ab3, bt3 := chain("")
	add("ab3", ab3, a)
	add("bt3", bt3, b)
	want("the exchanges")

	// A leaf: nothing above it goes.
	if r := n.postForm(t, "/revoke", url.Values{"token": {bt3}}, b); r.status != http.StatusOK {
		t.Fatalf("RFC 7009 of B's token: %d %s", r.status, r.body)
	}
	want("revoking B's last token", "bt3")

	// An actor token: what A exchanged with it, and what B exchanged
	// from that, go; alice's token stays.
	if r := n.postForm(t, "/revoke", url.Values{"token": {actor1}}, a); r.status != http.StatusOK {
		t.Fatalf("RFC 7009 of A's actor token: %d %s", r.status, r.body)
	}
	want("revoking actor token 1", "bt3", "actor1", "ab1", "bt1")

	// The middle of a chain, by the admin API: B's token below it goes,
	// the actor token and alice's token above it stay.
	res, err := n.admin().Revoke(context.Background(), claims(t, ab2)["jti"].(string), "", "")
	if err != nil || res.Exchanged != 1 {
		t.Fatalf("admin revoke of A's second token: %+v, %v; want one exchanged token revoked", res, err)
	}
	want("revoking A's second token", "bt3", "actor1", "ab1", "bt1", "ab2", "bt2")

	// alice's token, by A through RFC 7009: every token exchanged from it
	// goes (ab3, the one left), and A's own actor token stays.
	if r := n.postForm(t, "/revoke", url.Values{"token": {user}}, a); r.status != http.StatusOK {
		t.Fatalf("RFC 7009 of alice's token: %d %s", r.status, r.body)
	}
	want("revoking alice's token", "bt3", "actor1", "ab1", "bt1", "ab2", "bt2", "user", "ab3")

	// A fresh chain on a fresh node, then agent A is deleted: its tokens,
	// and sub-agent B's token exchanged from them, go; B's own token
	// stays.
	n = startNode(t, func(c *config.Config) { c.StatusListTTL = time.Second })
	n.admin().RevokeSettle = time.Millisecond
	d2 := newDelegation(t, n, nil)
	user2 := d2.userAT.str(t, "access_token")
	r := d2.exchange(t, d2.a.auth(), with(subjectParams(user2), "audience", issuer.ClientAudience(d2.b.ClientID)))
	if r.status != http.StatusOK {
		t.Fatalf("A's exchange: %d %s", r.status, r.body)
	}
	ab4 := r.str(t, "access_token")
	r = d2.exchange(t, basic(d2.b), with(subjectParams(ab4), "resource", toolURL))
	if r.status != http.StatusOK {
		t.Fatalf("B's exchange: %d %s", r.status, r.body)
	}
	bt4 := r.str(t, "access_token")
	bOwn := n.token(t, d2.b, nil)
	all = nil
	add("bt4", bt4, basic(d2.b))
	add("b-own", bOwn, basic(d2.b))
	want("the second chain")
	if err := n.admin().DeleteClient(context.Background(), d2.a.info.ClientID); err != nil {
		t.Fatal(err)
	}
	want("deleting agent A", "bt4")
	// A's own tokens: gone with the client from introspection (no caller
	// left to ask as A; B may not introspect them), and from their status
	// lists.
	sl := &verify.StatusLists{Keys: n.srv.Core.Keys, Issuer: n.issuer}
	for name, raw := range map[string]string{"user2": user2, "ab4": ab4} {
		var c token.Claims
		if err := c.UnmarshalJSON(mustJSON(t, claims(t, raw))); err != nil {
			t.Fatal(err)
		}
		if err := sl.Check(context.Background(), c.StatusList()); !errors.Is(err, verify.ErrRevoked) {
			t.Errorf("after deleting agent A: %s status %v, want revoked", name, err)
		}
	}
}

// TestRevocationReachesIDTokenExchanges: revoking alice's access token
// revokes the ID token issued with it, so the token A exchanged that ID
// token for dies too, and the ID token cannot be exchanged again.
func TestRevocationReachesIDTokenExchanges(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	idt := url.Values{"subject_token": {d.userAT.str(t, "id_token")}, "subject_token_type": {issuer.TokenTypeIDToken},
		"scope": {"read:files"}}
	r := d.exchange(t, d.a.auth(), idt)
	if r.status != http.StatusOK {
		t.Fatalf("exchange of alice's ID token: %d %s", r.status, r.body)
	}
	exchanged := r.str(t, "access_token")
	if r := n.postForm(t, "/revoke", url.Values{"token": {d.userAT.str(t, "access_token")}}, d.a.auth()); r.status != http.StatusOK {
		t.Fatalf("RFC 7009 of alice's access token: %d %s", r.status, r.body)
	}
	if n.active(t, d.a.auth(), exchanged) {
		t.Error("the token exchanged from alice's ID token is active after her access token was revoked")
	}
	wantError(t, d.exchange(t, d.a.auth(), idt), http.StatusBadRequest, "invalid_request")
}

// TestRevokeAgainSkipsTheWalk: revoking a token whose chain was walked
// already answers without walking it again (a client repeating the
// request cannot make the server repeat the work), and the second
// record says so.
func TestRevokeAgainSkipsTheWalk(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	user := d.userAT.str(t, "access_token")
	r := d.exchange(t, d.a.auth(), with(subjectParams(user), "audience", issuer.ClientAudience(d.b.ClientID)))
	if r.status != http.StatusOK {
		t.Fatalf("A's exchange: %d %s", r.status, r.body)
	}
	for range 2 {
		if r := n.postForm(t, "/revoke", url.Values{"token": {user}}, d.a.auth()); r.status != http.StatusOK {
			t.Fatalf("RFC 7009 of alice's token: %d %s", r.status, r.body)
		}
	}
	var details []map[string]string
	for _, rec := range records(t, n, sigil.AuditQuery{JTI: claims(t, user)["jti"].(string), Event: string(audit.TokenRevoked)}) {
		details = append(details, rec.Detail)
	}
	if len(details) != 2 || details[0]["exchanged"] != "1" || details[1]["chain"] != "revoked before" || details[1]["exchanged"] != "" {
		t.Errorf("revocation records' details: %v; want the first to walk (exchanged 1), the second not (chain: revoked before)", details)
	}
	if n.active(t, d.a.auth(), r.str(t, "access_token")) {
		t.Error("the exchanged token is active")
	}
}
