package issuer_test

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
)

func TestIntrospection(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{Scope: "read write", Audience: []string{"https://api.example"}})
	tok := n.token(t, c, url.Values{"scope": {"read write"}})

	t.Run("active-all-fields", func(t *testing.T) {
		r := n.introspect(t, basic(c), tok)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q", cc)
		}
		got := r.json(t)
		tc := claims(t, tok)
		want := map[string]any{
			"active": true, "token_type": "Bearer", "scope": "read write", "client_id": c.ClientID,
			"sub": c.ClientID, "aud": "https://api.example", "iss": n.issuer,
			"exp": tc["exp"], "iat": tc["iat"], "nbf": tc["nbf"], "jti": tc["jti"],
			"status": tc["status"],
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("introspection (-want +got):\n%s", diff)
		}
	})

	inactive := func(t *testing.T, caller auth, tok string) {
		t.Helper()
		if n.active(t, caller, tok) {
			t.Error("token introspects as active")
		}
	}

	t.Run("garbage", func(t *testing.T) { inactive(t, basic(c), "garbage") })
	t.Run("three-dots", func(t *testing.T) { inactive(t, basic(c), "a.b.c") })
	t.Run("payload-altered", func(t *testing.T) {
		parts := strings.Split(tok, ".")
		m := claims(t, tok)
		m["scope"] = "admin"
		b, _ := json.Marshal(m)
		parts[1] = base64.RawURLEncoding.EncodeToString(b)
		inactive(t, basic(c), strings.Join(parts, "."))
	})
	t.Run("forged-by-other-key-same-kid", func(t *testing.T) {
		k := newClientKey(t, "ES256", header(t, tok)["kid"].(string))
		inactive(t, basic(c), k.sign(t, claims(t, tok), map[string]any{"typ": "at+jwt"}))
	})
	t.Run("forged-by-other-node", func(t *testing.T) {
		// A token from another Sigil node (other keys) with our issuer.
		m := startNode(t, func(cfg *config.Config) { cfg.Issuer = n.issuer })
		oc := m.newClient(t, admin.ClientSpec{})
		foreign := m.token(t, oc, nil)
		inactive(t, basic(c), foreign)
	})
	t.Run("attacks", func(t *testing.T) {
		parts := strings.Split(tok, ".")
		kid := header(t, tok)["kid"].(string)
		withHeader := func(h map[string]any, sig []byte) string {
			b, _ := json.Marshal(h)
			return base64.RawURLEncoding.EncodeToString(b) + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
		}
		attacker := newClientKey(t, "ES256", kid)
		var esPub []byte
		set := n.jwks(t)
		if k, ok := set.LookupKeyID(kid); ok {
			esPub, _ = json.Marshal(k)
		}
		if len(esPub) == 0 {
			t.Fatalf("kid %s not in JWKS", kid)
		}
		for _, tc := range []struct{ name, tok string }{
			{"alg-none", withHeader(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, nil)},
			{"alg-none-no-kid", withHeader(map[string]any{"alg": "none", "typ": "at+jwt"}, nil)},
			{"HS256-with-public-JWK", hmacToken(t, esPub, kid, claims(t, tok))},
			{"ES256-r-s-zero", withHeader(header(t, tok), make([]byte, 64))},
			{"truncated-signature", tok[:len(tok)-4]},
			{"no-signature", parts[0] + "." + parts[1] + "."},
			{"kid-path-traversal", newClientKey(t, "ES256", "../../../../../dev/null").sign(t, claims(t, tok), map[string]any{"typ": "at+jwt"})},
			{"embedded-jwk", attacker.sign(t, claims(t, tok), map[string]any{"typ": "at+jwt", "jwk": attacker.pub})},
			{"jku", attacker.sign(t, claims(t, tok), map[string]any{"typ": "at+jwt", "jku": "https://evil.example/jwks"})},
			{"five-segments", tok + ".x.y"},
			{"JSON-serialization", `{"payload":"` + parts[1] + `","signatures":[]}`},
		} {
			t.Run(tc.name, func(t *testing.T) { inactive(t, basic(c), tc.tok) })
		}
	})
	t.Run("other-clients-token", func(t *testing.T) {
		other := n.newClient(t, admin.ClientSpec{Audience: []string{"https://api.example"}})
		inactive(t, basic(other), tok)
	})
	t.Run("resource-server-matching-audience", func(t *testing.T) {
		rs := n.newClient(t, admin.ClientSpec{Audience: []string{"https://api.example"}, Introspect: true})
		if !n.active(t, basic(rs), tok) {
			t.Error("a resource server of the token's audience cannot introspect it")
		}
	})
	t.Run("resource-server-other-audience", func(t *testing.T) {
		rs := n.newClient(t, admin.ClientSpec{Audience: []string{"https://other.example"}, Introspect: true})
		inactive(t, basic(rs), tok)
	})
	t.Run("revoked", func(t *testing.T) {
		tok := n.token(t, c, nil)
		if !n.active(t, basic(c), tok) {
			t.Fatal("fresh token inactive")
		}
		if r := n.postForm(t, "/revoke", url.Values{"token": {tok}}, basic(c)); r.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		inactive(t, basic(c), tok)
	})
	t.Run("deleted-client", func(t *testing.T) {
		d := n.newClient(t, admin.ClientSpec{Audience: []string{"https://api.example"}})
		dt := n.token(t, d, nil)
		rs := n.newClient(t, admin.ClientSpec{Audience: []string{"https://api.example"}, Introspect: true})
		if !n.active(t, basic(rs), dt) {
			t.Fatal("token of the client-to-delete is not active")
		}
		if err := n.admin().DeleteClient(context.Background(), d.ClientID); err != nil {
			t.Fatal(err)
		}
		inactive(t, basic(rs), dt)
	})
	t.Run("missing-token", func(t *testing.T) {
		wantError(t, n.postForm(t, "/introspect", url.Values{}, basic(c)), 400, "invalid_request")
	})
	t.Run("unauthenticated", func(t *testing.T) {
		wantError(t, n.postForm(t, "/introspect", url.Values{"token": {tok}}, auth{}), 401, "invalid_client")
	})
	t.Run("wrong-secret", func(t *testing.T) {
		r := n.postForm(t, "/introspect", url.Values{"token": {tok}}, auth{id: c.ClientID, secret: "x"})
		wantError(t, r, 401, "invalid_client")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("token-in-query", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, n.url("/introspect")+"?token="+url.QueryEscape(tok), strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ClientID, c.ClientSecret)
		wantError(t, n.do(t, req), 400, "invalid_request")
	})
}

