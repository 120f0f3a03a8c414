package issuer_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/issuer"
)

const (
	grantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// The clients the trusted issuers' tokens map to.
	ciClient   = "ci-deployer"
	kubeClient = "kube-billing"
	ciSecret   = "ci-deployer-secret-0123456789abcdef"
	ciRepoSub  = "repo:org/app:ref:refs/heads/main"
	kubeSub    = "system:serviceaccount:billing:worker"
	apiAud     = "https://api.example"
)

// extIssuer is a test-local external issuer (a CI provider, a Kubernetes
// cluster): its own ES256 key, made and used with jwx, its JWK Set served
// on loopback.
type extIssuer struct {
	iss string
	key *clientKey
	srv *httptest.Server
}

func newExtIssuer(t *testing.T) *extIssuer {
	t.Helper()
	e := &extIssuer{key: newClientKey(t, "ES256", "ext-1")}
	jwks := e.key.jwks(t)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(jwks)
	}))
	t.Cleanup(e.srv.Close)
	e.iss = e.srv.URL
	return e
}

// claims are valid claims of a token from e for sub, addressed to aud.
func (e *extIssuer) claims(sub, aud string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{"iss": e.iss, "sub": sub, "aud": aud, "iat": now - 5, "exp": now + 300, "jti": randomJTI()}
}

func (e *extIssuer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	return e.key.sign(t, claims, map[string]any{"typ": "JWT"})
}

// fedSetup is a node that trusts two issuers: ci (JWKS fetched over HTTP,
// default audience) and kube (a static RS256 JWKS, its own audience, a
// 10-minute max-age), with the clients their tokens map to.
type fedSetup struct {
	n        *testNode
	ci, kube *extIssuer
}

func newFedSetup(t *testing.T) *fedSetup {
	t.Helper()
	ci := newExtIssuer(t)
	kube := &extIssuer{iss: "https://kubernetes.default.svc", key: newClientKey(t, "RS256", "kube-1")}
	n := startNode(t, func(c *config.Config) {
		c.TrustedIssuers = []config.TrustedIssuer{
			{Issuer: ci.iss, JWKSURL: ci.srv.URL + "/jwks", Rules: []config.FederationRule{
				{Subject: `repo:org/app:ref:refs/heads/.*`, Client: ciClient, Claims: map[string]string{"repository": "org/app"}},
				{Subject: `repo:org/ghost:.*`, Client: "no-such-client"},
			}},
			{Issuer: kube.iss, JWKS: config.InlineJSON(kube.key.jwks(t)), Audience: "sigil",
				MaxAge: 10 * time.Minute, Rules: []config.FederationRule{
					{Subject: `system:serviceaccount:billing:[a-z-]+`, Client: kubeClient},
				}},
		}
	})
	for _, c := range []*sigil.Client{
		{ID: ciClient, GrantTypes: []string{sigil.GrantClientCredentials, sigil.GrantTokenExchange},
			Scopes: []string{"deploy", "read"}, DefaultScopes: []string{"read"}, Audiences: []string{apiAud}},
		{ID: kubeClient, Scopes: []string{"billing"}, DefaultScopes: []string{"billing"}},
	} {
		n.storeClient(t, c, ciSecret)
	}
	return &fedSetup{n: n, ci: ci, kube: kube}
}

