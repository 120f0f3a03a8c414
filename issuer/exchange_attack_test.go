package issuer_test

// Security review of token exchange (RFC 8693): each test asserts the
// secure behaviour and FAILS on the implementation as reviewed.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/issuer"
)

// signIn runs the code flow for username at c with scope and returns the
// token response.
func signIn(t *testing.T, n *testNode, c rp, username, scope string) reply {
	t.Helper()
	p := newPKCE()
	resp := newBrowser(t, n).codeFor(c, c.authParams(p, scope), username, alicePassword)
	tr := n.redeem(t, c, resp.Get("code"), p.verifier)
	if tr.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", tr.status, tr.body)
	}
	return tr
}

func actChain(m map[string]any) []string {
	var out []string
	a, _ := m["act"].(map[string]any)
	for a != nil {
		s, _ := a["sub"].(string)
		out = append(out, s)
		a, _ = a["act"].(map[string]any)
	}
	return out
}

// the actor token may be any access token issued to the client,
// whatever its sub. A user's access token (sub = that user) as actor token
// makes act.sub name the user: agent A mints "alice acts for bob", and A
// itself is nowhere in the chain.
func TestExchangeAttackActorTokenOfAUserForgesTheChain(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil) // alice at A
	newUser(t, n, "bob", alicePassword, nil)
	bobAT := signIn(t, n, d.a, "bob", "openid read:files").str(t, "access_token")
	aliceAT := d.userAT.str(t, "access_token")

	r := d.exchange(t, d.a.auth(), with(subjectParams(bobAT),
		"actor_token", aliceAT, "actor_token_type", issuer.TokenTypeAccessToken))
	if r.status == http.StatusOK {
		m := claims(t, r.str(t, "access_token"))
		t.Errorf("agent A minted a token for bob whose actor is alice (act chain %v, alice = %s); "+
			"the actor token's sub must be the authenticated client", actChain(m), d.user.ID)
	}
}

// the same hole lets sub-agent B erase itself from the chain and
// pose as A: B exchanges any token of A's addressed to B (sub = A) into a
// token issued to B with sub = A, and presents that as its actor token.
// may_act {"sub": A} is then satisfied by B too.
func TestExchangeAttackSubAgentPosesAsAgent(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	// A hands B one of its own tokens (e.g. for a job), addressed to B.
	aForB := n.token(t, d.a.info, url.Values{"resource": {issuer.ClientAudience(d.b.ClientID)}, "scope": {"read:files"}})
	asA := d.exchange(t, basic(d.b), subjectParams(aForB)) // sub = A, client_id = B
	if asA.status != http.StatusOK {
		t.Fatalf("B exchanging A's token: %d %s", asA.status, asA.body)
	}
	// A delegates alice's token to B.
	t1 := d.exchange(t, d.a.auth(), with(subjectParams(d.userAT.str(t, "access_token")),
		"audience", issuer.ClientAudience(d.b.ClientID)))
	if t1.status != http.StatusOK {
		t.Fatalf("A's exchange: %d %s", t1.status, t1.body)
	}
	r := d.exchange(t, basic(d.b), with(subjectParams(t1.str(t, "access_token")),
		"actor_token", asA.str(t, "access_token"), "actor_token_type", issuer.TokenTypeAccessToken, "resource", toolURL))
	if r.status == http.StatusOK {
		chain := actChain(claims(t, r.str(t, "access_token")))
		for _, s := range chain {
			if s == d.b.ClientID {
				return
			}
		}
		t.Errorf("B's token for the tool has act chain %v: B (%s) is not in it, A (%s) appears as the current actor",
			chain, d.b.ClientID, d.a.info.ClientID)
	}
}