// TestIntrospectExpired uses a node with 1s leeway and a client with a 1s
// TTL, and waits once until the token is past exp + leeway.
func TestIntrospectExpired(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Leeway = time.Second })
	c := n.newClient(t, admin.ClientSpec{AccessTokenTTL: 1})
	tok := n.token(t, c, nil)
	if !n.active(t, basic(c), tok) {
		t.Fatal("fresh token inactive")
	}
	exp := time.Unix(num(t, claims(t, tok), "exp"), 0)
	eventually(t, 5*time.Second, "exp + leeway", func() bool { return time.Now().After(exp.Add(time.Second + 100*time.Millisecond)) })
	if n.active(t, basic(c), tok) {
		t.Error("expired token introspects as active")
	}
	// Revoking an expired token is a no-op that answers 200 (RFC 7009 §2.2).
	if r := n.postForm(t, "/revoke", url.Values{"token": {tok}}, basic(c)); r.status != http.StatusOK {
		t.Errorf("revoke expired: %d %s", r.status, r.body)
	}
}

func TestRevocation(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	revoke := func(t *testing.T, caller auth, tok string) reply {
		t.Helper()
		return n.postForm(t, "/revoke", url.Values{"token": {tok}}, caller)
	}

	t.Run("own-token", func(t *testing.T) {
		tok := n.token(t, c, nil)
		r := revoke(t, basic(c), tok)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if n.active(t, basic(c), tok) {
			t.Error("revoked token still active")
		}
		// Revoking twice is fine.
		if r := revoke(t, basic(c), tok); r.status != http.StatusOK {
			t.Errorf("second revoke: %d", r.status)
		}
	})
	t.Run("token_type_hint", func(t *testing.T) {
		tok := n.token(t, c, nil)
		r := n.postForm(t, "/revoke", url.Values{"token": {tok}, "token_type_hint": {"refresh_token"}}, basic(c))
		if r.status != http.StatusOK || n.active(t, basic(c), tok) {
			t.Errorf("status %d, or still active despite a wrong hint (RFC 7009 §2.1: extend the search)", r.status)
		}
	})
	t.Run("unknown-token", func(t *testing.T) {
		for _, tok := range []string{"garbage", "a.b.c", strings.Repeat("x", 100)} {
			if r := revoke(t, basic(c), tok); r.status != http.StatusOK {
				t.Errorf("revoke %q: status %d: %s", tok, r.status, r.body)
			}
		}
	})
	t.Run("other-clients-token", func(t *testing.T) {
		other := n.newClient(t, admin.ClientSpec{})
		tok := n.token(t, c, nil)
		wantError(t, revoke(t, basic(other), tok), 400, "unauthorized_client")
		if !n.active(t, basic(c), tok) {
			t.Error("another client revoked the token")
		}
	})
	t.Run("missing-token", func(t *testing.T) {
		wantError(t, n.postForm(t, "/revoke", url.Values{}, basic(c)), 400, "invalid_request")
	})
	t.Run("unauthenticated", func(t *testing.T) {
		wantError(t, revoke(t, auth{}, n.token(t, c, nil)), 401, "invalid_client")
	})

	t.Run("admin-by-client", func(t *testing.T) {
		victim := n.newClient(t, admin.ClientSpec{})
		bystander := n.newClient(t, admin.ClientSpec{})
		before := []string{n.token(t, victim, nil), n.token(t, victim, nil)}
		bt := n.token(t, bystander, nil)
		at := time.Now()
		if _, err := n.admin().Revoke(context.Background(), "", victim.ClientID, ""); err != nil {
			t.Fatal(err)
		}
		for i, tok := range before {
			if n.active(t, basic(victim), tok) {
				t.Errorf("token %d issued before the revocation is active", i)
			}
		}
		if !n.active(t, basic(bystander), bt) {
			t.Error("another client's token was revoked")
		}
		// The client stays usable: tokens issued after the cutoff second
		// are active.
		nextSecond(t, at)
		if after := n.token(t, victim, nil); !n.active(t, basic(victim), after) {
			t.Error("token issued after the revocation is inactive")
		}
	})

	t.Run("admin-by-subject", func(t *testing.T) {
		victim := n.newClient(t, admin.ClientSpec{})
		bystander := n.newClient(t, admin.ClientSpec{})
		vt, bt := n.token(t, victim, nil), n.token(t, bystander, nil)
		if _, err := n.admin().Revoke(context.Background(), "", "", victim.ClientID); err != nil {
			t.Fatal(err)
		}
		if n.active(t, basic(victim), vt) {
			t.Error("token of the revoked subject is active")
		}
		if !n.active(t, basic(bystander), bt) {
			t.Error("token of another subject was revoked")
		}
	})

	t.Run("admin-by-jti", func(t *testing.T) {
		a, b := n.token(t, c, nil), n.token(t, c, nil)
		if _, err := n.admin().Revoke(context.Background(), claims(t, a)["jti"].(string), "", ""); err != nil {
			t.Fatal(err)
		}
		if n.active(t, basic(c), a) || !n.active(t, basic(c), b) {
			t.Error("jti revocation hit the wrong token")
		}
	})

	t.Run("high-S-variant", func(t *testing.T) {
		tok := n.token(t, c, nil)
		if header(t, tok)["alg"] != "ES256" {
			t.Fatalf("alg %v", header(t, tok)["alg"])
		}
		variant := highS(t, tok)
		if variant == tok {
			t.Fatal("variant equals the original")
		}
		if !n.active(t, basic(c), variant) {
			// A verifier that enforces low-S refuses the variant outright,
			// which is as safe; nothing more to check then.
			t.Log("the verifier refuses high-S signatures")
			return
		}
		if r := revoke(t, basic(c), tok); r.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if n.active(t, basic(c), variant) {
			t.Error("high-S variant still active after the original was revoked: revocation must key on jti, not on the token bytes")
		}
		if n.active(t, basic(c), tok) {
			t.Error("original still active")
		}
	})

	t.Run("high-S-variant-revoked-first", func(t *testing.T) {
		tok := n.token(t, c, nil)
		variant := highS(t, tok)
		if !n.active(t, basic(c), variant) {
			t.Fatal("the high-S variant does not verify; token/parse_test.go pins that it does (ECDSA is malleable; revocation keys on jti)")
		}
		if r := revoke(t, basic(c), variant); r.status != http.StatusOK {
			t.Fatalf("revoke variant: %d %s", r.status, r.body)
		}
		if n.active(t, basic(c), tok) {
			t.Error("original still active after its high-S variant was revoked")
		}
	})
}

