package verify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// proofKey is a client's DPoP key, used through lestrrat-go/jwx: a JOSE
// implementation independent of the go-jose code under test.
type proofKey struct {
	priv, pub jwk.Key
	jkt       string
}

func newProofKey(t testing.TB) *proofKey {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &proofKey{priv: priv, pub: pub, jkt: b64.EncodeToString(sum)}
}

// proof makes a DPoP proof for method and uri at iat, with ath for tok
// when tok is not empty.
func (k *proofKey) proof(t testing.TB, method, uri, tok string, iat time.Time) string {
	t.Helper()
	claims := map[string]any{"jti": b64.EncodeToString(randomBytes(t, 16)), "htm": method, "htu": uri, "iat": iat.Unix()}
	if tok != "" {
		sum := sha256.Sum256([]byte(tok))
		claims["ath"] = b64.EncodeToString(sum[:])
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.TypeKey, dpop.Type); err != nil {
		t.Fatal(err)
	}
	if err := h.Set(jws.JWKKey, k.pub); err != nil {
		t.Fatal(err)
	}
	out, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), k.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

const resourceURL = "https://rs.example/api/items"

// protectedServer is a resource behind Middleware at t0 + 1 minute, with a
// MemoryReplay on the same clock: it echoes the verified subject and needs
// scope "read" on /api/items.
func protectedServer(t testing.TB, m *verify.Middleware) http.Handler {
	t.Helper()
	at := t0.Add(time.Minute)
	iss := getIssuer(t)
	k := iss.key(t, "ES256")
	m.Verifier = &verify.Verifier{
		Keys:     verify.KeySet{k.ID: {Public: k.Public, Alg: k.Alg}},
		Issuer:   testIssuer,
		Audience: testAudience,
		Now:      func() time.Time { return at },
	}
	if m.DPoP != nil {
		m.DPoP.Now = func() time.Time { return at }
		m.DPoP.Replay = &verify.MemoryReplay{Now: m.DPoP.Now}
	}
	m.URI = func(r *http.Request) string { return "https://rs.example" + r.URL.Path }
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verify.ClaimsFrom(r.Context())
		if !ok {
			t.Error("no claims in the request context")
		}
		w.Write([]byte(c.Subject))
	})
	return m.Wrap(m.RequireScope(echo, "read"))
}

type response struct {
	status               int
	body, nonce          string
	bearerAuth, dpopAuth string
}

func call(h http.Handler, method string, header map[string][]string) response {
	r := httptest.NewRequest(method, resourceURL, nil)
	for k, vs := range header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	resp := response{status: w.Code, body: w.Body.String(), nonce: w.Header().Get(dpop.NonceHeader)}
	for _, c := range w.Header().Values("WWW-Authenticate") {
		switch {
		case strings.HasPrefix(c, "Bearer"):
			resp.bearerAuth = c
		case strings.HasPrefix(c, "DPoP"):
			resp.dpopAuth = c
		}
	}
	return resp
}