func (s *fedSetup) bearer(t *testing.T, assertion string, a auth, extra ...string) reply {
	t.Helper()
	form := url.Values{"grant_type": {grantJWTBearer}, "assertion": {assertion}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return s.n.postForm(t, "/token", form, a)
}

// TestFederationJWTBearer: tokens of both trusted issuers, signed with
// jwx, get access tokens of the clients they map to, with or without
// client authentication; the discovery document lists the grant; the audit
// trail records the acceptance with the external sub.
func TestFederationJWTBearer(t *testing.T) {
	s := newFedSetup(t)
	n := s.n
	ciTok := s.ci.sign(t, with2(s.ci.claims(ciRepoSub, n.issuer), "repository", "org/app"))
	r := s.bearer(t, ciTok, auth{}, "scope", "deploy")
	if r.status != http.StatusOK {
		t.Fatalf("ci token: status %d: %s", r.status, r.body)
	}
	at := n.verifyJWX(t, r.str(t, "access_token"))
	sub, _ := at.Subject()
	aud, _ := at.Audience()
	cl := claims(t, r.str(t, "access_token"))
	if sub != ciClient || cl["client_id"] != ciClient || cl["scope"] != "deploy" || !slices.Equal(aud, []string{apiAud}) {
		t.Errorf("access token sub %q client_id %v scope %v aud %v, want %s, %s, deploy, [%s]", sub, cl["client_id"], cl["scope"], aud, ciClient, ciClient, apiAud)
	}
	if _, ok := cl["act"]; ok {
		t.Errorf("jwt-bearer token has act: %v", cl["act"])
	}

	kubeTok := s.kube.sign(t, s.kube.claims(kubeSub, "sigil"))
	r = s.bearer(t, kubeTok, auth{id: kubeClient, secret: ciSecret})
	if r.status != http.StatusOK {
		t.Fatalf("kube token with the mapped client's authentication: status %d: %s", r.status, r.body)
	}
	if cl := claims(t, r.str(t, "access_token")); cl["sub"] != kubeClient || cl["scope"] != "billing" {
		t.Errorf("kube access token sub %v scope %v", cl["sub"], cl["scope"])
	}

	// Another client that authenticates may not use a workload's token.
	other := s.kube.sign(t, s.kube.claims(kubeSub, "sigil"))
	r = s.bearer(t, other, auth{id: ciClient, secret: ciSecret})
	wantError(t, r, http.StatusBadRequest, "invalid_grant")

	// A scope the mapped client may not have.
	r = s.bearer(t, s.ci.sign(t, with2(s.ci.claims(ciRepoSub, n.issuer), "repository", "org/app")), auth{}, "scope", "billing")
	wantError(t, r, http.StatusBadRequest, "invalid_scope")

	m := n.get(t, "/.well-known/oauth-authorization-server").json(t)
	if got := strList(m["grant_types_supported"]); !slices.Contains(got, grantJWTBearer) {
		t.Errorf("grant_types_supported = %v, lacks %s", got, grantJWTBearer)
	}
	recs := records(t, n, sigil.AuditQuery{Event: string(audit.FederationAccepted)})
	if !slices.ContainsFunc(recs, func(r *audit.Record) bool {
		return r.ClientID == ciClient && r.Subject == ciRepoSub && r.Detail["iss"] == s.ci.iss && r.Detail["grant_type"] == grantJWTBearer
	}) {
		t.Errorf("no federation.accepted record for the ci token in %+v", recs)
	}
}

// TestFederationMetadataWithout: without trusted issuers the grant is
// neither listed nor served.
func TestFederationMetadataWithout(t *testing.T) {
	n := startNode(t)
	m := n.get(t, "/.well-known/oauth-authorization-server").json(t)
	if got := strList(m["grant_types_supported"]); slices.Contains(got, grantJWTBearer) {
		t.Errorf("grant_types_supported = %v, lists %s without federation", got, grantJWTBearer)
	}
	r := n.postForm(t, "/token", url.Values{"grant_type": {grantJWTBearer}, "assertion": {"x.y.z"}}, auth{})
	wantError(t, r, http.StatusUnauthorized, "invalid_client")
}

func with2(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// TestFederationRefusals: each RFC 7523 §3 check, the algorithm rules and
// the mapping refuse a token with invalid_grant and a description saying
// why, and the audit trail records the refusal.
func TestFederationRefusals(t *testing.T) {
	s := newFedSetup(t)
	n := s.n
	now := time.Now().Unix()
	good := func() map[string]any {
		return with2(s.ci.claims(ciRepoSub, n.issuer), "repository", "org/app")
	}
	stranger := newClientKey(t, "ES256", "ext-2") // a kid the issuer does not publish
	impostor := newClientKey(t, "ES256", "ext-1") // the issuer's kid, another key
	rogue := &extIssuer{iss: "https://rogue.example", key: s.ci.key}
	for _, tc := range []struct {
		name  string
		token func(t *testing.T) string
		want  string // in error_description
	}{
		{"wrong aud", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "aud", "https://other.example")) }, "aud does not contain " + n.issuer},
		{"aud of another issuer's config", func(t *testing.T) string { return s.kube.sign(t, s.kube.claims(kubeSub, n.issuer)) }, "aud does not contain sigil"},
		{"unmapped sub", func(t *testing.T) string {
			return s.ci.sign(t, with2(good(), "sub", "repo:evil/app:ref:refs/heads/main"))
		}, "matches no mapping rule"},
		{"sub matching only a prefix", func(t *testing.T) string {
			return s.kube.sign(t, s.kube.claims(kubeSub+":extra", "sigil"))
		}, "matches no mapping rule"},
		{"claim rule mismatch", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "repository", "org/other")) }, "claim 'repository'"},
		{"claim rule claim missing", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "repository", nil)) }, "claim 'repository'"},
		{"unconfigured issuer", func(t *testing.T) string { return rogue.sign(t, with2(good(), "iss", rogue.iss)) }, "is not trusted"},
		{"maps to no client", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "sub", "repo:org/ghost:x")) }, "no usable client"},
		{"expired", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "iat", now-600, "exp", now-120)) }, "expired"},
		{"no exp", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "exp", nil)) }, "no exp"},
		{"no iat", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "iat", nil)) }, "no iat"},
		{"iat older than max-age", func(t *testing.T) string {
			return s.kube.sign(t, with2(s.kube.claims(kubeSub, "sigil"), "iat", now-700, "exp", now+60))
		}, "issued more than 10m0s ago"},
		{"lifetime beyond max-age", func(t *testing.T) string {
			return s.kube.sign(t, with2(s.kube.claims(kubeSub, "sigil"), "iat", now, "exp", now+3600))
		}, "lifetime (exp - iat) is longer than 10m0s"},
		{"iat in the future", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "iat", now+600)) }, "iat is in the future"},
		{"nbf in the future", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "nbf", now+200)) }, "not valid yet"},
		{"no jti", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "jti", nil)) }, "no jti"},
		{"no sub", func(t *testing.T) string { return s.ci.sign(t, with2(good(), "sub", nil)) }, "no sub"},
		{"alg none", func(t *testing.T) string { return noneAssertion(t, good()) }, "signature does not verify"},
		{"HS256 keyed with the public key", func(t *testing.T) string { return hmacAssertion(t, s.ci.key, good()) }, "signature does not verify"},
		{"key not in the JWKS", func(t *testing.T) string { return stranger.sign(t, good(), nil) }, "signature does not verify"},
		{"other key under the issuer's kid", func(t *testing.T) string { return impostor.sign(t, good(), nil) }, "signature does not verify"},
		{"not a JWT", func(t *testing.T) string { return "not-a-jwt" }, "not a JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.bearer(t, tc.token(t), auth{})
			wantError(t, r, http.StatusBadRequest, "invalid_grant")
			if d := r.str(t, "error_description"); !strings.Contains(d, tc.want) {
				t.Errorf("error_description = %q, want it to contain %q", d, tc.want)
			}
		})
	}

	t.Run("replayed jti", func(t *testing.T) {
		tok := s.ci.sign(t, good())
		if r := s.bearer(t, tok, auth{}); r.status != http.StatusOK {
			t.Fatalf("first use: status %d: %s", r.status, r.body)
		}
		r := s.bearer(t, tok, auth{})
		wantError(t, r, http.StatusBadRequest, "invalid_grant")
		if d := r.str(t, "error_description"); !strings.Contains(d, "already used") {
			t.Errorf("error_description = %q", d)
		}
		// A refused token does not spend its jti: the same jti in a valid
		// token, after a refusal for a wrong aud, is accepted once.
		c := good()
		wantError(t, s.bearer(t, s.ci.sign(t, with2(c, "aud", "https://other.example")), auth{}), http.StatusBadRequest, "invalid_grant")
		if r := s.bearer(t, s.ci.sign(t, c), auth{}); r.status != http.StatusOK {
			t.Errorf("after a refusal: status %d: %s", r.status, r.body)
		}
	})

	recs := records(t, n, sigil.AuditQuery{Event: string(audit.FederationRefused)})
	if !slices.ContainsFunc(recs, func(r *audit.Record) bool {
		return r.Subject == "repo:evil/app:ref:refs/heads/main" && r.Detail["iss"] == s.ci.iss && strings.Contains(r.Detail["description"], "no mapping rule")
	}) {
		t.Errorf("no federation.refused record for the unmapped sub in %d records", len(recs))
	}
	for _, r := range recs {
		if r.Detail["iss"] == rogue.iss {
			t.Errorf("a refusal records the unverified iss %q", rogue.iss)
		}
	}
}