// highS returns tok with its ES256 signature (r, s) replaced by the
// equally valid (r, n - s).
func highS(t testing.TB, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature: %v, %d bytes", err, len(sig))
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	out := make([]byte, 64)
	copy(out, sig[:32])
	s.FillBytes(out[32:])
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(out)
}

// TestRevocationOutlivesLeeway: a revocation record must not be purged
// while the token it matches still verifies, which is until exp plus the
// leeway (here the largest allowed, 5m). The purge runs as the server's
// loop runs it, with the clock at the last second the token is accepted.
func TestRevocationOutlivesLeeway(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Leeway = 5 * time.Minute })
	c := n.newClient(t, admin.ClientSpec{AccessTokenTTL: 900}) // the max TTL
	byRFC7009, byClient := n.token(t, c, nil), n.token(t, c, nil)
	exp := time.Unix(num(t, claims(t, byRFC7009), "exp"), 0)
	if r := n.postForm(t, "/revoke", url.Values{"token": {byRFC7009}}, basic(c)); r.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if _, err := n.admin().Revoke(context.Background(), "", c.ClientID, ""); err != nil {
		t.Fatal(err)
	}
	lastAccepted := exp.Add(5*time.Minute - time.Second)
	if _, err := n.srv.Core.Store.PurgeRevocations(context.Background(), lastAccepted); err != nil {
		t.Fatal(err)
	}
	if n.active(t, basic(c), byRFC7009) {
		t.Error("RFC 7009 revocation purged before exp + leeway: the token is active again")
	}
	if n.active(t, basic(c), byClient) {
		t.Error("client revocation purged before exp + leeway: the token is active again")
	}
}