// TestMiddleware drives the resource-server middleware with bearer and
// DPoP-bound tokens and checks each answer and challenge (RFC 6750 §3,
// RFC 9449 §7).
func TestMiddleware(t *testing.T) {
	iss := getIssuer(t)
	pk := newProofKey(t)
	other := newProofKey(t)
	at := t0.Add(time.Minute)
	bearer := iss.mint(t, "ES256", token.TypeAccess, nil)
	bound := iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Confirmation = &token.Confirmation{JKT: pk.jkt} })
	noScope := iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) {
		c.Scope = "write"
		c.Confirmation = &token.Confirmation{JKT: pk.jkt}
	})
	h := protectedServer(t, &verify.Middleware{DPoP: &dpop.Checker{}, Realm: "items"})

	replayed := pk.proof(t, "GET", resourceURL, bound, at)
	if r := call(h, "GET", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {replayed}}); r.status != 200 || r.body != "alice" {
		t.Fatalf("first use of a proof: %d %q", r.status, r.body)
	}

	for _, tt := range []struct {
		name      string
		method    string
		header    map[string][]string
		status    int
		scheme    string // the challenge carrying the error
		wantError string
	}{
		{"bearer", "GET", map[string][]string{"Authorization": {"Bearer " + bearer}}, 200, "", ""},
		{"bearer scheme case-insensitive", "GET", map[string][]string{"Authorization": {"bearer " + bearer}}, 200, "", ""},
		{"dpop", "GET", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {pk.proof(t, "GET", resourceURL, bound, at)}}, 200, "", ""},
		{"no token", "GET", nil, 401, "", ""},
		{"another scheme", "GET", map[string][]string{"Authorization": {"Basic YTpi"}}, 401, "", ""},
		{"two Authorization headers", "GET", map[string][]string{"Authorization": {"Bearer " + bearer, "DPoP " + bound}}, 400, "Bearer", "invalid_request"},
		{"garbage token", "GET", map[string][]string{"Authorization": {"Bearer abc"}}, 401, "Bearer", "invalid_token"},
		{"bound token as bearer (RFC 9449 §7.2)", "GET", map[string][]string{"Authorization": {"Bearer " + bound}}, 401, "DPoP", "invalid_token"},
		{"bound token without proof", "GET", map[string][]string{"Authorization": {"DPoP " + bound}}, 401, "DPoP", "invalid_dpop_proof"},
		{"unbound token with DPoP scheme", "GET", map[string][]string{"Authorization": {"DPoP " + bearer}, "DPoP": {pk.proof(t, "GET", resourceURL, bearer, at)}}, 401, "DPoP", "invalid_token"},
		{"proof by another key", "GET", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {other.proof(t, "GET", resourceURL, bound, at)}}, 401, "DPoP", "invalid_token"},
		{"proof without ath", "GET", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {pk.proof(t, "GET", resourceURL, "", at)}}, 401, "DPoP", "invalid_dpop_proof"},
		{"proof for another token", "GET", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {pk.proof(t, "GET", resourceURL, bearer, at)}}, 401, "DPoP", "invalid_dpop_proof"},
		{"proof for another method", "POST", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {pk.proof(t, "GET", resourceURL, bound, at)}}, 401, "DPoP", "invalid_dpop_proof"},
		{"proof for another URI", "GET", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {pk.proof(t, "GET", "https://rs.example/api/other", bound, at)}}, 401, "DPoP", "invalid_dpop_proof"},
		{"stale proof", "GET", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {pk.proof(t, "GET", resourceURL, bound, at.Add(-time.Hour))}}, 401, "DPoP", "invalid_dpop_proof"},
		{"replayed proof", "GET", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {replayed}}, 401, "DPoP", "invalid_dpop_proof"},
		{"bearer token with a proof", "GET", map[string][]string{"Authorization": {"Bearer " + bearer}, "DPoP": {pk.proof(t, "GET", resourceURL, bearer, at)}}, 400, "Bearer", "invalid_request"},
		{"missing scope", "GET", map[string][]string{"Authorization": {"DPoP " + noScope}, "DPoP": {pk.proof(t, "GET", resourceURL, noScope, at)}}, 403, "DPoP", "insufficient_scope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := call(h, tt.method, tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (challenges %q, %q)", r.status, tt.status, r.bearerAuth, r.dpopAuth)
			}
			if tt.status == 200 {
				if r.body != "alice" {
					t.Errorf("body %q, want the subject", r.body)
				}
				return
			}
			// Both schemes are offered, with the realm; DPoP with its algs.
			if !strings.HasPrefix(r.bearerAuth, `Bearer realm="items"`) || !strings.HasPrefix(r.dpopAuth, `DPoP realm="items", algs="ES256 EdDSA RS256 PS256"`) {
				t.Errorf("challenges %q, %q", r.bearerAuth, r.dpopAuth)
			}
			carrier, plain := r.bearerAuth, r.dpopAuth
			if tt.scheme == "DPoP" {
				carrier, plain = r.dpopAuth, r.bearerAuth
			}
			if tt.wantError == "" {
				if strings.Contains(r.bearerAuth+r.dpopAuth, "error=") {
					t.Errorf("an error code without a token: %q, %q", r.bearerAuth, r.dpopAuth)
				}
				return
			}
			if !strings.Contains(carrier, `error="`+tt.wantError+`"`) || strings.Contains(plain, "error=") {
				t.Errorf("want error %q on the %s challenge: %q, %q", tt.wantError, tt.scheme, r.bearerAuth, r.dpopAuth)
			}
			if tt.wantError == "insufficient_scope" && !strings.Contains(carrier, `scope="read"`) {
				t.Errorf("insufficient_scope without the scope needed: %q", carrier)
			}
		})
	}
}

