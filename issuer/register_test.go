package issuer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/config"
)

// initialToken is the initial access token of the registration tests.
const initialToken = "initial-access-token-0123456789abcdef"

func withRegistrationToken(c *config.Config) { c.RegistrationToken = initialToken }
func withOpenRegistration(c *config.Config)  { c.RegistrationOpen = true }

// sendJSON sends body (JSON-encoded unless it is a string) to path with
// method, with token as a Bearer token when it is not empty.
func (n *testNode) sendJSON(t testing.TB, method, path string, body any, token string) reply {
	t.Helper()
	var rd *strings.Reader
	switch b := body.(type) {
	case nil:
		rd = strings.NewReader("")
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(enc))
	}
	req, err := http.NewRequest(method, n.url(path), rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return n.do(t, req)
}

// register registers metadata with the initial access token token and
// fails the test unless it succeeds.
func (n *testNode) register(t testing.TB, metadata map[string]any, token string) map[string]any {
	t.Helper()
	r := n.sendJSON(t, http.MethodPost, "/register", metadata, token)
	if r.status != http.StatusCreated {
		t.Fatalf("register: status %d: %s", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	return r.json(t)
}

// wantBearerChallenge checks a 401 from a registration endpoint: an
// RFC 6750 challenge, with error="invalid_token" when a token was sent.
func wantBearerChallenge(t testing.TB, r reply, sent bool) {
	t.Helper()
	wantError(t, r, http.StatusUnauthorized, "invalid_token")
	ch := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(ch, "Bearer ") || strings.Contains(ch, `error="invalid_token"`) != sent {
		t.Errorf("WWW-Authenticate = %q (token sent: %v)", ch, sent)
	}
}

func webApp() map[string]any {
	return map[string]any{
		"client_name":   "Web App",
		"redirect_uris": []string{"https://rp.example/callback"},
		"grant_types":   []string{"authorization_code", "refresh_token", "client_credentials"},
		"scope":         "openid profile read:files",
	}
}

// TestRegistrationOff: without settings there is no registration
// endpoint, and the metadata names none.
func TestRegistrationOff(t *testing.T) {
	n := startNode(t)
	if r := n.sendJSON(t, http.MethodPost, "/register", webApp(), ""); r.status != http.StatusNotFound {
		t.Errorf("POST /register: status %d, want 404", r.status)
	}
	m := n.get(t, "/.well-known/openid-configuration").json(t)
	for _, name := range []string{"registration_endpoint", "client_id_metadata_document_supported"} {
		if _, ok := m[name]; ok {
			t.Errorf("metadata has %s = %v", name, m[name])
		}
	}
}

// TestRegistrationInitialToken: a protected registration endpoint wants
// the initial access token as a Bearer token.
func TestRegistrationInitialToken(t *testing.T) {
	n := startNode(t, withRegistrationToken)
	m := n.get(t, "/.well-known/oauth-authorization-server").json(t)
	if m["registration_endpoint"] != n.url("/register") {
		t.Errorf("registration_endpoint = %v", m["registration_endpoint"])
	}
	wantBearerChallenge(t, n.sendJSON(t, http.MethodPost, "/register", webApp(), ""), false)
	wantBearerChallenge(t, n.sendJSON(t, http.MethodPost, "/register", webApp(), initialToken+"x"), true)
	r := n.postRaw(t, "/register", "application/json", `{}`, auth{id: "a", secret: "b"})
	wantBearerChallenge(t, r, false)
	n.register(t, webApp(), initialToken)
	if r := n.sendJSON(t, http.MethodGet, "/register", nil, initialToken); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Errorf("GET /register: %d Allow %q", r.status, r.header.Get("Allow"))
	}
}

// TestRegistrationLifecycle registers a confidential client, uses it,
// then reads, updates and deletes its registration (RFC 7592), checking
// the audit trail at the end.
func TestRegistrationLifecycle(t *testing.T) {
	n := startNode(t, withRegistrationToken)
	got := n.register(t, webApp(), initialToken)
	id, _ := got["client_id"].(string)
	sec, _ := got["client_secret"].(string)
	rat, _ := got["registration_access_token"].(string)
	if id == "" || sec == "" || len(rat) < 43 {
		t.Fatalf("response lacks client_id, client_secret or registration_access_token: %v", got)
	}
	for name, want := range map[string]any{
		"registration_client_uri":    n.url("/register/" + id),
		"client_secret_expires_at":   json.Number("0"),
		"token_endpoint_auth_method": "client_secret_basic",
		"scope":                      "openid profile", // read:files is not allowed to self-registered clients
		"client_name":                "Web App",
	} {
		if got[name] != want {
			t.Errorf("%s = %#v, want %#v", name, got[name], want)
		}
	}
	if rt := strList(got["response_types"]); !slices.Equal(rt, []string{"code"}) {
		t.Errorf("response_types = %v", rt)
	}
	if num(t, got, "client_id_issued_at") == 0 {
		t.Error("client_id_issued_at is 0")
	}
	info := &admin.ClientInfo{ClientID: id, ClientSecret: sec}
	n.token(t, info, url.Values{"scope": {"openid"}})

	// Read: a new registration access token each time; the old one dies.
	wantBearerChallenge(t, n.sendJSON(t, http.MethodGet, "/register/"+id, nil, ""), false)
	wantBearerChallenge(t, n.sendJSON(t, http.MethodGet, "/register/"+id, nil, initialToken), true)
	r := n.sendJSON(t, http.MethodGet, "/register/"+id, nil, rat)
	if r.status != http.StatusOK {
		t.Fatalf("read: %d %s", r.status, r.body)
	}
	read := r.json(t)
	if read["client_id"] != id || read["client_secret"] != nil || read["registration_access_token"] == rat {
		t.Errorf("read response: %s", r.body)
	}
	wantBearerChallenge(t, n.sendJSON(t, http.MethodGet, "/register/"+id, nil, rat), true)
	rat = read["registration_access_token"].(string)
	// Another client's token does not open this one.
	other := n.register(t, webApp(), initialToken)
	wantBearerChallenge(t, n.sendJSON(t, http.MethodGet, "/register/"+id, nil, other["registration_access_token"].(string)), true)

	// Update: the whole registration is replaced; the secret stays.
	upd := webApp()
	upd["client_id"] = id
	upd["client_name"] = "Web App 2"
	upd["redirect_uris"] = []string{"https://rp.example/cb2"}
	upd["registration_access_token"] = "echoed back, ignored"
	bad := map[string]any{"client_id": "someone-else"}
	for k, v := range upd {
		if k != "client_id" {
			bad[k] = v
		}
	}
	wantError(t, n.sendJSON(t, http.MethodPut, "/register/"+id, bad, rat), http.StatusBadRequest, "invalid_client_metadata")
	upd["client_secret"] = "not-the-secret"
	wantError(t, n.sendJSON(t, http.MethodPut, "/register/"+id, upd, rat), http.StatusBadRequest, "invalid_client_metadata")
	upd["client_secret"] = sec
	r = n.sendJSON(t, http.MethodPut, "/register/"+id, upd, rat)
	if r.status != http.StatusOK {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	updated := r.json(t)
	if updated["client_name"] != "Web App 2" || !slices.Equal(strList(updated["redirect_uris"]), []string{"https://rp.example/cb2"}) || updated["client_secret"] != nil {
		t.Errorf("update response: %s", r.body)
	}
	rat = updated["registration_access_token"].(string)
	c, err := n.admin().Client(context.Background(), id)
	if err != nil || c.Name != "Web App 2" {
		t.Fatalf("stored after update: %+v, %v", c, err)
	}
	n.token(t, info, nil) // the secret still works

	// Delete: the client, its secret and its token stop working.
	r = n.sendJSON(t, http.MethodDelete, "/register/"+id, nil, rat)
	if r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantBearerChallenge(t, n.sendJSON(t, http.MethodGet, "/register/"+id, nil, rat), true)
	wantError(t, n.postForm(t, "/token", url.Values{"grant_type": {"client_credentials"}}, basic(info)), http.StatusUnauthorized, "invalid_client")

	// Every change, with the name and redirect URIs the client had, and
	// every refused token (the initial access token, a spent registration
	// access token, another client's).
	var events []audit.Event
	for _, rec := range records(t, n, sigil.AuditQuery{ClientID: id, Limit: 100}) {
		if !strings.HasPrefix(string(rec.Event), "client.") {
			continue
		}
		events = append(events, rec.Event)
		switch {
		case rec.Event == audit.RegistrationRefused:
			if rec.Outcome != audit.Failure || rec.Reason != "invalid_token" || rec.Detail["why"] != "wrong registration access token" {
				t.Errorf("refusal record %+v", rec)
			}
		case rec.Outcome != audit.Success || rec.Detail["by"] != "registration" || rec.RequestID == "" ||
			!strings.HasPrefix(rec.Detail["client_name"], "Web App") || !strings.HasPrefix(rec.Detail["redirect_uris"], "https://rp.example/c") ||
			rec.Detail["registered_open"] != "false":
			t.Errorf("record %+v", rec)
		}
	}
	want := []audit.Event{audit.ClientRegistered, audit.RegistrationRefused, audit.ClientUpdated,
		audit.RegistrationRefused, audit.RegistrationRefused, audit.ClientUpdated, audit.ClientDeleted}
	if !slices.Equal(events, want) {
		t.Errorf("client events = %v, want %v", events, want)
	}
}

// TestRegistrationOperatorClients: clients the operator created have no
// registration access token, so no token opens their configuration.
func TestRegistrationOperatorClients(t *testing.T) {
	n := startNode(t, withRegistrationToken)
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	wantBearerChallenge(t, n.sendJSON(t, http.MethodGet, "/register/"+c.ClientID, nil, initialToken), true)
	wantBearerChallenge(t, n.sendJSON(t, http.MethodDelete, "/register/"+c.ClientID, nil, c.ClientSecret), true)
}

// TestRegistrationReplacesMetadata: members only the operator may set are
// ignored, scopes outside the policy are dropped, and the policy's
// audiences are given (RFC 7591 §2).
func TestRegistrationReplacesMetadata(t *testing.T) {
	n := startNode(t, withRegistrationToken, func(c *config.Config) {
		c.RegistrationScopes = []string{"openid", "mcp:tools"}
		c.RegistrationAudiences = []string{"https://mcp.example.com/mcp"}
	})
	md := webApp()
	md["scope"] = "openid mcp:tools admin"
	md["claims"] = map[string]any{"role": "admin"}
	md["introspect"] = true
	md["audience"] = []string{"https://payroll.example.com"}
	md["access_token_ttl"] = 900
	md["logo_uri"] = "https://rp.example/logo.png"
	got := n.register(t, md, initialToken)
	if got["scope"] != "openid mcp:tools" {
		t.Errorf("scope = %v", got["scope"])
	}
	for _, name := range []string{"claims", "introspect", "audience", "access_token_ttl", "logo_uri"} {
		if _, ok := got[name]; ok {
			t.Errorf("response has %s", name)
		}
	}
	c, err := n.admin().Client(context.Background(), got["client_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if c.Claims != nil || c.Introspect || !slices.Equal(c.Audience, []string{"https://mcp.example.com/mcp"}) || c.AccessTokenTTL != 0 {
		t.Errorf("stored client: %+v", c)
	}
	// No scope asked: every allowed one.
	delete(md, "scope")
	if got := n.register(t, md, initialToken); got["scope"] != "openid mcp:tools" {
		t.Errorf("scope without a request = %v", got["scope"])
	}
}

// TestRegistrationRefusals: metadata that cannot be registered gets
// RFC 7591 §3.2.2 errors.
func TestRegistrationRefusals(t *testing.T) {
	n := startNode(t, withRegistrationToken)
	k := newClientKey(t, "ES256", "k1")
	privJWKS, _ := json.Marshal(map[string]any{"keys": []any{k.priv}})
	with := func(kv ...any) map[string]any {
		m := webApp()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	for _, tc := range []struct {
		name string
		body any
		code string
	}{
		{"fragment", with("redirect_uris", []string{"https://rp.example/cb#x"}), "invalid_redirect_uri"},
		{"http-not-loopback", with("redirect_uris", []string{"http://rp.example/cb"}), "invalid_redirect_uri"},
		{"wildcard", with("redirect_uris", []string{"https://*.rp.example/cb"}), "invalid_redirect_uri"},
		{"javascript", with("redirect_uris", []string{"javascript:alert(1)"}), "invalid_redirect_uri"},
		{"no-redirect-uris", with("redirect_uris", nil), "invalid_redirect_uri"},
		{"implicit", with("grant_types", []string{"implicit"}), "invalid_client_metadata"},
		{"password", with("grant_types", []string{"password"}), "invalid_client_metadata"},
		{"token-response", with("response_types", []string{"token"}), "invalid_client_metadata"},
		{"code-without-grant", with("grant_types", []string{"client_credentials"}, "response_types", []string{"code"}), "invalid_client_metadata"},
		{"refresh-alone", with("grant_types", []string{"refresh_token"}), "invalid_client_metadata"},
		{"public-client-credentials", with("token_endpoint_auth_method", "none"), "invalid_client_metadata"},
		{"client-secret-jwt", with("token_endpoint_auth_method", "client_secret_jwt"), "invalid_client_metadata"},
		{"jwks-uri", with("token_endpoint_auth_method", "private_key_jwt", "jwks_uri", "https://rp.example/jwks"), "invalid_client_metadata"},
		{"private-key", with("token_endpoint_auth_method", "private_key_jwt", "jwks", json.RawMessage(privJWKS)), "invalid_client_metadata"},
		{"no-keys", with("token_endpoint_auth_method", "private_key_jwt"), "invalid_client_metadata"},
		{"long-name", with("client_name", strings.Repeat("n", 201)), "invalid_client_metadata"},
		{"not-json", `{"redirect_uris":`, "invalid_client_metadata"},
		{"array", `[{"client_name":"x"}]`, "invalid_client_metadata"},
		{"wrong-type", `{"redirect_uris":"https://rp.example/cb"}`, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, n.sendJSON(t, http.MethodPost, "/register", tc.body, initialToken), http.StatusBadRequest, tc.code)
		})
	}
	t.Run("form-body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, n.url("/register"), strings.NewReader("client_name=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+initialToken)
		wantError(t, n.do(t, req), http.StatusBadRequest, "invalid_request")
	})
	t.Run("too-large", func(t *testing.T) {
		body := `{"client_name":"` + strings.Repeat("x", 70<<10) + `"}`
		wantError(t, n.sendJSON(t, http.MethodPost, "/register", body, initialToken), http.StatusBadRequest, "invalid_request")
	})
	t.Run("private-key-jwt", func(t *testing.T) {
		got := n.register(t, with("token_endpoint_auth_method", "private_key_jwt", "jwks", k.jwks(t)), initialToken)
		if got["client_secret"] != nil || got["client_secret_expires_at"] != nil || got["jwks"] == nil {
			t.Errorf("private_key_jwt registration: %v", got)
		}
		id := got["client_id"].(string)
		r := n.postForm(t, "/token", assertionForm(k.sign(t, assertionClaims(id, n.url("/token")), nil), id), auth{})
		if r.status != http.StatusOK {
			t.Errorf("token with the registered key: %d %s", r.status, r.body)
		}
	})
}