// TestIntrospectionMembersUnique: a client's extra claims named like
// introspection response members (active, token_type), in any case, must
// not produce a response with a member twice, which JSON parsers read
// differently (encoding/json matches names case-insensitively). The admin
// layer refuses such claims; the client is written straight to the store to
// check the issuer's own defence for clients that got there another way.
func TestIntrospectionMembersUnique(t *testing.T) {
	n := startNode(t)
	c := &sigil.Client{ID: "dup-members", Name: "dup", AuthMethod: sigil.AuthSecretBasic,
		GrantTypes: []string{sigil.GrantClientCredentials},
		Claims:     map[string]any{"active": false, "Token_Type": "N_A", "ACTIVE": false, "team": "red"}}
	n.storeClient(t, c, "dup-secret")
	ci := &admin.ClientInfo{ClientID: c.ID, ClientSecret: "dup-secret"}
	r := n.introspect(t, basic(ci), n.token(t, ci, nil))
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	if dups := duplicateMembers(t, bytes.ToLower(r.body)); len(dups) > 0 {
		t.Errorf("members %v appear twice: %s", dups, r.body)
	}
	m := r.json(t)
	if m["active"] != true || m["token_type"] != "Bearer" || m["team"] != "red" {
		t.Errorf("introspection %s", r.body)
	}
	var typed struct {
		Active    bool   `json:"active"`
		TokenType string `json:"token_type"`
	}
	if err := json.Unmarshal(r.body, &typed); err != nil || !typed.Active || typed.TokenType != "Bearer" {
		t.Errorf("a struct decoder reads active=%v token_type=%q (%v)", typed.Active, typed.TokenType, err)
	}
}

// duplicateMembers lists the top-level member names that occur more than
// once in the JSON object b.
func duplicateMembers(t testing.TB, b []byte) []string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(string(b)))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	seen := map[string]bool{}
	var dups []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		name := k.(string)
		if seen[name] {
			dups = append(dups, name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return dups
}

// hmacToken signs claims with HS256 keyed by key (the classic confusion:
// the issuer's public key used as an HMAC secret).
func hmacToken(t testing.TB, key []byte, kid string, claims map[string]any) string {
	t.Helper()
	h := jws.NewHeaders()
	h.Set(jws.KeyIDKey, kid)
	h.Set(jws.TypeKey, "at+jwt")
	payload, _ := json.Marshal(claims)
	out, err := jws.Sign(payload, jws.WithKey(jwa.HS256(), key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
