package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestRealClients drives the node with independent, widely used clients:
// golang.org/x/oauth2 for tokens, go-oidc for discovery, jwx for the JWKS
// and signature verification.
func TestRealClients(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()

	t.Run("clientcredentials/AuthStyleInHeader", func(t *testing.T) {
		c := n.newClient(t, admin.ClientSpec{Scope: "read write"})
		cc := clientcredentials.Config{
			ClientID: c.ClientID, ClientSecret: c.ClientSecret,
			TokenURL: n.url("/token"), Scopes: []string{"read"},
			AuthStyle: oauth2.AuthStyleInHeader,
		}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("x/oauth2 Token: %v", err)
		}
		if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
			t.Errorf("token_type %q, expiry %v", tok.TokenType, tok.Expiry)
		}
		if got := tok.Extra("scope"); got != "read" {
			t.Errorf("scope = %v, want read", got)
		}
		n.verifyJWX(t, tok.AccessToken)
	})

	t.Run("clientcredentials/AuthStyleInParams", func(t *testing.T) {
		c := n.newClient(t, admin.ClientSpec{Scope: "read", AuthMethod: sigil.AuthSecretPost})
		cc := clientcredentials.Config{
			ClientID: c.ClientID, ClientSecret: c.ClientSecret,
			TokenURL: n.url("/token"), AuthStyle: oauth2.AuthStyleInParams,
		}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("x/oauth2 Token: %v", err)
		}
		if got := claims(t, tok.AccessToken)["client_id"]; got != c.ClientID {
			t.Errorf("client_id = %v, want %s", got, c.ClientID)
		}
	})

	t.Run("clientcredentials/TokenSource", func(t *testing.T) {
		c := n.newClient(t, admin.ClientSpec{Scope: "read"})
		cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: n.url("/token")}
		tok, err := cc.TokenSource(ctx).Token()
		if err != nil || !tok.Valid() {
			t.Fatalf("TokenSource: %v, valid %v", err, tok.Valid())
		}
	})

	t.Run("go-oidc/NewProvider", func(t *testing.T) {
		p, err := oidc.NewProvider(ctx, n.issuer)
		if err != nil {
			t.Fatalf("oidc.NewProvider: %v", err)
		}
		if got := p.Endpoint().TokenURL; got != n.url("/token") {
			t.Errorf("TokenURL = %q", got)
		}
		var extra struct {
			JWKSURI       string `json:"jwks_uri"`
			Introspection string `json:"introspection_endpoint"`
			Revocation    string `json:"revocation_endpoint"`
		}
		if err := p.Claims(&extra); err != nil {
			t.Fatal(err)
		}
		want := struct{ JWKSURI, Introspection, Revocation string }{
			n.url("/.well-known/jwks.json"), n.url("/introspect"), n.url("/revoke"),
		}
		if diff := cmp.Diff(want, struct{ JWKSURI, Introspection, Revocation string }(extra)); diff != "" {
			t.Errorf("endpoints (-want +got):\n%s", diff)
		}
	})
}