// an exchanged token whose scope came out empty (the subject's
// scopes ∩ the client's = ∅) is issued with no scope, and a token with no
// scope is then treated as unbounded: exchanging it again yields every
// scope of the client. alice allowed A "openid" only; B ends up with
// write:files for her.
func TestExchangeAttackEmptyScopeEscalates(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	openidOnly := signIn(t, n, d.a, "alice", "openid").str(t, "access_token")
	if s := claims(t, openidOnly)["scope"]; s != "openid" {
		t.Fatalf("alice's token scope = %v", s)
	}
	t1 := d.exchange(t, d.a.auth(), with(subjectParams(openidOnly), "audience", issuer.ClientAudience(d.b.ClientID)))
	if t1.status != http.StatusOK {
		t.Fatalf("A's exchange: %d %s", t1.status, t1.body)
	}
	// B: {openid} ∩ {read:files write:files} = ∅, no scope asked.
	t2 := d.exchange(t, basic(d.b), subjectParams(t1.str(t, "access_token")))
	if t2.status != http.StatusOK {
		return // refused: fine
	}
	t.Logf("B's first exchange: 200 with scope %q (an empty intersection should be invalid_scope)", claims(t, t2.str(t, "access_token"))["scope"])
	t3 := d.exchange(t, basic(d.b), with(subjectParams(t2.str(t, "access_token")), "scope", "write:files"))
	if t3.status == http.StatusOK {
		t.Errorf("alice consented to openid only, yet B holds a token for her with scope %v (act %v)",
			claims(t, t3.str(t, "access_token"))["scope"], actChain(claims(t, t3.str(t, "access_token"))))
	}
}

// an ID token subject got any of the client's scopes, though the
// user consented to none of them. The bound is now the user's stored
// consent to the client: bob, who only ever allowed openid, gets nothing
// more from his ID token than from his access token.
func TestExchangeAttackIDTokenScopesWithoutConsent(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	newUser(t, n, "bob", alicePassword, nil)
	tr := signIn(t, n, d.a, "bob", "openid")
	wantError(t, d.exchange(t, d.a.auth(), with(subjectParams(tr.str(t, "access_token")), "scope", "write:files")),
		http.StatusBadRequest, "invalid_scope")
	r := d.exchange(t, d.a.auth(), url.Values{"subject_token": {tr.str(t, "id_token")},
		"subject_token_type": {issuer.TokenTypeIDToken}, "scope": {"write:files"}})
	wantError(t, r, http.StatusBadRequest, "invalid_scope")
}

// an ID token carries no may_act, so the user's may_act is not
// enforced on an ID token subject: A, which alice's may_act excludes, acts
// for her anyway.
func TestExchangeAttackIDTokenBypassesMayAct(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, map[string]any{"may_act": map[string]any{"sub": "someone-else"}})
	wantError(t, d.exchange(t, d.a.auth(), subjectParams(d.userAT.str(t, "access_token"))), http.StatusBadRequest, "invalid_request")
	r := d.exchange(t, d.a.auth(), url.Values{"subject_token": {d.userAT.str(t, "id_token")},
		"subject_token_type": {issuer.TokenTypeIDToken}})
	if r.status == http.StatusOK {
		t.Errorf("alice's may_act names someone-else, yet A exchanged her ID token: act %v",
			actChain(claims(t, r.str(t, "access_token"))))
	}
}

