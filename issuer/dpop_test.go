package issuer_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/internal/httpx"
)

// dpopKey is a client's DPoP key pair, made and used with jwx so that the
// issuer's proof checks and thumbprints are tested against a JOSE
// implementation other than its own (go-jose).
type dpopKey struct {
	alg       jwa.SignatureAlgorithm
	priv, pub jwk.Key
	// jkt is jwx's RFC 7638 SHA-256 thumbprint of pub, base64url: what
	// cnf.jkt of a bound token must be.
	jkt string
}

// newDPoPKey makes a key for alg (ES256, EdDSA, RS256 or PS256) whose
// public JWK has only the key members: no kid, alg or use.
func newDPoPKey(t testing.TB, alg string) *dpopKey {
	t.Helper()
	var raw any
	var err error
	a, ok := jwa.LookupSignatureAlgorithm(alg)
	if !ok {
		t.Fatalf("jwx has no algorithm %s", alg)
	}
	switch alg {
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("no DPoP key for %s", alg)
	}
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
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKey{alg: a, priv: priv, pub: pub, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// proofParts are the pieces of one proof, valid unless a test changes
// them: typ dpop+jwt and the public jwk in the protected header; jti, htm
// POST, htu and iat now in the claims; signed with the key's alg.
type proofParts struct {
	hdr    map[string]any
	claims map[string]any
	alg    jwa.SignatureAlgorithm
	key    any // the signing key
}

func (k *dpopKey) parts(htu string) *proofParts {
	return &proofParts{
		hdr:    map[string]any{jws.TypeKey: "dpop+jwt", jws.JWKKey: k.pub},
		claims: map[string]any{"jti": randomJTI(), "htm": http.MethodPost, "htu": htu, "iat": time.Now().Unix()},
		alg:    k.alg,
		key:    k.priv,
	}
}

// sign makes the compact JWS with jwx.
func (p *proofParts) sign() (string, error) {
	payload, err := json.Marshal(p.claims)
	if err != nil {
		return "", err
	}
	h := jws.NewHeaders()
	for name, v := range p.hdr {
		if err := h.Set(name, v); err != nil {
			return "", fmt.Errorf("header %s: %w", name, err)
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(p.alg, p.key, jws.WithProtectedHeaders(h)))
	return string(out), err
}

// proof is a valid proof for POST htu, after applying mods.
func (k *dpopKey) proof(t testing.TB, htu string, mods ...func(*proofParts)) string {
	t.Helper()
	p := k.parts(htu)
	for _, m := range mods {
		m(p)
	}
	s, err := p.sign()
	if err != nil {
		t.Fatalf("jwx sign proof: %v", err)
	}
	return s
}

func withNonce(nonce string) func(*proofParts) {
	return func(p *proofParts) { p.claims["nonce"] = nonce }
}

// tokenEndpoint is the token_endpoint the node's metadata announces: the
// htu of every proof.
func (n *testNode) tokenEndpoint(t testing.TB) string {
	t.Helper()
	r := n.get(t, "/.well-known/oauth-authorization-server")
	if r.status != http.StatusOK {
		t.Fatalf("metadata: status %d: %s", r.status, r.body)
	}
	ep := r.str(t, "token_endpoint")
	if ep == "" {
		t.Fatalf("metadata has no token_endpoint: %s", r.body)
	}
	return ep
}

// dpopToken asks for a client_credentials token for c with one DPoP
// header per proof (none when proofs is empty).
func (n *testNode) dpopToken(t testing.TB, c *admin.ClientInfo, proofs ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.url("/token"), strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	return n.do(t, req)
}

// wantBound checks a 200 token response of type DPoP whose access token
// verifies with jwx against the node's JWKS and is bound to k, and returns
// the access token.
func wantBound(t testing.TB, n *testNode, r reply, k *dpopKey) string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("token: status %d: %s", r.status, r.body)
	}
	if tt := r.str(t, "token_type"); tt != "DPoP" {
		t.Errorf("token_type = %q, want DPoP (body %s)", tt, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	raw := r.str(t, "access_token")
	tok := n.verifyJWX(t, raw)
	var cnf map[string]any
	if err := tok.Get("cnf", &cnf); err != nil {
		t.Fatalf("jwx: the access token has no cnf: %v: %v", err, claims(t, raw))
	}
	if diff := cmp.Diff(map[string]any{"jkt": k.jkt}, cnf); diff != "" {
		t.Errorf("cnf (-want +got, want jwx's thumbprint of the proof key):\n%s", diff)
	}
	return raw
}

// TestDPoPBinding: a token request with a valid proof gets a DPoP token
// bound to the proof key (RFC 9449 §5, §6.1); the same client without a
// proof gets a Bearer token with no cnf. Introspection (§6.2) and the
// audit trail say which is which.
func TestDPoPBinding(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	k := newDPoPKey(t, "ES256")
	htu := n.tokenEndpoint(t)

	r := n.dpopToken(t, c, k.proof(t, htu))
	dpopTok := wantBound(t, n, r, k)

	// The Bearer token comes through golang.org/x/oauth2, a client that
	// knows nothing of DPoP.
	ctx, _ := oauthClient(t)
	ot, err := ccConfig(n, c).Token(ctx)
	if err != nil {
		t.Fatalf("x/oauth2 Token: %v", err)
	}
	if ot.TokenType != "Bearer" {
		t.Errorf("without a proof: token_type = %q, want Bearer", ot.TokenType)
	}
	bearerTok := ot.AccessToken
	if tok := n.verifyJWX(t, bearerTok); tok.Has("cnf") {
		t.Errorf("a Bearer token has cnf: %v", claims(t, bearerTok))
	}

	t.Run("introspection", func(t *testing.T) {
		for _, tc := range []struct {
			name, tok, tokenType string
			cnf                  any // nil: no cnf member
		}{
			{"dpop", dpopTok, "DPoP", map[string]any{"jkt": k.jkt}},
			{"bearer", bearerTok, "Bearer", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// §6.2: the introspection request itself carries no proof.
				r := n.introspect(t, basic(c), tc.tok)
				if r.status != http.StatusOK {
					t.Fatalf("introspect: status %d: %s", r.status, r.body)
				}
				m := r.json(t)
				if m["active"] != true || m["token_type"] != tc.tokenType {
					t.Errorf("active = %v, token_type = %v; want true, %s (body %s)", m["active"], m["token_type"], tc.tokenType, r.body)
				}
				if diff := cmp.Diff(tc.cnf, m["cnf"]); diff != "" {
					t.Errorf("cnf (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("audit", func(t *testing.T) {
		for _, tc := range []struct {
			name, tok string
			want      map[string]string
		}{
			{"dpop", dpopTok, map[string]string{"grant_type": "client_credentials", "dpop_jkt": k.jkt}},
			{"bearer", bearerTok, map[string]string{"grant_type": "client_credentials"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// No polling: the response waited for the record.
				got := durableRecords(t, n, sigil.AuditQuery{JTI: jtiOf(t, tc.tok), Event: string(audit.TokenIssued)})
				if len(got) != 1 {
					t.Fatalf("%d token.issued records for the token, want 1", len(got))
				}
				if diff := cmp.Diff(tc.want, got[0].Detail); diff != "" {
					t.Errorf("token.issued detail (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("htu-equivalent-forms", func(t *testing.T) {
		// §4.3 item 9: htu is compared after RFC 3986 §6.2.2 and §6.2.3
		// normalisation.
		u, err := url.Parse(htu)
		if err != nil {
			t.Fatal(err)
		}
		dir := strings.TrimSuffix(u.Path, "/token")
		for _, tc := range []struct{ name, htu string }{
			{"upper-case-scheme", "HTTP://" + u.Host + u.Path},
			{"percent-encoded-unreserved", "http://" + u.Host + dir + "/%74oken"},
			{"dot-segments", "http://" + u.Host + dir + "/x/../token"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantBound(t, n, n.dpopToken(t, c, k.proof(t, tc.htu)), k)
			})
		}
	})

	t.Run("bound-client-with-proof", func(t *testing.T) {
		bound := n.newClient(t, admin.ClientSpec{Scope: "read", DPoPBound: true})
		wantBound(t, n, n.dpopToken(t, bound, k.proof(t, htu)), k)
	})
}

// TestDPoPRefusals sends each kind of bad proof once (RFC 9449 §4.3) and
// a DPoP-bound client's request without one. Each is 400
// invalid_dpop_proof in RFC 6749 §5.2 JSON, issues no token, and leaves a
// token.refused record with that reason.
func TestDPoPRefusals(t *testing.T) {
	n := startNode(t)
	k := newDPoPKey(t, "ES256")
	other := newDPoPKey(t, "ES256")
	htu := n.tokenEndpoint(t)
	hmacKey := make([]byte, 32)
	rand.Read(hmacKey)

	for _, tc := range []struct {
		name  string
		bound bool
		// proofs are the DPoP header values; accepted first, if set, is
		// sent alone before them and must succeed.
		proofs   func(t *testing.T) []string
		accepted bool
	}{
		{name: "htu-of-another-endpoint", proofs: func(t *testing.T) []string {
			return []string{k.proof(t, strings.TrimSuffix(htu, "/token")+"/introspect")}
		}},
		{name: "htu-of-another-host", proofs: func(t *testing.T) []string {
			return []string{k.proof(t, "https://server.example.com/token")}
		}},
		{name: "htm-GET", proofs: func(t *testing.T) []string {
			return []string{k.proof(t, htu, func(p *proofParts) { p.claims["htm"] = http.MethodGet })}
		}},
		{name: "iat-stale", proofs: func(t *testing.T) []string {
			return []string{k.proof(t, htu, func(p *proofParts) { p.claims["iat"] = time.Now().Add(-10 * time.Minute).Unix() })}
		}},
		{name: "iat-future", proofs: func(t *testing.T) []string {
			return []string{k.proof(t, htu, func(p *proofParts) { p.claims["iat"] = time.Now().Add(10 * time.Minute).Unix() })}
		}},
		{name: "alg-HS256", proofs: func(t *testing.T) []string {
			return []string{k.proof(t, htu, func(p *proofParts) { p.alg, p.key = jwa.HS256(), hmacKey })}
		}},
		{name: "alg-none", proofs: func(t *testing.T) []string {
			// jwx will not make an unsigned JWS with a jwk header, so this
			// one is assembled by hand.
			pub, err := json.Marshal(k.pub)
			if err != nil {
				t.Fatal(err)
			}
			hdr := `{"typ":"dpop+jwt","alg":"none","jwk":` + string(pub) + `}`
			body, _ := json.Marshal(k.parts(htu).claims)
			return []string{base64.RawURLEncoding.EncodeToString([]byte(hdr)) + "." + base64.RawURLEncoding.EncodeToString(body) + "."}
		}},
		{name: "typ-JWT", proofs: func(t *testing.T) []string {
			return []string{k.proof(t, htu, func(p *proofParts) { p.hdr[jws.TypeKey] = "JWT" })}
		}},
		{name: "signed-by-another-key", proofs: func(t *testing.T) []string {
			return []string{k.proof(t, htu, func(p *proofParts) { p.key = other.priv })}
		}},
		{name: "private-key-in-jwk", proofs: func(t *testing.T) []string {
			p := k.proof(t, htu, func(p *proofParts) { p.hdr[jws.JWKKey] = k.priv })
			if jwkHdr, _ := header(t, p)["jwk"].(map[string]any); jwkHdr["d"] == nil {
				t.Fatalf("jwx left the private member out of the jwk header: %v", jwkHdr)
			}
			return []string{p}
		}},
		{name: "two-DPoP-headers", proofs: func(t *testing.T) []string {
			return []string{k.proof(t, htu), k.proof(t, htu)}
		}},
		{name: "replay-of-accepted-proof", accepted: true, proofs: func(t *testing.T) []string {
			return []string{k.proof(t, htu)}
		}},
		{name: "bound-client-without-proof", bound: true, proofs: func(t *testing.T) []string { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := n.newClient(t, admin.ClientSpec{Scope: "read", DPoPBound: tc.bound})
			proofs := tc.proofs(t)
			wantIssued := 0
			if tc.accepted {
				wantBound(t, n, n.dpopToken(t, c, proofs...), k)
				wantIssued = 1
			}
			r := n.dpopToken(t, c, proofs...)
			wantError(t, r, http.StatusBadRequest, "invalid_dpop_proof")
			m := r.json(t)
			if _, ok := m["access_token"]; ok {
				t.Errorf("a refusal carries an access token: %s", r.body)
			}
			if d, _ := m["error_description"].(string); d == "" {
				t.Errorf("no error_description: %s", r.body)
			} else {
				t.Logf("refused: %s", d)
			}
			if got := durableRecords(t, n, sigil.AuditQuery{ClientID: c.ClientID, Event: string(audit.TokenIssued)}); len(got) != wantIssued {
				t.Errorf("%d token.issued records for the client, want %d", len(got), wantIssued)
			}
			rec := awaitRecord(t, n, audit.TokenRefused, r.header.Get(httpx.RequestIDHeader))
			if rec.Reason != "invalid_dpop_proof" || rec.ClientID != c.ClientID || rec.Outcome != audit.Failure {
				t.Errorf("token.refused record: reason %q, client %q, outcome %q; want invalid_dpop_proof, %s, failure", rec.Reason, rec.ClientID, rec.Outcome, c.ClientID)
			}
		})
	}

	t.Run("no-proof-in-the-trail", func(t *testing.T) {
		for _, r := range records(t, n, sigil.AuditQuery{Limit: 100_000}) {
			b, _ := json.Marshal(r)
			if strings.Contains(string(b), "eyJ") {
				t.Errorf("record holds something that looks like a JWT: %s", b)
			}
		}
	})
}

// TestDPoPReplayAcrossRestart: the jti of an accepted proof is remembered
// in the store, so a node started afresh on the same data directory
// refuses the proof too (RFC 9449 §11.1).
func TestDPoPReplayAcrossRestart(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	k := newDPoPKey(t, "ES256")
	htu := n.tokenEndpoint(t)
	p := k.proof(t, htu)
	wantBound(t, n, n.dpopToken(t, c, p), k)

	n.restart()
	if got := n.tokenEndpoint(t); got != htu {
		t.Fatalf("token_endpoint after restart = %q, want %q", got, htu)
	}
	wantError(t, n.dpopToken(t, c, p), http.StatusBadRequest, "invalid_dpop_proof")
	// The restarted node itself works: a fresh proof passes.
	wantBound(t, n, n.dpopToken(t, c, k.proof(t, htu)), k)
}

// TestDPoPReplayConcurrent: one proof sent many times at once is
// accepted once; the replay cache decides atomically.
func TestDPoPReplayConcurrent(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	k := newDPoPKey(t, "ES256")
	p := k.proof(t, n.tokenEndpoint(t))
	const parallel = 16
	statuses := make(chan int, parallel)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodPost, n.url("/token"), strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
			req.Header.Set("DPoP", p)
			resp, err := n.hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusOK] != 1 || count[http.StatusBadRequest] != parallel-1 {
		t.Errorf("statuses %v, want one 200 and %d 400", count, parallel-1)
	}
	if got := durableRecords(t, n, sigil.AuditQuery{ClientID: c.ClientID, Event: string(audit.TokenIssued)}); len(got) != 1 {
		t.Errorf("%d token.issued records, want 1", len(got))
	}
}

// validNonce reports whether s has the nonce syntax of RFC 9449 §8.1,
// 1*NQCHAR (%x21 / %x23-5B / %x5D-7E).
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7E || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// wantNonce checks that r carries exactly one well-formed DPoP-Nonce and
// returns it.
func wantNonce(t testing.TB, r reply) string {
	t.Helper()
	vs := r.header.Values("DPoP-Nonce")
	if len(vs) != 1 || !validNonce(vs[0]) {
		t.Fatalf("DPoP-Nonce headers %q, want exactly one 1*NQCHAR value (status %d, body %s)", vs, r.status, r.body)
	}
	return vs[0]
}

// TestDPoPNonce runs the RFC 9449 §8 round trip against a node started
// with server nonces: a proof without a nonce is refused with
// use_dpop_nonce and a nonce; the retry with it succeeds; a proof without
// one, or with a forged one, is refused afterwards too (§11.3).
func TestDPoPNonce(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.DPoPNonce = true })
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	k := newDPoPKey(t, "ES256")
	htu := n.tokenEndpoint(t)

	r := n.dpopToken(t, c, k.proof(t, htu))
	wantError(t, r, http.StatusBadRequest, "use_dpop_nonce")
	nonce := wantNonce(t, r)
	rec := awaitRecord(t, n, audit.TokenRefused, r.header.Get(httpx.RequestIDHeader))
	if rec.Reason != "use_dpop_nonce" {
		t.Errorf("token.refused reason %q, want use_dpop_nonce", rec.Reason)
	}

	r = n.dpopToken(t, c, k.proof(t, htu, withNonce(nonce)))
	wantBound(t, n, r, k)
	wantNonce(t, r) // §8.2: 200 responses carry a nonce too

	// A request without DPoP is untouched by nonces, and still told one.
	r = n.dpopToken(t, c)
	if r.status != http.StatusOK || r.str(t, "token_type") != "Bearer" {
		t.Errorf("without a proof: status %d: %s, want a Bearer token", r.status, r.body)
	}
	wantNonce(t, r)

	// The same nonce with its last character (part of the MAC) changed.
	tampered := []byte(nonce)
	if tampered[len(tampered)-1] == 'A' {
		tampered[len(tampered)-1] = 'B'
	} else {
		tampered[len(tampered)-1] = 'A'
	}
	for _, tc := range []struct {
		name string
		mods []func(*proofParts)
	}{
		{"no-nonce-after-one-was-given", nil},
		{"rfc-example-nonce", []func(*proofParts){withNonce("eyJ7S_zG.eyJH0-Z.HX4w-7v")}},
		{"tampered-nonce", []func(*proofParts){withNonce(string(tampered))}},
		{"empty-nonce", []func(*proofParts){withNonce("")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.dpopToken(t, c, k.proof(t, htu, tc.mods...))
			wantError(t, r, http.StatusBadRequest, "use_dpop_nonce")
			if _, ok := r.json(t)["access_token"]; ok {
				t.Errorf("a refusal carries an access token: %s", r.body)
			}
			wantNonce(t, r)
		})
	}

	t.Run("nonce-survives-restart", func(t *testing.T) {
		// Nonces are MACed under a key derived from the master key, so a
		// node on the same data directory takes them.
		n.restart()
		wantBound(t, n, n.dpopToken(t, c, k.proof(t, htu, withNonce(nonce))), k)
	})
}

// TestDPoPMetadata: the metadata announces the proof algorithms (RFC 9449
// §5.1), all asymmetric, and a proof made with each of them is accepted
// and bound to jwx's thumbprint of its key (RFC 7638 for EC, OKP and RSA).
func TestDPoPMetadata(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	var algs []string
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		r := n.get(t, path)
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d", path, r.status)
		}
		var m struct {
			Algs []string `json:"dpop_signing_alg_values_supported"`
		}
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, want := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
			if !slices.Contains(m.Algs, want) {
				t.Errorf("%s: dpop_signing_alg_values_supported %q lacks %s", path, m.Algs, want)
			}
		}
		for _, a := range m.Algs {
			if strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS") {
				t.Errorf("%s: dpop_signing_alg_values_supported %q has %s", path, m.Algs, a)
			}
		}
		algs = m.Algs
	}
	htu := n.tokenEndpoint(t)
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			k := newDPoPKey(t, alg)
			wantBound(t, n, n.dpopToken(t, c, k.proof(t, htu)), k)
		})
	}
}

// BenchmarkTokenEndpointDPoP is BenchmarkTokenEndpointParallel/audit=true
// with a DPoP proof on every request: proof checks, the replay-cache write
// and the cnf claim. Proofs are made with jwx before the clock starts, one
// per request, so only the server's work is timed; they are valid for the
// proof window (about a minute and a half), so long -benchtime values fail.
func BenchmarkTokenEndpointDPoP(b *testing.B) {
	for _, audit := range []bool{true, false} {
		b.Run(fmt.Sprintf("audit=%v", audit), func(b *testing.B) {
			h, auth := benchNodeWith(b, func(c *config.Config) { c.AuditEnabled = audit })
			req := httptest.NewRequest(http.MethodGet, "/.well-known/oauth-authorization-server", nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			var md struct {
				TokenEndpoint string `json:"token_endpoint"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil || md.TokenEndpoint == "" {
				b.Fatalf("metadata: %v: %s", err, w.Body.String())
			}
			k := newDPoPKey(b, "ES256")
			proofs := make([]string, b.N)
			errs := make([]error, 8)
			var wg sync.WaitGroup
			for g := range errs {
				wg.Go(func() {
					for i := g; i < len(proofs) && errs[g] == nil; i += len(errs) {
						proofs[i], errs[g] = k.parts(md.TokenEndpoint).sign()
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					b.Fatalf("jwx sign proof: %v", err)
				}
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("grant_type=client_credentials&scope=read"))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					r.Header.Set("Authorization", auth)
					r.Header.Set("DPoP", proofs[next.Add(1)-1])
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != 200 || !strings.Contains(w.Body.String(), `"token_type":"DPoP"`) {
						b.Fatal(w.Code, w.Body.String())
					}
				}
			})
		})
	}
}
