package dpop_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/store/sqlite"
)

// Proofs in these tests are made with lestrrat-go/jwx, a JOSE
// implementation independent of the go-jose code under test: jws.Sign for
// ordinary proofs, and jwx's signing primitives (jwsbb) over hand-written
// header JSON for the malformed ones jws.Sign would not produce.

// now is the fixed clock of every test that does not use an RFC vector.
var now = time.Unix(1_800_000_000, 0)

const (
	tokenURI    = "https://as.example.com/token"
	resourceURI = "https://rs.example.com/api/items"
	window      = time.Minute
	leeway      = 5 * time.Second
)

// testKey is a proof key pair, made and used through jwx.
type testKey struct {
	alg    string
	signer crypto.Signer  // the raw private key, for jwsbb
	priv   jwk.Key        // the private JWK, for jws.Sign
	pub    jwk.Key        // the public JWK
	jwk    map[string]any // the public JWK's members, for hand-written headers
}

var (
	keysMu sync.Mutex
	keys   = map[string]*testKey{}
)

// key returns the test key named name ("ES256", "EdDSA", "RS256",
// "PS256", or a variant such as "ES256-2" for a second key), generated
// once per test binary: RSA generation is slow under -race.
func key(t testing.TB, name string) *testKey {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[name]; ok {
		return k
	}
	alg, _, _ := strings.Cut(name, "-")
	var raw crypto.Signer
	var err error
	switch alg {
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P384": // a key ES256 must not accept
		raw, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	case "RSA1024": // below Sigil's minimum
		raw, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		t.Fatalf("no key %q", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	var k *testKey
	if alg == "RSA1024" {
		// jwx refuses to import RSA keys under 2048 bits; write the
		// public JWK by hand.
		pub := raw.Public().(*rsa.PublicKey)
		k = &testKey{alg: "RS256", signer: raw, jwk: map[string]any{
			"kty": "RSA", "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
		}}
	} else {
		k = newTestKey(t, alg, raw)
	}
	keys[name] = k
	return k
}

func newTestKey(t testing.TB, alg string, raw crypto.Signer) *testKey {
	t.Helper()
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{alg: alg, signer: raw, priv: priv, pub: pub, jwk: members(t, pub)}
}

// members returns the JSON members of a JWK.
func members(t testing.TB, k jwk.Key) map[string]any {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// privateJWK returns the members of k's private JWK.
func (k *testKey) privateJWK(t testing.TB) map[string]any {
	t.Helper()
	return members(t, k.priv)
}

// jkt is jwx's RFC 7638 SHA-256 thumbprint of k, base64url.
func (k *testKey) jkt(t testing.TB) string {
	t.Helper()
	sum, err := k.pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// spec describes a proof and the request it comes with. newSpec fills in
// a valid proof for POST tokenURI at now; tests then break one thing.
type spec struct {
	key     *testKey
	header  map[string]any // protected header members
	claims  map[string]any // payload members
	payload string         // with raw, the exact payload JSON instead of claims

	// raw makes the proof from header as encoding/json marshals it (or
	// from headerJSON when set), signed by jwsbb with signAlg and signer,
	// instead of through jws.Sign.
	raw        bool
	headerJSON string
	signAlg    string // default header["alg"]
	signer     any    // default key.signer; []byte for HMAC

	edit func(proof string) string // applied to the compact proof

	method, uri, accessToken string
	headers                  func(proof string) []string // the DPoP header values; default the proof alone
}

func newSpec(k *testKey) *spec {
	return &spec{
		key:    k,
		header: map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.jwk},
		claims: map[string]any{"jti": newJTI(), "htm": "POST", "htu": tokenURI, "iat": now.Unix()},
		method: "POST",
		uri:    tokenURI,
	}
}

// newJTI returns 128 random bits, base64url.
func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// proof makes the compact proof s describes.
func (s *spec) proof(t testing.TB) string {
	t.Helper()
	payload, err := json.Marshal(s.claims)
	if err != nil {
		t.Fatal(err)
	}
	if s.payload != "" {
		payload = []byte(s.payload)
	}
	var p string
	if s.raw {
		p = s.signRaw(t, payload)
	} else {
		p = s.signJWS(t, payload)
	}
	if s.edit != nil {
		p = s.edit(p)
	}
	return p
}

func (s *spec) signJWS(t testing.TB, payload []byte) string {
	t.Helper()
	alg, ok := jwa.LookupSignatureAlgorithm(s.header["alg"].(string))
	if !ok {
		t.Fatalf("jwx does not know alg %v", s.header["alg"])
	}
	h := jws.NewHeaders()
	for name, v := range s.header {
		if name == "alg" {
			continue // jws.Sign sets it from WithKey
		}
		if name == "jwk" {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if v, err = jwk.ParseKey(b); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.Set(name, v); err != nil {
			t.Fatalf("jws header %s: %v", name, err)
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(alg, s.key.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatalf("jws.Sign: %v", err)
	}
	return string(out)
}

func (s *spec) signRaw(t testing.TB, payload []byte) string {
	t.Helper()
	hdr := []byte(s.headerJSON)
	if s.headerJSON == "" {
		var err error
		if hdr, err = json.Marshal(s.header); err != nil {
			t.Fatal(err)
		}
	}
	alg := s.signAlg
	if alg == "" {
		alg, _ = s.header["alg"].(string)
	}
	var signer any = s.key.signer
	if s.signer != nil {
		signer = s.signer
	}
	input := b64(hdr) + "." + b64(payload)
	if alg == "none" {
		return input + "."
	}
	sig, err := jwsbb.Sign(signer, alg, []byte(input), nil)
	if err != nil {
		t.Fatalf("jwsbb.Sign %s: %v", alg, err)
	}
	return input + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// request returns the proof and the request s describes.
func (s *spec) request(t testing.TB) dpop.Request {
	t.Helper()
	p := s.proof(t)
	r := dpop.Request{Header: []string{p}, Method: s.method, URI: s.uri, AccessToken: s.accessToken}
	if s.headers != nil {
		r.Header = s.headers(p)
	}
	return r
}

// ath is the RFC 9449 §4.2 hash of an access token.
func ath(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64(sum[:])
}

// newChecker returns a Checker at the fixed time at, over a fresh SQLite
// replay cache whose clock is also at.
func newChecker(t testing.TB, at time.Time) *dpop.Checker {
	t.Helper()
	st := newStore(t, at)
	return &dpop.Checker{Replay: st, Window: window, Leeway: leeway, Now: func() time.Time { return at }}
}

func newStore(t testing.TB, at time.Time) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	// MarkJTI judges expiry by the store's clock: it must agree with the
	// checker's, or entries made at a fixed past time would count as
	// expired at once.
	st.Now = func() time.Time { return at }
	return st
}

// wantOK fails t unless Check accepted the proof.
func wantOK(t testing.TB, p *dpop.Proof, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Check: %v, want success", err)
	}
	if p == nil {
		t.Fatal("Check returned neither a proof nor an error")
	}
}

// wantError fails t unless err is a *dpop.Error (not wrapped, not another
// type) with code, whose description contains desc.
func wantError(t testing.TB, p *dpop.Proof, err error, code, desc string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Check accepted the proof (jti %q), want %s (%s)", p.JTI, code, desc)
	}
	if p != nil {
		t.Errorf("Check returned a proof with error %v", err)
	}
	e, ok := err.(*dpop.Error)
	if !ok {
		t.Fatalf("Check error is %T (%v), want *dpop.Error", err, err)
	}
	if e.Code != code {
		t.Errorf("Code = %q (%s), want %q", e.Code, e.Description, code)
	}
	if !strings.Contains(e.Description, desc) {
		t.Errorf("Description = %q, want it to say %q", e.Description, desc)
	}
}