// may_act is not carried into exchanged tokens, so it binds the
// first hop only: alice allows A alone, A addresses her token to B, and B
// acts for her.
func TestExchangeAttackMayActNotPropagated(t *testing.T) {
	n := startNode(t)
	var d *delegation
	// may_act must name A, whose id exists only once A is created: create
	// the user without it, then set it before the sign-in that matters.
	d = newDelegation(t, n, nil)
	if _, err := n.admin().UpdateUser(context.Background(), d.user.ID, admin.UserUpdate{
		Claims: map[string]any{"may_act": map[string]any{"sub": d.a.info.ClientID}}}); err != nil {
		t.Fatal(err)
	}
	at := signIn(t, n, d.a, "alice", "openid read:files").str(t, "access_token")
	if ma, _ := claims(t, at)["may_act"].(map[string]any); ma["sub"] != d.a.info.ClientID {
		t.Fatalf("may_act = %v", claims(t, at)["may_act"])
	}
	t1 := d.exchange(t, d.a.auth(), with(subjectParams(at), "audience", issuer.ClientAudience(d.b.ClientID)))
	if t1.status != http.StatusOK {
		t.Fatalf("A's exchange: %d %s", t1.status, t1.body)
	}
	if claims(t, t1.str(t, "access_token"))["may_act"] == nil {
		t.Log("A's exchanged token has no may_act")
	}
	r := d.exchange(t, basic(d.b), with(subjectParams(t1.str(t, "access_token")), "resource", toolURL))
	if r.status == http.StatusOK {
		t.Errorf("alice's may_act allows %s alone; B (%s) got a token acting for her: act %v",
			d.a.info.ClientID, d.b.ClientID, actChain(claims(t, r.str(t, "access_token"))))
	}
}

// a public client (token_endpoint_auth_method none) may hold the
// token-exchange grant: exchange is then anonymous (RFC 8693 §5, NOTES
// §5.6 item 1). Anyone with a leaked ID token (id_token_hint travels in
// logout URLs) turns it into an access token with only the client_id.
func TestExchangeAttackAnonymousPublicClient(t *testing.T) {
	n := startNode(t)
	c, err := n.admin().CreateClient(context.Background(), admin.ClientSpec{Name: "spa",
		GrantTypes: []string{"authorization_code", grantExchange}, AuthMethod: "none",
		Scope: "openid read:files", RedirectURIs: []string{"https://rp.example/callback"}})
	if err != nil {
		t.Logf("admin refused a public exchange client: %v", err)
		return
	}
	spa := rp{info: c, redirectURI: "https://rp.example/callback"}
	newUser(t, n, "alice", alicePassword, nil)
	idt := signIn(t, n, spa, "alice", "openid").str(t, "id_token")
	r := n.postForm(t, "/token", url.Values{"grant_type": {grantExchange}, "client_id": {c.ClientID},
		"subject_token": {idt}, "subject_token_type": {issuer.TokenTypeIDToken}, "scope": {"read:files"}}, auth{})
	if r.status == http.StatusOK {
		t.Errorf("an unauthenticated caller turned alice's ID token into an access token: %v", claims(t, r.str(t, "access_token")))
	}
}

// a DPoP-bound subject token addressed to the client is exchanged
// with no proof at all into a Bearer token: the sender constraint is
// dropped, not transferred.
func TestExchangeAttackDropsDPoPBinding(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	k := newDPoPKey(t, "ES256")
	req, _ := http.NewRequest(http.MethodPost, n.url("/token"), strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "resource": {issuer.ClientAudience(d.b.ClientID)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(d.a.info.ClientID), url.QueryEscape(d.a.info.ClientSecret))
	req.Header.Set("DPoP", k.proof(t, n.tokenEndpoint(t)))
	bound := wantBound(t, n, n.do(t, req), k)

	r := d.exchange(t, basic(d.b), subjectParams(bound))
	if r.status == http.StatusOK && r.str(t, "token_type") == "Bearer" {
		t.Errorf("a DPoP-bound subject token became a Bearer token (cnf %v)", claims(t, r.str(t, "access_token"))["cnf"])
	}
}

// Interop: RFC 8693 §2.1 lets audience repeat; readForm only
// lets resource repeat, so two audiences are refused as invalid_request.
func TestExchangeAttackRepeatedAudience(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	p := subjectParams(d.userAT.str(t, "access_token"))
	p["audience"] = []string{toolURL, issuer.ClientAudience(d.b.ClientID)}
	if r := d.exchange(t, d.a.auth(), p); r.status != http.StatusOK {
		t.Errorf("two audience parameters: %d %s", r.status, r.body)
	}
}
