package issuer_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
)

// TestTokenEndpointErrors checks the RFC 6749 §5.2 answers of the token
// endpoint, each with its status, error code and Cache-Control: no-store.
func TestTokenEndpointErrors(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{
		Scope: "read write", DefaultScope: "read",
		Audience: []string{"https://api.example", "https://files.example/v1"},
	})
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(kv ...string) url.Values {
		f := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i < len(kv); i += 2 {
			f.Add(kv[i], kv[i+1])
		}
		return f
	}

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"missing-grant_type", url.Values{"scope": {"read"}}, 400, "invalid_request"},
		{"unknown-grant", url.Values{"grant_type": {"urn:example:magic"}}, 400, "unsupported_grant_type"},
		{"authorization_code-not-registered", url.Values{"grant_type": {"authorization_code"}}, 400, "unauthorized_client"},
		{"password-unsupported", url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}}, 400, "unsupported_grant_type"},
		{"scope-not-allowed", with("scope", "read admin"), 400, "invalid_scope"},
		{"scope-malformed-quote", with("scope", `read "x"`), 400, "invalid_scope"},
		{"scope-malformed-backslash", with("scope", `re\ad`), 400, "invalid_scope"},
		{"scope-malformed-non-ascii", with("scope", "réad"), 400, "invalid_scope"},
		{"scope-malformed-control", with("scope", "read\x01"), 400, "invalid_scope"},
		{"resource-not-allowed", with("resource", "https://other.example"), 400, "invalid_target"},
		{"resource-relative", with("resource", "/api"), 400, "invalid_target"},
		{"resource-fragment", with("resource", "https://api.example#frag"), 400, "invalid_target"},
		{"resource-one-of-two-not-allowed", with("resource", "https://api.example", "resource", "https://x.example"), 400, "invalid_target"},
		{"scope-repeated", with("scope", "read", "scope", "write"), 400, "invalid_request"},
		{"grant_type-repeated", with("grant_type", "client_credentials"), 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, n.postForm(t, "/token", tc.form, basic(c)), tc.status, tc.code)
		})
	}

	t.Run("grant-not-allowed-for-client", func(t *testing.T) {
		// The only grant this release knows is client_credentials, which
		// every confidential client may use. A client stored with no grant
		// at all is refused it.
		noGrant := &sigil.Client{ID: "no-grant", Name: "no grant", GrantTypes: []string{"urn:example:other"}}
		n.storeClient(t, noGrant, "no-grant-secret")
		r := n.postForm(t, "/token", cc, auth{id: noGrant.ID, secret: "no-grant-secret"})
		wantError(t, r, 400, "unauthorized_client")
	})

	t.Run("no-scope-gets-default", func(t *testing.T) {
		if got := claims(t, n.token(t, c, nil))["scope"]; got != "read" {
			t.Errorf("scope = %v, want read", got)
		}
	})

	t.Run("scope-deduplicated", func(t *testing.T) {
		if got := claims(t, n.token(t, c, url.Values{"scope": {"read  read write"}}))["scope"]; got != "read write" {
			t.Errorf("scope = %v, want %q", got, "read write")
		}
	})

	t.Run("no-resource-gets-first-audience", func(t *testing.T) {
		if got := claims(t, n.token(t, c, nil))["aud"]; got != "https://api.example" {
			t.Errorf("aud = %v", got)
		}
	})

	t.Run("resource-to-aud", func(t *testing.T) {
		got := claims(t, n.token(t, c, url.Values{"resource": {"https://files.example/v1"}}))["aud"]
		if got != "https://files.example/v1" {
			t.Errorf("aud = %v", got)
		}
	})

	t.Run("two-resources-aud-array", func(t *testing.T) {
		got := strList(claims(t, n.token(t, c, url.Values{"resource": {"https://api.example", "https://files.example/v1"}}))["aud"])
		if strings.Join(got, " ") != "https://api.example https://files.example/v1" {
			t.Errorf("aud = %v, want both resources", got)
		}
	})

	t.Run("wrong-secret-basic", func(t *testing.T) {
		r := n.postForm(t, "/token", cc, auth{id: c.ClientID, secret: c.ClientSecret + "x"})
		wantError(t, r, 401, "invalid_client")
		if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Basic ") {
			t.Errorf("WWW-Authenticate = %q, want a Basic challenge", h)
		}
	})

	t.Run("unknown-client-same-as-wrong-secret", func(t *testing.T) {
		wrong := n.postForm(t, "/token", cc, auth{id: c.ClientID, secret: "not-the-secret"})
		unknown := n.postForm(t, "/token", cc, auth{id: "no-such-client", secret: "not-the-secret"})
		wantError(t, unknown, 401, "invalid_client")
		if !bytes.Equal(wrong.body, unknown.body) || wrong.status != unknown.status {
			t.Errorf("unknown client answers %d %s, wrong secret %d %s", unknown.status, unknown.body, wrong.status, wrong.body)
		}
		if wrong.header.Get("WWW-Authenticate") != unknown.header.Get("WWW-Authenticate") {
			t.Error("WWW-Authenticate differs between unknown client and wrong secret")
		}
	})

	t.Run("no-authentication", func(t *testing.T) {
		r := n.postForm(t, "/token", cc, auth{})
		wantError(t, r, 401, "invalid_client")
	})

	t.Run("non-basic-authorization", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, n.url("/token"), strings.NewReader(cc.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer abc")
		wantError(t, n.do(t, req), 401, "invalid_client")
	})

	post := n.newClient(t, admin.ClientSpec{Scope: "read", AuthMethod: sigil.AuthSecretPost})
	t.Run("client_secret_post", func(t *testing.T) {
		r := n.postForm(t, "/token", with("client_id", post.ClientID, "client_secret", post.ClientSecret), auth{})
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})

	t.Run("post-client-using-basic-refused", func(t *testing.T) {
		wantError(t, n.postForm(t, "/token", cc, basic(post)), 401, "invalid_client")
	})

	t.Run("basic-client-using-post-refused", func(t *testing.T) {
		r := n.postForm(t, "/token", with("client_id", c.ClientID, "client_secret", c.ClientSecret), auth{})
		wantError(t, r, 401, "invalid_client")
	})

	t.Run("two-auth-methods", func(t *testing.T) {
		r := n.postForm(t, "/token", with("client_id", c.ClientID, "client_secret", c.ClientSecret), basic(c))
		wantError(t, r, 400, "invalid_request")
		r = n.postForm(t, "/token", with("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", "a.b.c"), basic(c))
		wantError(t, r, 400, "invalid_request")
	})

	t.Run("client_id-mismatch-with-basic", func(t *testing.T) {
		wantError(t, n.postForm(t, "/token", with("client_id", post.ClientID), basic(c)), 400, "invalid_request")
	})

	t.Run("json-body", func(t *testing.T) {
		r := n.postRaw(t, "/token", "application/json", `{"grant_type":"client_credentials"}`, basic(c))
		wantError(t, r, 400, "invalid_request")
	})

	t.Run("missing-content-type", func(t *testing.T) {
		wantError(t, n.postRaw(t, "/token", "", cc.Encode(), basic(c)), 400, "invalid_request")
	})

	t.Run("content-type-with-charset", func(t *testing.T) {
		r := n.postRaw(t, "/token", "application/x-www-form-urlencoded; charset=UTF-8", cc.Encode(), basic(c))
		if r.status != http.StatusOK {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})

	t.Run("malformed-form", func(t *testing.T) {
		wantError(t, n.postRaw(t, "/token", "application/x-www-form-urlencoded", "grant_type=%zz", basic(c)), 400, "invalid_request")
	})

	t.Run("body-over-64KiB", func(t *testing.T) {
		body := cc.Encode() + "&pad=" + strings.Repeat("a", 64<<10)
		wantError(t, n.postRaw(t, "/token", "application/x-www-form-urlencoded", body, basic(c)), 400, "invalid_request")
	})

	t.Run("secret-in-query", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, n.url("/token")+"?client_secret="+url.QueryEscape(c.ClientSecret), strings.NewReader(cc.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ClientID, c.ClientSecret)
		wantError(t, n.do(t, req), 400, "invalid_request")
	})

	t.Run("query-parameters-ignored", func(t *testing.T) {
		// Only the body carries parameters: a scope in the URL is not read.
		req, _ := http.NewRequest(http.MethodPost, n.url("/token")+"?scope=write", strings.NewReader(cc.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ClientID, c.ClientSecret)
		r := n.do(t, req)
		if r.status != http.StatusOK || r.str(t, "scope") != "read" {
			t.Errorf("status %d, body %s; want the default scope read", r.status, r.body)
		}
	})

	for _, path := range []string{"/token", "/introspect", "/revoke"} {
		t.Run("GET-"+path[1:], func(t *testing.T) {
			r := n.get(t, path)
			if r.status != http.StatusMethodNotAllowed {
				t.Errorf("status %d, want 405", r.status)
			}
			if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") {
				t.Errorf("Allow = %q", allow)
			}
			if m := r.json(t); m["error"] != "invalid_request" {
				t.Errorf("body %s, want an RFC 6749 error object", r.body)
			}
		})
	}

	t.Run("success-no-store", func(t *testing.T) {
		r := n.postForm(t, "/token", cc, basic(c))
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q", cc)
		}
		if p := r.header.Get("Pragma"); p != "no-cache" {
			t.Errorf("Pragma = %q", p)
		}
		m := r.json(t)
		if m["token_type"] != "Bearer" || num(t, m, "expires_in") != 300 || m["scope"] != "read" {
			t.Errorf("response %s", r.body)
		}
	})
}

