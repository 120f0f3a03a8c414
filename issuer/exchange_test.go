package issuer_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/issuer"
)

const grantExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// delegation is a user, the agent they signed in to (A, a code-flow client
// that may also exchange), a sub-agent (B) A may address tokens to, and
// the tool both reach.
type delegation struct {
	n      *testNode
	a      rp
	b      *admin.ClientInfo
	user   *admin.UserInfo
	userAT reply // alice's tokens at A
}

const toolURL = "https://tools.example/mcp"

func newDelegation(t *testing.T, n *testNode, userClaims map[string]any) *delegation {
	t.Helper()
	b := n.newClient(t, admin.ClientSpec{Name: "agent-b", GrantTypes: []string{"client_credentials", grantExchange},
		Scope: "read:files write:files", Audience: []string{toolURL}})
	a := newRP(t, n, "client_secret_basic", func(s *admin.ClientSpec) {
		s.GrantTypes = append(s.GrantTypes, "client_credentials", grantExchange)
		s.Scope += " write:files"
		s.Audience = []string{toolURL, issuer.ClientAudience(b.ClientID)}
	})
	u := newUser(t, n, "alice", alicePassword, userClaims)
	p := newPKCE()
	resp := newBrowser(t, n).codeFor(a, a.authParams(p, "openid read:files write:files"), "alice", alicePassword)
	tr := n.redeem(t, a, resp.Get("code"), p.verifier)
	if tr.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", tr.status, tr.body)
	}
	return &delegation{n: n, a: a, b: b, user: u, userAT: tr}
}

// exchange posts a token exchange as caller with the given parameters.
func (d *delegation) exchange(t *testing.T, caller auth, params url.Values) reply {
	t.Helper()
	form := url.Values{"grant_type": {grantExchange}}
	for k, v := range params {
		form[k] = v
	}
	return d.n.postForm(t, "/token", form, caller)
}

func subjectParams(tok string) url.Values {
	return url.Values{"subject_token": {tok}, "subject_token_type": {issuer.TokenTypeAccessToken}}
}

func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// TestExchangeDelegationChain: agent A trades alice's token, with its own
// token as actor token, for a narrower one addressed to sub-agent B
// (act.sub = A); B trades that for one for the tool (act.act); each token
// verifies with another JOSE library, narrows the last, and never
// outlives it; introspection and the audit trail show the chain.
func TestExchangeDelegationChain(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, map[string]any{"department": "eng"})
	aToken := n.token(t, d.a.info, nil) // A's own token: its actor token

	first := d.exchange(t, d.a.auth(), with(subjectParams(d.userAT.str(t, "access_token")),
		"actor_token", aToken, "actor_token_type", issuer.TokenTypeAccessToken,
		"audience", issuer.ClientAudience(d.b.ClientID), "scope", "read:files write:files"))
	if first.status != http.StatusOK {
		t.Fatalf("A's exchange: %d %s", first.status, first.body)
	}
	if got := first.str(t, "issued_token_type"); got != issuer.TokenTypeAccessToken {
		t.Errorf("issued_token_type = %q", got)
	}
	t1 := first.str(t, "access_token")
	n.verifyJWX(t, t1)
	m1 := claims(t, t1)
	if m1["sub"] != d.user.ID || m1["client_id"] != d.a.info.ClientID || m1["department"] != "eng" {
		t.Errorf("A's token: %v", m1)
	}
	if act, _ := m1["act"].(map[string]any); act["sub"] != d.a.info.ClientID || act["act"] != nil {
		t.Errorf("A's token act = %v, want {sub: A}", m1["act"])
	}
	if num(t, m1, "exp") > num(t, claims(t, d.userAT.str(t, "access_token")), "exp") {
		t.Error("A's token outlives the user's")
	}

	second := d.exchange(t, basic(d.b), with(subjectParams(t1), "resource", toolURL, "scope", "read:files"))
	if second.status != http.StatusOK {
		t.Fatalf("B's exchange: %d %s", second.status, second.body)
	}
	t2 := second.str(t, "access_token")
	n.verifyJWX(t, t2)
	m2 := claims(t, t2)
	act, _ := m2["act"].(map[string]any)
	inner, _ := act["act"].(map[string]any)
	if m2["sub"] != d.user.ID || act["sub"] != d.b.ClientID || inner["sub"] != d.a.info.ClientID || inner["act"] != nil {
		t.Errorf("B's token: sub %v act %v, want alice acted for by B for A", m2["sub"], m2["act"])
	}
	if m2["scope"] != "read:files" || second.str(t, "scope") != "read:files" {
		t.Errorf("B's scope = %v / %s", m2["scope"], second.body)
	}
	if aud := m2["aud"]; aud != toolURL {
		t.Errorf("B's aud = %v", aud)
	}
	if num(t, m2, "exp") > num(t, m1, "exp") {
		t.Error("B's token outlives A's")
	}

	in := n.introspect(t, basic(d.b), t2).json(t)
	if ia, _ := in["act"].(map[string]any); in["active"] != true || ia["sub"] != d.b.ClientID {
		t.Errorf("introspection of B's token: %v", in)
	}
	var chain []string
	for _, r := range records(t, n, sigil.AuditQuery{JTI: m2["jti"].(string)}) {
		if r.Event == audit.TokenIssued {
			chain = r.Act
		}
	}
	if !slices.Equal(chain, []string{d.b.ClientID, d.a.info.ClientID}) {
		t.Errorf("audit record of B's token: act %v, want [B A]", chain)
	}
}

