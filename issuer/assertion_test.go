package issuer_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientKey is a private_key_jwt client's key pair, made and used with jwx
// so the issuer is tested against a JOSE implementation other than its own.
type clientKey struct {
	alg  jwa.SignatureAlgorithm
	priv jwk.Key
	pub  jwk.Key
}

func newClientKey(t testing.TB, alg, kid string) *clientKey {
	t.Helper()
	var raw any
	var err error
	var a jwa.SignatureAlgorithm
	switch alg {
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		a = jwa.ES256()
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
		a = jwa.EdDSA()
	case "RS256", "PS256":
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
		a = jwa.RS256()
		if alg == "PS256" {
			a = jwa.PS256()
		}
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]any{{jwk.KeyIDKey, kid}, {jwk.AlgorithmKey, a}} {
		if err := priv.Set(kv[0].(string), kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Set(jwk.KeyUsageKey, "sig"); err != nil {
		t.Fatal(err)
	}
	return &clientKey{alg: a, priv: priv, pub: pub}
}

// jwks is the public JWK Set that registers the key.
func (k *clientKey) jwks(t testing.TB) json.RawMessage {
	t.Helper()
	set := jwk.NewSet()
	if err := set.AddKey(k.pub); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign signs claims with the key, adding the protected headers hdr.
func (k *clientKey) sign(t testing.TB, claims map[string]any, hdr map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	for name, v := range hdr {
		if err := h.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(k.alg, k.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// assertionClaims are valid claims for client id and audience aud.
func assertionClaims(id, aud string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{"iss": id, "sub": id, "aud": aud, "iat": now, "exp": now + 60, "jti": randomJTI()}
}

func randomJTI() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// assertionForm is a client_credentials request authenticated by a.
func assertionForm(a, clientID string) url.Values {
	f := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {assertionType}, "client_assertion": {a}}
	if clientID != "" {
		f.Set("client_id", clientID)
	}
	return f
}

func (n *testNode) jwtClient(t testing.TB, k *clientKey) *admin.ClientInfo {
	t.Helper()
	return n.newClient(t, admin.ClientSpec{Scope: "read", AuthMethod: sigil.AuthPrivateKeyJWT, JWKS: k.jwks(t)})
}

func TestPrivateKeyJWT(t *testing.T) {
	n := startNode(t)
	key := newClientKey(t, "ES256", "client-key-1")
	c := n.jwtClient(t, key)
	tokenURL := n.url("/token")
	ok := func(t *testing.T, a, id string) reply {
		t.Helper()
		r := n.postForm(t, "/token", assertionForm(a, id), auth{})
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		return r
	}
	refused := func(t *testing.T, a, id string) {
		t.Helper()
		r := n.postForm(t, "/token", assertionForm(a, id), auth{})
		wantError(t, r, 401, "invalid_client")
	}

	t.Run("aud-token-endpoint", func(t *testing.T) {
		r := ok(t, key.sign(t, assertionClaims(c.ClientID, tokenURL), nil), c.ClientID)
		tok := r.str(t, "access_token")
		if m := claims(t, tok); m["sub"] != c.ClientID || m["client_id"] != c.ClientID {
			t.Errorf("claims %v", m)
		}
		n.verifyJWX(t, tok)
	})
	t.Run("aud-issuer", func(t *testing.T) {
		ok(t, key.sign(t, assertionClaims(c.ClientID, n.issuer), nil), c.ClientID)
	})
	t.Run("aud-array", func(t *testing.T) {
		m := assertionClaims(c.ClientID, "")
		m["aud"] = []string{"https://elsewhere.example", tokenURL}
		ok(t, key.sign(t, m, nil), c.ClientID)
	})
	t.Run("no-client_id-param", func(t *testing.T) {
		ok(t, key.sign(t, assertionClaims(c.ClientID, tokenURL), nil), "")
	})
	t.Run("typ-JWT", func(t *testing.T) {
		ok(t, key.sign(t, assertionClaims(c.ClientID, tokenURL), map[string]any{"typ": "JWT"}), c.ClientID)
	})

	edit := func(f func(m map[string]any)) string {
		m := assertionClaims(c.ClientID, tokenURL)
		f(m)
		return key.sign(t, m, nil)
	}
	other := n.jwtClient(t, newClientKey(t, "ES256", "other-key"))
	attacker := newClientKey(t, "ES256", "client-key-1") // same kid, other key
	unregistered := newClientKey(t, "ES256", "unregistered-kid")
	now := time.Now().Unix()
	for _, tc := range []struct {
		name string
		a    string
		id   string
	}{
		{"wrong-aud", edit(func(m map[string]any) { m["aud"] = "https://other.example/token" }), c.ClientID},
		{"aud-introspection-endpoint-at-token", edit(func(m map[string]any) { m["aud"] = n.url("/introspect") }), c.ClientID},
		{"no-aud", edit(func(m map[string]any) { delete(m, "aud") }), c.ClientID},
		{"missing-jti", edit(func(m map[string]any) { delete(m, "jti") }), c.ClientID},
		{"missing-exp", edit(func(m map[string]any) { delete(m, "exp") }), c.ClientID},
		{"exp-1h-ahead", edit(func(m map[string]any) { m["exp"] = now + 3600 }), c.ClientID},
		{"expired", edit(func(m map[string]any) { m["exp"] = now - 120 }), c.ClientID},
		{"not-yet-valid", edit(func(m map[string]any) { m["nbf"] = now + 120 }), c.ClientID},
		{"sub-not-client_id", edit(func(m map[string]any) { m["sub"] = other.ClientID }), c.ClientID},
		{"iss-not-client_id", edit(func(m map[string]any) { m["iss"] = other.ClientID }), c.ClientID},
		{"client_id-param-other-client", edit(func(map[string]any) {}), other.ClientID},
		{"signed-by-other-key-same-kid", attacker.sign(t, assertionClaims(c.ClientID, tokenURL), nil), c.ClientID},
		{"signed-by-unregistered-kid", unregistered.sign(t, assertionClaims(c.ClientID, tokenURL), nil), c.ClientID},
		{"alg-none", noneAssertion(t, assertionClaims(c.ClientID, tokenURL)), c.ClientID},
		{"alg-HS256-public-key-as-secret", hmacAssertion(t, key, assertionClaims(c.ClientID, tokenURL)), c.ClientID},
		{"embedded-jwk-own-key", key.sign(t, assertionClaims(c.ClientID, tokenURL), map[string]any{"jwk": key.pub}), c.ClientID},
		{"embedded-jwk-attacker-key", attacker.sign(t, assertionClaims(c.ClientID, tokenURL), map[string]any{"jwk": attacker.pub}), c.ClientID},
		{"jku-header", key.sign(t, assertionClaims(c.ClientID, tokenURL), map[string]any{"jku": "https://evil.example/jwks"}), c.ClientID},
		{"typ-at+jwt", key.sign(t, assertionClaims(c.ClientID, tokenURL), map[string]any{"typ": "at+jwt"}), c.ClientID},
		{"garbage", "not.a.jwt", c.ClientID},
		{"unknown-client", edit(func(m map[string]any) { m["iss"], m["sub"] = "nobody", "nobody" }), ""},
	} {
		t.Run(tc.name, func(t *testing.T) { refused(t, tc.a, tc.id) })
	}

	t.Run("wrong-assertion-type", func(t *testing.T) {
		f := assertionForm(key.sign(t, assertionClaims(c.ClientID, tokenURL), nil), c.ClientID)
		f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		wantError(t, n.postForm(t, "/token", f, auth{}), 401, "invalid_client")
	})

	t.Run("replayed-jti", func(t *testing.T) {
		a := key.sign(t, assertionClaims(c.ClientID, tokenURL), nil)
		ok(t, a, c.ClientID)
		refused(t, a, c.ClientID)
		// The same jti in a freshly signed assertion is a replay too.
		m := claims(t, a)
		m["exp"] = time.Now().Unix() + 90
		refused(t, key.sign(t, m, nil), c.ClientID)
	})

	t.Run("secret-client-cannot-use-assertion", func(t *testing.T) {
		s := n.newClient(t, admin.ClientSpec{})
		refused(t, key.sign(t, assertionClaims(s.ClientID, tokenURL), nil), s.ClientID)
	})

	t.Run("assertion-at-introspection", func(t *testing.T) {
		tok := ok(t, key.sign(t, assertionClaims(c.ClientID, tokenURL), nil), c.ClientID).str(t, "access_token")
		f := url.Values{"token": {tok}, "client_assertion_type": {assertionType},
			"client_assertion": {key.sign(t, assertionClaims(c.ClientID, n.url("/introspect")), nil)}}
		r := n.postForm(t, "/introspect", f, auth{})
		if r.status != http.StatusOK || r.json(t)["active"] != true {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})

	for _, alg := range []string{"RS256", "PS256", "EdDSA"} {
		t.Run("client-key-"+alg, func(t *testing.T) {
			k := newClientKey(t, alg, "k-"+alg)
			kc := n.jwtClient(t, k)
			ok(t, k.sign(t, assertionClaims(kc.ClientID, tokenURL), nil), kc.ClientID)
		})
	}
}

// noneAssertion is an unsecured JWS (alg none, RFC 7515 Appendix A.5).
func noneAssertion(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	out, err := jws.Sign(payload, jws.WithInsecureNoSignature())
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// hmacAssertion is the classic key-confusion forgery: HS256 keyed with the
// client's public key as registered (its JWK JSON).
func hmacAssertion(t testing.TB, k *clientKey, claims map[string]any) string {
	t.Helper()
	secret, err := json.Marshal(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	kid, _ := k.pub.KeyID()
	h := jws.NewHeaders()
	h.Set(jws.KeyIDKey, kid)
	out, err := jws.Sign(payload, jws.WithKey(jwa.HS256(), secret, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestAssertionReplayAcrossRestart checks the replay cache is durable: a
// jti used before a restart is refused after it.
func TestAssertionReplayAcrossRestart(t *testing.T) {
	n := startNode(t)
	key := newClientKey(t, "ES256", "k1")
	c := n.jwtClient(t, key)
	a := key.sign(t, assertionClaims(c.ClientID, n.url("/token")), nil)
	if r := n.postForm(t, "/token", assertionForm(a, c.ClientID), auth{}); r.status != http.StatusOK {
		t.Fatalf("first use: status %d: %s", r.status, r.body)
	}
	n.restart()
	wantError(t, n.postForm(t, "/token", assertionForm(a, c.ClientID), auth{}), 401, "invalid_client")
	// The client and its keys survived: a fresh assertion works.
	fresh := key.sign(t, assertionClaims(c.ClientID, n.url("/token")), nil)
	if r := n.postForm(t, "/token", assertionForm(fresh, c.ClientID), auth{}); r.status != http.StatusOK {
		t.Fatalf("fresh assertion after restart: status %d: %s", r.status, r.body)
	}
}

// TestAdminRefusesBadJWKS checks registration refuses JWK Sets the issuer
// could not use safely.
func TestAdminRefusesBadJWKS(t *testing.T) {
	n := startNode(t)
	k := newClientKey(t, "ES256", "k")
	privJSON, _ := json.Marshal(map[string]any{"keys": []any{k.priv}})
	for _, tc := range []struct {
		name string
		jwks string
	}{
		{"private-key", string(privJSON)},
		{"no-keys", `{"keys":[]}`},
		{"not-json", `{"keys":`},
		{"symmetric", `{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256","kid":"h"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.admin().CreateClient(t.Context(), admin.ClientSpec{Name: "x", AuthMethod: sigil.AuthPrivateKeyJWT, JWKS: json.RawMessage(tc.jwks)})
			if !admin.IsValidation(err) {
				t.Errorf("err = %v, want a validation error", err)
			}
		})
	}
}

// TestAssertionReplayConcurrent sends one assertion many times at once:
// the replay check and the write are one step, so exactly one succeeds.
func TestAssertionReplayConcurrent(t *testing.T) {
	n := startNode(t)
	key := newClientKey(t, "ES256", "k1")
	c := n.jwtClient(t, key)
	a := key.sign(t, assertionClaims(c.ClientID, n.url("/token")), nil)
	const parallel = 16
	statuses := make(chan int, parallel)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodPost, n.url("/token"), strings.NewReader(assertionForm(a, c.ClientID).Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := n.hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusOK] != 1 || count[http.StatusUnauthorized] != parallel-1 {
		t.Errorf("statuses %v, want one 200 and %d 401", count, parallel-1)
	}
}