// TestMiddlewareRequireDPoP: with RequireDPoP, bearer tokens are refused
// and only the DPoP scheme is offered.
func TestMiddlewareRequireDPoP(t *testing.T) {
	iss := getIssuer(t)
	bearer := iss.mint(t, "ES256", token.TypeAccess, nil)
	h := protectedServer(t, &verify.Middleware{DPoP: &dpop.Checker{}, RequireDPoP: true})
	r := call(h, "GET", map[string][]string{"Authorization": {"Bearer " + bearer}})
	if r.status != 401 || r.bearerAuth != "" || !strings.Contains(r.dpopAuth, `error="invalid_token"`) {
		t.Errorf("bearer token with RequireDPoP: %d, %q, %q", r.status, r.bearerAuth, r.dpopAuth)
	}
}

// TestMiddlewareNonce: a resource server demanding nonces answers a proof
// without one with use_dpop_nonce and the nonce, and accepts the retry.
func TestMiddlewareNonce(t *testing.T) {
	iss := getIssuer(t)
	pk := newProofKey(t)
	at := t0.Add(time.Minute)
	bound := iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Confirmation = &token.Confirmation{JKT: pk.jkt} })
	nonces := &dpop.Nonces{Key: randomBytes(t, 32)}
	h := protectedServer(t, &verify.Middleware{DPoP: &dpop.Checker{Nonces: nonces}})
	r := call(h, "GET", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {pk.proof(t, "GET", resourceURL, bound, at)}})
	if r.status != 401 || !strings.Contains(r.dpopAuth, `error="use_dpop_nonce"`) || r.nonce == "" {
		t.Fatalf("proof without nonce: %d %q nonce %q", r.status, r.dpopAuth, r.nonce)
	}
	if !nonces.Valid(r.nonce, at) {
		t.Fatalf("the nonce handed out is not valid: %q", r.nonce)
	}
	withNonce := func() string {
		claims := map[string]any{"jti": b64.EncodeToString(randomBytes(t, 16)), "htm": "GET", "htu": resourceURL, "iat": at.Unix(), "nonce": r.nonce}
		sum := sha256.Sum256([]byte(bound))
		claims["ath"] = b64.EncodeToString(sum[:])
		payload, _ := json.Marshal(claims)
		hd := jws.NewHeaders()
		hd.Set(jws.TypeKey, dpop.Type)
		hd.Set(jws.JWKKey, pk.pub)
		out, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), pk.priv, jws.WithProtectedHeaders(hd)))
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}()
	if r := call(h, "GET", map[string][]string{"Authorization": {"DPoP " + bound}, "DPoP": {withNonce}}); r.status != 200 {
		t.Errorf("proof with the nonce: %d %q", r.status, r.dpopAuth)
	}
}

// TestMemoryReplay: a key is refused until it expires; a full cache drops
// expired keys and then refuses rather than forget live ones.
func TestMemoryReplay(t *testing.T) {
	clk := &clock{t: t0}
	m := &verify.MemoryReplay{Max: 2, Now: clk.Now}
	ctx := t.Context()
	if err := m.MarkJTI(ctx, "a", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := m.MarkJTI(ctx, "a", t0.Add(time.Minute)); err == nil {
		t.Error("a repeated key was accepted")
	}
	if err := m.MarkJTI(ctx, "b", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := m.MarkJTI(ctx, "c", t0.Add(time.Minute)); err == nil {
		t.Error("a full cache of live keys accepted a new one")
	}
	clk.Advance(time.Minute) // a expires
	if err := m.MarkJTI(ctx, "a", t0.Add(3*time.Minute)); err != nil {
		t.Errorf("an expired key was refused: %v", err)
	}
	if err := m.MarkJTI(ctx, "b", t0.Add(3*time.Minute)); err == nil {
		t.Error("a live key was forgotten")
	}
}