// TestExchangeRefusals: each link is refused when a rule forbids it.
func TestExchangeRefusals(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.DelegationMaxDepth = 2 })
	d := newDelegation(t, n, map[string]any{"may_act": map[string]any{"sub": "someone-else"}})
	userAT := d.userAT.str(t, "access_token")
	other := n.newClient(t, admin.ClientSpec{Name: "other", GrantTypes: []string{"client_credentials", grantExchange},
		Scope: "read:files", Audience: []string{toolURL}})

	// alice's may_act names another agent: A may not act for her.
	r := d.exchange(t, d.a.auth(), subjectParams(userAT))
	wantError(t, r, http.StatusBadRequest, "invalid_request")

	// A user without may_act, for the other rules.
	n2 := startNode(t, func(c *config.Config) { c.DelegationMaxDepth = 2 })
	d = newDelegation(t, n2, nil)
	n = n2
	userAT = d.userAT.str(t, "access_token")
	other = n.newClient(t, admin.ClientSpec{Name: "other", GrantTypes: []string{"client_credentials", grantExchange},
		Scope: "read:files", Audience: []string{toolURL}})
	good := d.exchange(t, d.a.auth(), with(subjectParams(userAT), "audience", issuer.ClientAudience(d.b.ClientID)))
	if good.status != http.StatusOK {
		t.Fatalf("a good exchange: %d %s", good.status, good.body)
	}
	t1 := good.str(t, "access_token")
	idToken := d.userAT.str(t, "id_token")

	for _, tc := range []struct {
		name   string
		caller auth
		params url.Values
		code   string
	}{
		{"scope escalation", d.a.auth(), with(subjectParams(userAT), "scope", "read:files admin"), "invalid_scope"},
		{"scope the client lacks", basic(other), with(subjectParams(n.token(t, other, nil)), "scope", "write:files"), "invalid_scope"},
		{"audience escalation", d.a.auth(), with(subjectParams(userAT), "audience", "https://bank.example"), "invalid_target"},
		{"resource escalation", basic(d.b), with(subjectParams(t1), "resource", "https://bank.example"), "invalid_target"},
		{"token neither issued nor addressed to the caller", basic(other), subjectParams(userAT), "invalid_request"},
		{"token addressed to B used by another", basic(other), subjectParams(t1), "invalid_request"},
		{"actor token of another client", d.a.auth(), with(subjectParams(userAT), "actor_token", n.token(t, other, nil),
			"actor_token_type", issuer.TokenTypeAccessToken), "invalid_request"},
		{"actor token of a user", d.a.auth(), with(subjectParams(userAT), "actor_token", userAT,
			"actor_token_type", issuer.TokenTypeAccessToken), "invalid_request"},
		{"actor token without its type", d.a.auth(), with(subjectParams(userAT), "actor_token", n.token(t, d.a.info, nil)), "invalid_request"},
		{"forged subject token", d.a.auth(), subjectParams(userAT[:len(userAT)-4] + "AAAA"), "invalid_request"},
		{"wrong subject token type", d.a.auth(), with(subjectParams(userAT), "subject_token_type", issuer.TokenTypeIDToken), "invalid_request"},
		{"unknown subject token type", d.a.auth(), with(subjectParams(userAT), "subject_token_type", "urn:x"), "invalid_request"},
		{"ID token of another audience", basic(other), url.Values{"subject_token": {idToken}, "subject_token_type": {issuer.TokenTypeIDToken}}, "invalid_request"},
		{"refresh token requested", d.a.auth(), with(subjectParams(userAT), "requested_token_type", issuer.TokenTypeRefresh), "invalid_request"},
		{"saml2 requested", d.a.auth(), with(subjectParams(userAT), "requested_token_type", issuer.TokenTypeSAML2), "invalid_request"},
		{"repeated subject_token", d.a.auth(), url.Values{"subject_token": {userAT, t1}, "subject_token_type": {issuer.TokenTypeAccessToken}}, "invalid_request"},
		{"no subject token", d.a.auth(), url.Values{}, "invalid_request"},
		{"client without the grant", basic(n.newClient(t, admin.ClientSpec{Name: "cc", GrantTypes: []string{"client_credentials"}})), subjectParams(userAT), "unauthorized_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, d.exchange(t, tc.caller, tc.params), http.StatusBadRequest, tc.code)
		})
	}

	// Depth: with at most 2 actors, B may extend A's chain once, and the
	// tool's token (two actors) cannot be delegated again.
	second := d.exchange(t, basic(d.b), with(subjectParams(t1), "resource", toolURL))
	if second.status != http.StatusOK {
		t.Fatalf("B's exchange: %d %s", second.status, second.body)
	}
	again := d.exchange(t, basic(d.b), with(subjectParams(t1), "audience", toolURL))
	if again.status != http.StatusOK {
		t.Fatalf("B exchanging again: %d %s", again.status, again.body)
	}
	// B's token is issued to B: B could exchange it, but a third actor
	// would make the chain too long.
	wantError(t, d.exchange(t, basic(d.b), subjectParams(second.str(t, "access_token"))), http.StatusBadRequest, "invalid_request")

	// A revoked subject token is refused, and so is a token from another
	// issuer's keys under our issuer name.
	if r := n.postForm(t, "/revoke", url.Values{"token": {userAT}}, d.a.auth()); r.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	wantError(t, d.exchange(t, d.a.auth(), subjectParams(userAT)), http.StatusBadRequest, "invalid_request")
	m := startNode(t, func(cfg *config.Config) { cfg.Issuer = n.issuer })
	foreignClient := m.newClient(t, admin.ClientSpec{Name: "f", GrantTypes: []string{"client_credentials"}})
	foreign := m.token(t, foreignClient, nil)
	wantError(t, d.exchange(t, d.a.auth(), subjectParams(foreign)), http.StatusBadRequest, "invalid_request")
}