func TestMetadata(t *testing.T) {
	n := startNode(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		t.Run(path, func(t *testing.T) {
			r := n.get(t, path)
			if r.status != http.StatusOK {
				t.Fatalf("status %d", r.status)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			m := r.json(t)
			for name, want := range map[string]string{
				"issuer":                 n.issuer,
				"token_endpoint":         n.url("/token"),
				"jwks_uri":               n.url("/.well-known/jwks.json"),
				"introspection_endpoint": n.url("/introspect"),
				"revocation_endpoint":    n.url("/revoke"),
			} {
				if m[name] != want {
					t.Errorf("%s = %v, want %s", name, m[name], want)
				}
			}
			for name, want := range map[string][]string{
				"token_endpoint_auth_signing_alg_values_supported": {"ES256", "RS256", "PS256", "EdDSA"},
				"id_token_signing_alg_values_supported":            {"RS256"},
				"token_endpoint_auth_methods_supported":            {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
				"introspection_endpoint_auth_methods_supported":    {"client_secret_basic", "client_secret_post", "private_key_jwt"},
				"grant_types_supported":                            {"client_credentials", "authorization_code", "refresh_token"},
				"response_types_supported":                         {"code"},
				"code_challenge_methods_supported":                 {"S256"},
				"authorization_details_types_supported":            {"mcp_tool"},
			} {
				got := strList(m[name])
				for _, w := range want {
					if !slices.Contains(got, w) {
						t.Errorf("%s = %v, lacks %s", name, got, w)
					}
				}
				// none is a client authentication method (public clients)
				// only at the token endpoint; never an algorithm, and never
				// for introspection.
				if (slices.Contains(got, "none") && name != "token_endpoint_auth_methods_supported") || slices.Contains(got, "HS256") || slices.Contains(got, "plain") {
					t.Errorf("%s = %v advertises none, HS256 or plain", name, got)
				}
			}
			for _, ep := range []string{"authorization_endpoint", "userinfo_endpoint", "end_session_endpoint", "pushed_authorization_request_endpoint"} {
				if got, _ := m[ep].(string); !strings.HasPrefix(got, n.issuer+"/") {
					t.Errorf("%s = %q", ep, got)
				}
			}
			if m["authorization_response_iss_parameter_supported"] != true {
				t.Errorf("authorization_response_iss_parameter_supported = %v, want true (RFC 9207)", m["authorization_response_iss_parameter_supported"])
			}
		})
	}
}

func strList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestJWKS(t *testing.T) {
	n := startNode(t)
	r := n.get(t, "/.well-known/jwks.json")
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	set := n.jwks(t)

	t.Run("public-only", func(t *testing.T) {
		m := r.json(t)
		for _, k := range m["keys"].([]any) {
			km := k.(map[string]any)
			for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
				if _, ok := km[priv]; ok {
					t.Errorf("key %v publishes private member %q", km["kid"], priv)
				}
			}
			for _, need := range []string{"kid", "kty", "alg", "use"} {
				if km[need] == nil || km[need] == "" {
					t.Errorf("key %v lacks %q", km["kid"], need)
				}
			}
		}
		for i := range set.Len() {
			k, _ := set.Key(i)
			if priv, err := jwk.IsPrivateKey(k); err != nil || priv {
				t.Errorf("jwx sees key %d as private (%v)", i, err)
			}
		}
	})

	t.Run("ES256-and-RS256", func(t *testing.T) {
		var algs []string
		for i := range set.Len() {
			k, _ := set.Key(i)
			alg, _ := k.Algorithm()
			algs = append(algs, alg.String())
		}
		slices.Sort(algs)
		if diff := cmp.Diff([]string{"ES256", "RS256"}, algs); diff != "" {
			t.Errorf("algorithms (-want +got):\n%s", diff)
		}
	})

	t.Run("cache-headers", func(t *testing.T) {
		if r.header.Get("ETag") == "" {
			t.Error("no ETag")
		}
		// KeysPrepublish is 0 here: clients must revalidate every time.
		if cc := r.header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("Cache-Control = %q, want no-cache with prepublish 0", cc)
		}
		req, _ := http.NewRequest(http.MethodGet, n.url("/.well-known/jwks.json"), nil)
		req.Header.Set("If-None-Match", r.header.Get("ETag"))
		if got := n.do(t, req); got.status != http.StatusNotModified {
			t.Errorf("revalidation: status %d, want 304", got.status)
		}
	})

	t.Run("jwx-verifies-access-token", func(t *testing.T) {
		c := n.newClient(t, admin.ClientSpec{Scope: "read"})
		tok := n.token(t, c, nil)
		kid := header(t, tok)["kid"].(string)
		k, ok := set.LookupKeyID(kid)
		if !ok {
			t.Fatalf("kid %s not in JWKS", kid)
		}
		var pub ecdsa.PublicKey
		if err := jwk.Export(k, &pub); err != nil {
			t.Fatalf("access token key is not ECDSA: %v", err)
		}
		n.verifyJWX(t, tok)
	})
}

func TestAccessToken(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.AccessTokenTTL = 2 * time.Minute })
	c := n.newClient(t, admin.ClientSpec{
		Scope: "read write", DefaultScope: "read", Audience: []string{"https://api.example"},
		Claims: map[string]any{"department": "engineering", "level": 3},
	})
	tok := n.token(t, c, url.Values{"scope": {"read write"}})
	h, m := header(t, tok), claims(t, tok)

	t.Run("header", func(t *testing.T) {
		if h["typ"] != "at+jwt" {
			t.Errorf("typ = %v, want at+jwt", h["typ"])
		}
		if h["alg"] != "ES256" {
			t.Errorf("alg = %v", h["alg"])
		}
		if kid, _ := h["kid"].(string); kid == "" {
			t.Error("no kid")
		}
		for _, bad := range []string{"jwk", "jku", "x5u", "x5c", "crit"} {
			if _, ok := h[bad]; ok {
				t.Errorf("header carries %q", bad)
			}
		}
	})

	t.Run("claims", func(t *testing.T) {
		want := map[string]any{
			"iss": n.issuer, "sub": c.ClientID, "aud": "https://api.example",
			"client_id": c.ClientID, "scope": "read write", "department": "engineering",
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}
		if num(t, m, "level") != 3 {
			t.Errorf("level = %v", m["level"])
		}
		iat, nbf, exp := num(t, m, "iat"), num(t, m, "nbf"), num(t, m, "exp")
		if now := time.Now().Unix(); iat < now-5 || iat > now+1 || nbf > iat {
			t.Errorf("iat %d nbf %d, now %d", iat, nbf, now)
		}
		if exp-iat != 120 {
			t.Errorf("exp - iat = %d, want the server default 120", exp-iat)
		}
		parsed := n.verifyJWX(t, tok)
		if sub, _ := parsed.Subject(); sub != c.ClientID {
			t.Errorf("jwx sub = %q", sub)
		}
	})

	t.Run("jti", func(t *testing.T) {
		seen := map[string]bool{}
		for i := range 1000 {
			tok := tok
			if i > 0 {
				tok = n.token(t, c, nil)
			}
			jti, _ := claims(t, tok)["jti"].(string)
			// 48 bits of issuance time, the status list entry, 88 random
			// bits: 40 base32hex characters that sort by issuance.
			if len(jti) != 40 || strings.Trim(jti, "0123456789ABCDEFGHIJKLMNOPQRSTUV") != "" {
				t.Fatalf("jti %q is not 200 bits of base32hex", jti)
			}
			if seen[jti] {
				t.Fatalf("jti %q repeated after %d tokens", jti, i)
			}
			seen[jti] = true
		}
	})

	t.Run("default-scope", func(t *testing.T) {
		if got := claims(t, n.token(t, c, nil))["scope"]; got != "read" {
			t.Errorf("scope = %v, want the default read", got)
		}
	})

	t.Run("extra-claims-never-override", func(t *testing.T) {
		// The admin layer refuses registered claims; write such a client
		// straight to the store to check the issuer holds the line itself.
		evil := &sigil.Client{ID: "evil-client", Name: "evil", Scopes: []string{"read"},
			Claims: map[string]any{"sub": "admin", "iss": "https://evil", "aud": "https://bank", "exp": 9999999999,
				"client_id": "root", "scope": "admin", "jti": "fixed", "cnf": map[string]any{"jkt": "x"}, "team": "red"}}
		n.storeClient(t, evil, "evil-secret")
		tok := n.token(t, &admin.ClientInfo{ClientID: evil.ID, ClientSecret: "evil-secret"}, nil)
		m := claims(t, tok)
		want := map[string]any{"sub": evil.ID, "iss": n.issuer, "aud": n.issuer, "client_id": evil.ID, "team": "red"}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}
		if m["jti"] == "fixed" || m["scope"] == "admin" || m["cnf"] != nil || num(t, m, "exp") == 9999999999 {
			t.Errorf("extra claims overrode registered ones: %v", m)
		}
	})
}