// TestFederationExchange: a trusted issuer's token as the subject token of
// a token exchange gives the client it maps to a token about itself, its
// act chain starting fresh; any other client, a replay, and the wrong
// declared type are refused.
func TestFederationExchange(t *testing.T) {
	s := newFedSetup(t)
	n := s.n
	ciAuth := auth{id: ciClient, secret: ciSecret}
	good := func() map[string]any {
		return with2(s.ci.claims(ciRepoSub, n.issuer), "repository", "org/app", "act", map[string]any{"sub": "someone-else"})
	}
	exchange := func(tok, typ string, a auth) reply {
		return n.postForm(t, "/token", url.Values{"grant_type": {grantExchange}, "subject_token": {tok},
			"subject_token_type": {typ}, "scope": {"deploy"}}, a)
	}
	ext := good()
	tok := s.ci.sign(t, ext)
	r := exchange(tok, issuer.TokenTypeJWT, ciAuth)
	if r.status != http.StatusOK {
		t.Fatalf("exchange: status %d: %s", r.status, r.body)
	}
	at := n.verifyJWX(t, r.str(t, "access_token"))
	sub, _ := at.Subject()
	cl := claims(t, r.str(t, "access_token"))
	act, _ := cl["act"].(map[string]any)
	if sub != ciClient || cl["client_id"] != ciClient || cl["scope"] != "deploy" || act["sub"] != ciClient || act["act"] != nil {
		t.Errorf("exchanged token sub %q client_id %v scope %v act %v; want %s, %s, deploy, {sub: %s}", sub, cl["client_id"], cl["scope"], cl["act"], ciClient, ciClient, ciClient)
	}
	if exp := num(t, cl, "exp"); exp > ext["exp"].(int64) {
		t.Errorf("exchanged token exp %d outlives the subject token's %d", exp, ext["exp"])
	}

	wantError(t, exchange(tok, issuer.TokenTypeJWT, ciAuth), http.StatusBadRequest, "invalid_request") // replay

	// Another client may not exchange a workload's token.
	b := n.newClient(t, admin.ClientSpec{Name: "other-agent", GrantTypes: []string{"client_credentials", grantExchange}})
	r = exchange(s.ci.sign(t, good()), issuer.TokenTypeJWT, basic(b))
	wantError(t, r, http.StatusBadRequest, "invalid_request")
	if d := r.str(t, "error_description"); !strings.Contains(d, "another client") {
		t.Errorf("error_description = %q", d)
	}
	// Declared as one of Sigil's access tokens, it is not one.
	wantError(t, exchange(s.ci.sign(t, good()), issuer.TokenTypeAccessToken, ciAuth), http.StatusBadRequest, "invalid_request")
	// A token of the trusted issuer refused by Federation (wrong aud).
	r = exchange(s.ci.sign(t, with2(good(), "aud", "https://other.example")), issuer.TokenTypeJWT, ciAuth)
	wantError(t, r, http.StatusBadRequest, "invalid_request")
	if d := r.str(t, "error_description"); !strings.Contains(d, "aud does not contain") {
		t.Errorf("error_description = %q", d)
	}
	// A token used with the JWT bearer grant is spent for exchange too.
	spent := s.ci.sign(t, good())
	if r := s.bearer(t, spent, auth{}); r.status != http.StatusOK {
		t.Fatalf("bearer: %d %s", r.status, r.body)
	}
	wantError(t, exchange(spent, issuer.TokenTypeJWT, ciAuth), http.StatusBadRequest, "invalid_request")
}