// TestBasicCredentialsEncoding checks RFC 6749 §2.3.1: client_id and
// secret are form-urlencoded before they go into the Basic header.
func TestBasicCredentialsEncoding(t *testing.T) {
	n := startNode(t)
	odd := &sigil.Client{ID: "svc:a b/é+%", Name: "odd", Scopes: []string{"read"}}
	const sec = "p@ss:w%rd +/=&é"
	n.storeClient(t, odd, sec)
	cc := url.Values{"grant_type": {"client_credentials"}}

	t.Run("encoded", func(t *testing.T) {
		r := n.postForm(t, "/token", cc, auth{id: odd.ID, secret: sec})
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if got := claims(t, r.str(t, "access_token"))["client_id"]; got != odd.ID {
			t.Errorf("client_id = %v", got)
		}
	})

	t.Run("raw-refused", func(t *testing.T) {
		// Unencoded, "+" decodes to a space and "%rd" is no escape: the
		// credentials cannot match.
		wantError(t, n.postForm(t, "/token", cc, auth{id: odd.ID, secret: sec, raw: true}), 401, "invalid_client")
	})

	t.Run("plain-generated-credentials", func(t *testing.T) {
		// Generated ids and secrets need no escaping: raw and encoded are
		// the same.
		c := n.newClient(t, admin.ClientSpec{})
		if url.QueryEscape(c.ClientSecret) != c.ClientSecret || url.QueryEscape(c.ClientID) != c.ClientID {
			t.Fatalf("generated credentials need escaping (id %q): they should be base64url or hex", c.ClientID)
		}
		r := n.postForm(t, "/token", cc, auth{id: c.ClientID, secret: c.ClientSecret, raw: true})
		if r.status != http.StatusOK {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})
}