// TestOpenRegistrationCodeFlow: with open registration a public client
// registers without a token and completes the code flow with PKCE and a
// refresh; client_credentials needs a token even then.
func TestOpenRegistrationCodeFlow(t *testing.T) {
	n := startNode(t, withOpenRegistration)
	got := n.register(t, map[string]any{
		"client_name":                "Native App",
		"redirect_uris":              []string{"http://127.0.0.1:7777/callback"},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_method": "none",
		"application_type":           "native",
	}, "")
	if got["client_secret"] != nil || got["client_secret_expires_at"] != nil {
		t.Errorf("a public client got a secret: %v", got)
	}
	c := rp{info: &admin.ClientInfo{ClientID: got["client_id"].(string)}, redirectURI: "http://127.0.0.1:7777/callback"}
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()
	consent := b.authorize(c.authParams(p, "openid offline_access"))
	consent = b.signIn(consent, "alice", alicePassword)
	if !consent.isConsent() || !strings.Contains(consent.body, "Native App") {
		t.Fatalf("consent page: %d %.400s", consent.status, consent.body)
	}
	resp := b.decide(consent, "allow").response(t, c.redirectURI)
	tr := n.redeem(t, c, resp.Get("code"), p.verifier)
	if tr.status != http.StatusOK || tr.str(t, "id_token") == "" || tr.str(t, "refresh_token") == "" {
		t.Fatalf("redeem: %d %s", tr.status, tr.body)
	}
	if r := n.refresh(t, c, tr.str(t, "refresh_token"), nil); r.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}

	wantError(t, n.sendJSON(t, http.MethodPost, "/register", webApp(), ""), http.StatusBadRequest, "invalid_client_metadata")
	// An open server still refuses a wrong token rather than ignoring it.
	wantBearerChallenge(t, n.sendJSON(t, http.MethodPost, "/register", webApp(), "wrong"), true)
}

// TestOpenRegistrationRateLimit: open registrations are limited per peer
// address.
func TestOpenRegistrationRateLimit(t *testing.T) {
	n := startNode(t, withOpenRegistration)
	md := map[string]any{"redirect_uris": []string{"https://rp.example/cb"}, "token_endpoint_auth_method": "none"}
	limited := false
	for i := 0; i < 15 && !limited; i++ {
		r := n.sendJSON(t, http.MethodPost, "/register", md, "")
		switch r.status {
		case http.StatusCreated:
		case http.StatusTooManyRequests:
			limited = true
			if r.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		default:
			t.Fatalf("registration %d: %d %s", i, r.status, r.body)
		}
	}
	if !limited {
		t.Error("15 open registrations at once were all accepted")
	}
}