// TestExchangeIDTokenSubject: an ID token issued to the agent is a
// subject token; it carries no scope, so the client's default scopes apply.
func TestExchangeIDTokenSubject(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	r := d.exchange(t, d.a.auth(), url.Values{"subject_token": {d.userAT.str(t, "id_token")},
		"subject_token_type": {issuer.TokenTypeIDToken}, "scope": {"read:files"}})
	if r.status != http.StatusOK {
		t.Fatalf("exchange of an ID token: %d %s", r.status, r.body)
	}
	m := claims(t, r.str(t, "access_token"))
	if m["sub"] != d.user.ID || m["scope"] != "read:files" {
		t.Errorf("claims = %v", m)
	}
}

// TestExchangeForIDToken: requested_token_type id_token gives agent A an
// ID token about alice for itself (aud and azp A, act naming A, typ JWT,
// no longer lived than her token), verified by another JOSE library; a
// client's own token, a request without openid, one naming an audience
// and one with authorization_details are refused.
func TestExchangeForIDToken(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, map[string]any{"email": "alice@example.com"})
	user := d.userAT.str(t, "access_token")
	idt := func(extra ...string) url.Values {
		return with(subjectParams(user), append([]string{"requested_token_type", issuer.TokenTypeIDToken}, extra...)...)
	}
	r := d.exchange(t, d.a.auth(), idt("scope", "openid"))
	if r.status != http.StatusOK {
		t.Fatalf("exchange for an ID token: %d %s", r.status, r.body)
	}
	if r.str(t, "issued_token_type") != issuer.TokenTypeIDToken || r.str(t, "token_type") != "N_A" {
		t.Errorf("response: %s", r.body)
	}
	raw := r.str(t, "access_token")
	n.verifyJWX(t, raw)
	if typ := header(t, raw)["typ"]; typ != "JWT" {
		t.Errorf("typ = %v, want JWT", typ)
	}
	m := claims(t, raw)
	act, _ := m["act"].(map[string]any)
	if m["sub"] != d.user.ID || m["aud"] != d.a.info.ClientID || m["azp"] != d.a.info.ClientID || act["sub"] != d.a.info.ClientID {
		t.Errorf("ID token claims: %v", m)
	}
	// alice's token carries no email scope: the ID token no email.
	if m["email"] != nil || m["scope"] != nil || m["client_id"] != nil {
		t.Errorf("ID token claims: %v", m)
	}
	if num(t, m, "exp") > num(t, claims(t, user), "exp") {
		t.Error("the ID token outlives alice's token")
	}
	if !slices.Contains(recordActs(t, n, m["jti"].(string)), d.a.info.ClientID) {
		t.Errorf("no token.issued record of the ID token naming A as actor")
	}

	own := n.token(t, d.a.info, url.Values{"scope": {"read:files"}})
	for _, tc := range []struct {
		name   string
		params url.Values
		code   string
	}{
		{"a client's own token", with(subjectParams(own), "requested_token_type", issuer.TokenTypeIDToken, "scope", "read:files"), "invalid_request"},
		{"without openid", idt("scope", "read:files"), "invalid_scope"},
		{"with an audience", idt("scope", "openid", "audience", toolURL), "invalid_target"},
		{"with authorization_details", idt("scope", "openid", "authorization_details",
			`[{"type":"mcp_tool","resource":"`+toolURL+`","tools":["search"]}]`), "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, d.exchange(t, d.a.auth(), tc.params), http.StatusBadRequest, tc.code)
		})
	}
}

// recordActs returns the act chain of the token.issued record of jti.
func recordActs(t *testing.T, n *testNode, jti string) []string {
	t.Helper()
	for _, r := range records(t, n, sigil.AuditQuery{JTI: jti}) {
		if r.Event == audit.TokenIssued {
			return r.Act
		}
	}
	return nil
}