func TestAccessTokenTTL(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.AccessTokenTTL = 3 * time.Minute
		c.AccessTokenMaxTTL = 10 * time.Minute
	})
	over := &sigil.Client{ID: "over-ttl", Name: "over", Scopes: []string{"read"}, AccessTokenTTL: time.Hour}
	n.storeClient(t, over, "over-secret")
	for _, tc := range []struct {
		name string
		c    *admin.ClientInfo
		want int64
	}{
		{"client", n.newClient(t, admin.ClientSpec{AccessTokenTTL: 45}), 45},
		{"server-default", n.newClient(t, admin.ClientSpec{}), 180},
		{"capped-at-max", &admin.ClientInfo{ClientID: over.ID, ClientSecret: "over-secret"}, 600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.postForm(t, "/token", url.Values{"grant_type": {"client_credentials"}}, basic(tc.c))
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			m := claims(t, r.str(t, "access_token"))
			if got := num(t, m, "exp") - num(t, m, "iat"); got != tc.want {
				t.Errorf("exp - iat = %d, want %d", got, tc.want)
			}
			if got := num(t, r.json(t), "expires_in"); got != tc.want {
				t.Errorf("expires_in = %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("admin-refuses-over-max", func(t *testing.T) {
		_, err := n.admin().CreateClient(context.Background(), admin.ClientSpec{Name: "x", AccessTokenTTL: 3600})
		if !admin.IsValidation(err) {
			t.Errorf("TTL over the max: err = %v, want a validation error", err)
		}
	})
}

// TestIssuerWithPath runs a node whose issuer has a path: endpoints live
// under it, RFC 8414 §3.1 metadata is found with the well-known suffix
// inserted before the path, and go-oidc's discovery (suffix appended)
// works too.
func TestIssuerWithPath(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Issuer = "http://" + c.Listen + "/tenant-a" })
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, n.issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	if p.Endpoint().TokenURL != n.issuer+"/token" {
		t.Errorf("TokenURL %q", p.Endpoint().TokenURL)
	}
	root := strings.TrimSuffix(n.issuer, "/tenant-a")
	req, _ := http.NewRequest(http.MethodGet, root+"/.well-known/oauth-authorization-server/tenant-a", nil)
	r := n.do(t, req)
	if r.status != http.StatusOK || r.str(t, "issuer") != n.issuer {
		t.Errorf("RFC 8414 path-inserted metadata: %d %s", r.status, r.body)
	}
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: p.Endpoint().TokenURL}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if iss := claims(t, tok.AccessToken)["iss"]; iss != n.issuer {
		t.Errorf("iss %v", iss)
	}
	n.verifyJWX(t, tok.AccessToken)
	if !n.active(t, basic(c), tok.AccessToken) {
		t.Error("token inactive")
	}
	key := newClientKey(t, "ES256", "k")
	jc := n.jwtClient(t, key)
	for _, aud := range []string{n.issuer, n.issuer + "/token"} {
		a := key.sign(t, assertionClaims(jc.ClientID, aud), nil)
		if r := n.postForm(t, "/token", assertionForm(a, jc.ClientID), auth{}); r.status != http.StatusOK {
			t.Errorf("assertion aud %s: %d %s", aud, r.status, r.body)
		}
	}
}
