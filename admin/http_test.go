package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/server"
)

// node is a real Sigil node with both listeners on loopback.
type node struct {
	srv         *server.Server
	cfg         config.Config
	public, adm string // base URLs
	token       string // the admin token
}

func startNode(t *testing.T) *node {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0" // the issuer URL is not used here
	cfg.AdminListen = "127.0.0.1:0"
	cfg.KeysPrepublish = 0
	ctx := context.Background()
	core, err := server.OpenCore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.Start(ctx, core, log)
	if err != nil {
		core.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &node{srv: srv, cfg: cfg, public: "http://" + srv.PublicAddr(), adm: "http://" + srv.AdminAddr(), token: srv.AdminToken.Reveal()}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d: body %q: %v", r.status, r.body, err)
	}
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// call sends an admin API request with the admin token; body is sent as
// JSON unless it is a string (sent as is) or nil.
func (n *node) call(t *testing.T, method, path string, body any) reply {
	t.Helper()
	return n.callAs(t, "Bearer "+n.token, method, path, body)
}

func (n *node) callAs(t *testing.T, authz, method, path string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, n.adm+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	return do(t, req)
}

// tokenStatus asks the public token endpoint for a client_credentials
// token with Basic credentials and returns the status.
func (n *node) tokenStatus(t *testing.T, id, secret string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.public+"/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	r := do(t, req)
	var m struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(r.body, &m)
	return r.status, m.AccessToken
}

func (n *node) active(t *testing.T, id, secret, tok string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.public+"/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	r := do(t, req)
	var m struct {
		Active bool `json:"active"`
	}
	r.decode(t, &m)
	return m.Active
}

func wantAPIError(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d: %s", r.status, status, r.body)
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	r.decode(t, &e)
	if e.Error != code {
		t.Errorf("error %q, want %q", e.Error, code)
	}
	if status == http.StatusBadRequest && e.Description == "" {
		t.Errorf("400 without a message: %s", r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
}

func TestAdminAuth(t *testing.T) {
	n := startNode(t)
	for _, tc := range []struct{ name, authz string }{
		{"no-token", ""},
		{"wrong-token", "Bearer " + strings.Repeat("x", len(n.token))},
		{"token-prefix", "Bearer " + n.token[:len(n.token)-1]},
		{"basic", "Basic " + n.token},
		{"empty-bearer", "Bearer "},
		{"token-with-space", "Bearer " + n.token + " x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []struct{ method, path string }{
				{"GET", "/admin/v1/clients"}, {"POST", "/admin/v1/clients"}, {"GET", "/admin/v1/keys"},
				{"POST", "/admin/v1/keys/rotate"}, {"POST", "/admin/v1/revocations"}, {"DELETE", "/admin/v1/clients/x"},
			} {
				r := n.callAs(t, tc.authz, p.method, p.path, nil)
				wantAPIError(t, r, http.StatusUnauthorized, "unauthorized")
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s %s: WWW-Authenticate %q", p.method, p.path, r.header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	t.Run("scheme-case-insensitive", func(t *testing.T) {
		// RFC 7235 §2.1: the scheme name is case-insensitive.
		if r := n.callAs(t, "bearer "+n.token, "GET", "/admin/v1/clients", nil); r.status != http.StatusOK {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})
	t.Run("token-file", func(t *testing.T) {
		path := filepath.Join(n.cfg.DataDir, admin.TokenFile)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("admin-token mode %v, want 0600", fi.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		if strings.TrimSpace(string(b)) != n.token {
			t.Error("admin-token file does not hold the token the server uses")
		}
	})
	t.Run("listeners-separate", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, n.public+"/admin/v1/clients", nil)
		req.Header.Set("Authorization", "Bearer "+n.token)
		if r := do(t, req); r.status != http.StatusNotFound {
			t.Errorf("admin API on the public listener: status %d", r.status)
		}
		if r := n.call(t, "GET", "/.well-known/openid-configuration", nil); r.status != http.StatusNotFound {
			t.Errorf("discovery on the admin listener: status %d", r.status)
		}
	})
}

func TestAdminClients(t *testing.T) {
	n := startNode(t)
	spec := map[string]any{
		"client_name": "billing", "scope": "read write", "default_scope": "read",
		"audience": []string{"https://api.example"}, "claims": map[string]any{"department": "finance"},
		"access_token_ttl": 120,
	}
	r := n.call(t, "POST", "/admin/v1/clients", spec)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created admin.ClientInfo
	r.decode(t, &created)
	id, sec := created.ClientID, created.ClientSecret

	t.Run("create", func(t *testing.T) {
		if id == "" || len(sec) < 32 {
			t.Fatalf("client_id %q, secret of %d chars", id, len(sec))
		}
		var m map[string]any
		r.decode(t, &m)
		for k, want := range map[string]any{
			"client_name": "billing", "scope": "read write", "default_scope": "read",
			"token_endpoint_auth_method": "client_secret_basic", "access_token_ttl": 120.0,
		} {
			if m[k] != want {
				t.Errorf("%s = %v, want %v", k, m[k], want)
			}
		}
		if gt, _ := m["grant_types"].([]any); len(gt) != 1 || gt[0] != "client_credentials" {
			t.Errorf("grant_types %v", m["grant_types"])
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q on a response with a secret", r.header.Get("Cache-Control"))
		}
		if st, _ := n.tokenStatus(t, id, sec); st != http.StatusOK {
			t.Errorf("token with the new secret: %d", st)
		}
	})
	t.Run("get", func(t *testing.T) {
		r := n.call(t, "GET", "/admin/v1/clients/"+id, nil)
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		if bytes.Contains(r.body, []byte("client_secret\"")) || bytes.Contains(r.body, []byte(sec)) {
			t.Errorf("get shows the secret: %s", r.body)
		}
		var got admin.ClientInfo
		r.decode(t, &got)
		if got.ClientID != id || got.Name != "billing" || got.Claims["department"] != "finance" {
			t.Errorf("get: %+v", got)
		}
	})
	t.Run("list", func(t *testing.T) {
		n.call(t, "POST", "/admin/v1/clients", map[string]any{"client_name": "second"})
		r := n.call(t, "GET", "/admin/v1/clients", nil)
		var list []admin.ClientInfo
		r.decode(t, &list)
		if r.status != http.StatusOK || len(list) != 2 {
			t.Fatalf("status %d, %d clients", r.status, len(list))
		}
		if !slices.ContainsFunc(list, func(c admin.ClientInfo) bool { return c.ClientID == id }) {
			t.Error("created client not listed")
		}
		if bytes.Contains(r.body, []byte(sec)) || bytes.Contains(r.body, []byte("client_secret\"")) {
			t.Error("list shows a secret")
		}
	})
	t.Run("rotate-secret", func(t *testing.T) {
		r := n.call(t, "POST", "/admin/v1/clients/"+id+"/rotate-secret", nil)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var rot admin.ClientInfo
		r.decode(t, &rot)
		if rot.ClientSecret == "" || rot.ClientSecret == sec {
			t.Fatal("no new secret")
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			st, _ := n.tokenStatus(t, id, sec)
			if st == http.StatusUnauthorized {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("old secret still accepted (%d)", st)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if st, _ := n.tokenStatus(t, id, rot.ClientSecret); st != http.StatusOK {
			t.Errorf("new secret: %d", st)
		}
		sec = rot.ClientSecret
	})
	t.Run("rotate-secret-unknown", func(t *testing.T) {
		wantAPIError(t, n.call(t, "POST", "/admin/v1/clients/nope/rotate-secret", nil), 404, "not_found")
	})
	t.Run("delete", func(t *testing.T) {
		_, tok := n.tokenStatus(t, id, sec)
		rs := n.call(t, "POST", "/admin/v1/clients", map[string]any{"client_name": "rs", "audience": []string{"https://api.example"}, "introspect": true})
		var rsInfo admin.ClientInfo
		rs.decode(t, &rsInfo)
		if !n.active(t, rsInfo.ClientID, rsInfo.ClientSecret, tok) {
			t.Fatal("token not active before delete")
		}
		if r := n.call(t, "DELETE", "/admin/v1/clients/"+id, nil); r.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		wantAPIError(t, n.call(t, "GET", "/admin/v1/clients/"+id, nil), 404, "not_found")
		wantAPIError(t, n.call(t, "DELETE", "/admin/v1/clients/"+id, nil), 404, "not_found")
		if st, _ := n.tokenStatus(t, id, sec); st != http.StatusUnauthorized {
			t.Errorf("deleted client gets a token: %d", st)
		}
		if n.active(t, rsInfo.ClientID, rsInfo.ClientSecret, tok) {
			t.Error("deleted client's token still active")
		}
	})
}

func TestAdminValidation(t *testing.T) {
	n := startNode(t)
	jwks := `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"ES256","kid":"k"}]}`
	for _, tc := range []struct {
		name string
		body any
	}{
		{"registered-claim-sub", map[string]any{"client_name": "x", "claims": map[string]any{"sub": "admin"}}},
		{"registered-claim-scope", map[string]any{"client_name": "x", "claims": map[string]any{"scope": "admin"}}},
		{"registered-claim-cnf", map[string]any{"client_name": "x", "claims": map[string]any{"cnf": map[string]any{}}}},
		{"registered-claim-case-folded", map[string]any{"client_name": "x", "claims": map[string]any{"Scope": "admin"}}},
		{"introspection-member-active", map[string]any{"client_name": "x", "claims": map[string]any{"active": false}}},
		{"introspection-member-token-type", map[string]any{"client_name": "x", "claims": map[string]any{"TOKEN_TYPE": "x"}}},
		// 9223372037 s overflows a Duration into a negative TTL.
		{"ttl-overflow", map[string]any{"client_name": "x", "access_token_ttl": int64(9223372037)}},
		{"introspection-member-username", map[string]any{"client_name": "x", "claims": map[string]any{"username": "root"}}},
		{"unknown-grant", map[string]any{"client_name": "x", "grant_types": []string{"password"}}},
		{"default-scope-not-in-scopes", map[string]any{"client_name": "x", "scope": "read", "default_scope": "write"}},
		{"private_key_jwt-without-jwks", map[string]any{"client_name": "x", "token_endpoint_auth_method": "private_key_jwt"}},
		{"jwks-with-private-key", map[string]any{"client_name": "x", "token_endpoint_auth_method": "private_key_jwt",
			"jwks": map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "alg": "ES256", "x": "AA", "y": "AA", "d": "AA"}}}}},
		{"jwks-with-symmetric-key", map[string]any{"client_name": "x", "token_endpoint_auth_method": "private_key_jwt",
			"jwks": map[string]any{"keys": []any{map[string]any{"kty": "oct", "alg": "HS256", "k": "c2VjcmV0"}}}}},
		{"jwks-with-secret-method", map[string]any{"client_name": "x", "token_endpoint_auth_method": "client_secret_basic", "jwks": json.RawMessage(jwks)}},
		{"unknown-auth-method", map[string]any{"client_name": "x", "token_endpoint_auth_method": "tls_client_auth"}},
		{"none-with-client_credentials", map[string]any{"client_name": "x", "token_endpoint_auth_method": "none"}},
		{"no-name", map[string]any{"scope": "read"}},
		{"bad-scope-chars", map[string]any{"client_name": "x", "scope": `read "quoted"`}},
		{"relative-audience", map[string]any{"client_name": "x", "audience": []string{"/api"}}},
		{"audience-fragment", map[string]any{"client_name": "x", "audience": []string{"https://api.example#f"}}},
		{"ttl-over-max", map[string]any{"client_name": "x", "access_token_ttl": 3600}},
		{"ttl-negative", map[string]any{"client_name": "x", "access_token_ttl": -1}},
		{"unknown-field", map[string]any{"client_name": "x", "client_secret": "mine"}},
		{"not-json", `{"client_name":`},
		{"trailing-data", `{"client_name":"x"} {}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantAPIError(t, n.call(t, "POST", "/admin/v1/clients", tc.body), http.StatusBadRequest, "invalid_request")
		})
	}
	t.Run("wrong-content-type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, n.adm+"/admin/v1/clients", strings.NewReader(`{"client_name":"x"}`))
		req.Header.Set("Authorization", "Bearer "+n.token)
		req.Header.Set("Content-Type", "text/plain")
		wantAPIError(t, do(t, req), http.StatusBadRequest, "invalid_request")
	})
	t.Run("nothing-created", func(t *testing.T) {
		var list []admin.ClientInfo
		n.call(t, "GET", "/admin/v1/clients", nil).decode(t, &list)
		if len(list) != 0 {
			t.Errorf("%d clients created by refused requests", len(list))
		}
	})
	t.Run("private_key_jwt-with-jwks", func(t *testing.T) {
		r := n.call(t, "POST", "/admin/v1/clients", map[string]any{"client_name": "x", "jwks": json.RawMessage(jwks)})
		if r.status != http.StatusCreated {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var c admin.ClientInfo
		r.decode(t, &c)
		if c.ClientSecret != "" || c.AuthMethod != "private_key_jwt" {
			t.Errorf("secret %q, method %q", c.ClientSecret, c.AuthMethod)
		}
		wantAPIError(t, n.call(t, "POST", "/admin/v1/clients/"+c.ClientID+"/rotate-secret", nil), http.StatusBadRequest, "invalid_request")
	})
}

func TestAdminKeys(t *testing.T) {
	n := startNode(t)
	list := func(t *testing.T) []admin.KeyInfo {
		t.Helper()
		r := n.call(t, "GET", "/admin/v1/keys", nil)
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		var ks []admin.KeyInfo
		r.decode(t, &ks)
		return ks
	}
	t.Run("list", func(t *testing.T) {
		ks := list(t)
		var algs []string
		for _, k := range ks {
			if k.State != "active" || k.KID == "" || k.CreatedAt.IsZero() {
				t.Errorf("key %+v", k)
			}
			algs = append(algs, k.Alg)
		}
		slices.Sort(algs)
		if strings.Join(algs, ",") != "ES256,RS256" {
			t.Errorf("algorithms %v, want ES256 and RS256", algs)
		}
		r := n.call(t, "GET", "/admin/v1/keys", nil)
		var raw []map[string]any
		r.decode(t, &raw)
		for _, k := range raw {
			if ts, _ := k["created_at"].(string); !strings.HasSuffix(ts, "Z") {
				t.Errorf("created_at %q is not RFC 3339 UTC", ts)
			}
		}
	})
	t.Run("rotate-default", func(t *testing.T) {
		r := n.callAs(t, "Bearer "+n.token, "POST", "/admin/v1/keys/rotate", nil)
		if r.status != http.StatusCreated {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var k admin.KeyInfo
		r.decode(t, &k)
		if k.Alg != "ES256" {
			t.Errorf("alg %s", k.Alg)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !slices.ContainsFunc(list(t), func(x admin.KeyInfo) bool { return x.KID == k.KID && x.State == "active" }) {
			if time.Now().After(deadline) {
				t.Fatal("rotated key never became active with prepublish 0")
			}
			time.Sleep(20 * time.Millisecond)
		}
		retired := 0
		for _, x := range list(t) {
			if x.State == "retired" {
				retired++
			}
		}
		if retired != 1 {
			t.Errorf("%d retired keys, want 1", retired)
		}
	})
	t.Run("rotate-EdDSA", func(t *testing.T) {
		r := n.call(t, "POST", "/admin/v1/keys/rotate", map[string]string{"alg": "EdDSA"})
		var k admin.KeyInfo
		r.decode(t, &k)
		if r.status != http.StatusCreated || k.Alg != "EdDSA" {
			t.Errorf("status %d, key %+v", r.status, k)
		}
	})
	t.Run("rotate-bad-alg", func(t *testing.T) {
		for _, alg := range []string{"HS256", "none", "RS512"} {
			wantAPIError(t, n.call(t, "POST", "/admin/v1/keys/rotate", map[string]string{"alg": alg}), http.StatusBadRequest, "invalid_request")
		}
	})
}

func TestAdminRevocations(t *testing.T) {
	n := startNode(t)
	var c admin.ClientInfo
	n.call(t, "POST", "/admin/v1/clients", map[string]any{"client_name": "victim"}).decode(t, &c)
	_, tok := n.tokenStatus(t, c.ClientID, c.ClientSecret)
	if !n.active(t, c.ClientID, c.ClientSecret, tok) {
		t.Fatal("fresh token inactive")
	}
	for _, tc := range []struct {
		name string
		body any
	}{
		{"none-named", map[string]string{}},
		{"two-named", map[string]string{"client": c.ClientID, "subject": c.ClientID}},
		{"unknown-field", map[string]string{"token": tok}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantAPIError(t, n.call(t, "POST", "/admin/v1/revocations", tc.body), http.StatusBadRequest, "invalid_request")
		})
	}
	t.Run("by-client", func(t *testing.T) {
		if r := n.call(t, "POST", "/admin/v1/revocations", map[string]string{"client": c.ClientID}); r.status != http.StatusNoContent {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if n.active(t, c.ClientID, c.ClientSecret, tok) {
			t.Error("token active after revocation by client")
		}
	})
	t.Run("by-jti", func(t *testing.T) {
		var d admin.ClientInfo
		n.call(t, "POST", "/admin/v1/clients", map[string]any{"client_name": "other"}).decode(t, &d)
		_, tok := n.tokenStatus(t, d.ClientID, d.ClientSecret)
		var claims struct {
			JTI string `json:"jti"`
		}
		req, _ := http.NewRequest(http.MethodPost, n.public+"/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(d.ClientID, d.ClientSecret)
		do(t, req).decode(t, &claims)
		if r := n.call(t, "POST", "/admin/v1/revocations", map[string]string{"jti": claims.JTI}); r.status != http.StatusNoContent {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if n.active(t, d.ClientID, d.ClientSecret, tok) {
			t.Error("token active after revocation by jti")
		}
	})
}
