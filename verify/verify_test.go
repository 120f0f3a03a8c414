package verify_test

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

func verifier(src token.KeySource, now time.Time) *verify.Verifier {
	return &verify.Verifier{Keys: src, Issuer: testIssuer, Audience: testAudience, Now: func() time.Time { return now }}
}

// TestVerifierAccepts is the control: the untampered token, and the
// variations RFC 9068 and the leeway allow.
func TestVerifierAccepts(t *testing.T) {
	iss := getIssuer(t)
	es := iss.key(t, "ES256")
	payload, err := json.Marshal(claims())
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(5 * time.Minute)
	tests := []struct {
		name string
		raw  string
		now  time.Time
	}{
		{"ES256", iss.mint(t, "ES256", token.TypeAccess, nil), t0},
		{"EdDSA", iss.mint(t, "EdDSA", token.TypeAccess, nil), t0},
		{"RS256", iss.mint(t, "RS256", token.TypeAccess, nil), t0},
		{"PS256", iss.mint(t, "PS256", token.TypeAccess, nil), t0},
		// RFC 9068 §4: typ compared case-insensitively, with or without
		// the application/ prefix.
		{"typ at+JWT", iss.mint(t, "ES256", "at+JWT", nil), t0},
		{"typ application/at+jwt", iss.mint(t, "ES256", "application/at+jwt", nil), t0},
		{"typ Application/AT+JWT", craft(t, "ES256", es.Signer, hdr("ES256", es.ID, "Application/AT+JWT"), payload), t0},
		{"exp within leeway", iss.mint(t, "ES256", token.TypeAccess, nil), exp.Add(verify.DefaultLeeway - time.Second)},
		{"just before exp", iss.mint(t, "ES256", token.TypeAccess, nil), exp.Add(-time.Second)},
		{"nbf within leeway", iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.NotBefore = token.NewNumericDate(t0.Add(verify.DefaultLeeway)) }), t0},
		{"iat within leeway", iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.IssuedAt = token.NewNumericDate(t0.Add(verify.DefaultLeeway)) }), t0},
		{"no nbf, no iat", iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.NotBefore, c.IssuedAt = 0, 0 }), t0},
		{"aud among several", iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Audience = token.Audience{"https://a.example", testAudience} }), t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := verifier(iss.set, tt.now).Verify(context.Background(), tt.raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != "alice" || c.JTI != "jti-1" {
				t.Errorf("claims %+v", c)
			}
		})
	}
}

// TestVerifierRejects runs the JWT attacks end to end, through Verify
// with the issuer's own key set as the key source (as introspection
// does). Every case must fail with ErrInvalid.
func TestVerifierRejects(t *testing.T) {
	iss := getIssuer(t)
	es, ed, rs, ps := iss.key(t, "ES256"), iss.key(t, "EdDSA"), iss.key(t, "RS256"), iss.key(t, "PS256")
	payload, err := json.Marshal(claims())
	if err != nil {
		t.Fatal(err)
	}
	good := iss.mint(t, "ES256", token.TypeAccess, nil)
	parts := strings.Split(good, ".")
	gh, gp, gs := parts[0], parts[1], parts[2]
	exp := t0.Add(5 * time.Minute)

	foreignES := foreignKey(t, "ES256")
	foreignRS := foreignKey(t, "RS256")
	esDER, err := x509.MarshalPKIXPublicKey(es.Public)
	if err != nil {
		t.Fatal(err)
	}
	rsDER, err := x509.MarshalPKIXPublicKey(rs.Public)
	if err != nil {
		t.Fatal(err)
	}
	rsJWK, err := jose.JSONWebKey{Key: rs.Public, KeyID: rs.ID, Algorithm: "RS256", Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	n := elliptic.P256().Params().N
	sig, _ := b64.DecodeString(gs)
	der, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
	nn := append(n.FillBytes(make([]byte, 32)), n.FillBytes(make([]byte, 32))...)

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallSet := verify.KeySet{"small": {Public: &small.PublicKey, Alg: "RS256"}}

	altered := claims()
	altered.Scope = "admin"
	alteredJSON, _ := json.Marshal(altered)

	tests := []struct {
		name string
		raw  string
		now  time.Time       // zero: t0
		src  token.KeySource // nil: the issuer's key set
		mod  func(*verify.Verifier)
	}{
		// Signature layer (token.Parse), end to end.
		{name: "alg none", raw: b64.EncodeToString(fmt.Appendf(nil, `{"alg":"none","kid":%q,"typ":"at+jwt"}`, es.ID)) + "." + gp + "."},
		{name: "HS256 keyed with the ES256 public key DER", raw: hmacToken(hdr("HS256", es.ID, "at+jwt"), payload, esDER)},
		{name: "HS256 keyed with the RS256 public key DER", raw: hmacToken(hdr("HS256", rs.ID, "at+jwt"), payload, rsDER)},
		{name: "HS256 keyed with the RS256 JWK JSON", raw: hmacToken(hdr("HS256", rs.ID, "at+jwt"), payload, rsJWK)},
		{name: "payload altered after signing", raw: gh + "." + b64.EncodeToString(alteredJSON) + "." + gs},
		{name: "foreign ES256 key carrying our kid", raw: craft(t, "ES256", foreignES, hdr("ES256", es.ID, "at+jwt"), payload)},
		{name: "kid ../../etc/passwd", raw: craft(t, "ES256", es.Signer, hdr("ES256", "../../etc/passwd", "at+jwt"), payload)},
		{name: "kid ../keys/x", raw: craft(t, "ES256", es.Signer, hdr("ES256", "../keys/x", "at+jwt"), payload)},
		{name: "kid empty", raw: craft(t, "ES256", es.Signer, hdr("ES256", "", "at+jwt"), payload)},
		{name: "kid very long", raw: craft(t, "ES256", es.Signer, hdr("ES256", strings.Repeat("x", 8000), "at+jwt"), payload)},
		{name: "jwk header", raw: craft(t, "ES256", foreignES, hdr("ES256", es.ID, "at+jwt", `"jwk":`+publicJWK(t, foreignES.Public())), payload)},
		{name: "jku header", raw: craft(t, "ES256", es.Signer, hdr("ES256", es.ID, "at+jwt", `"jku":"https://attacker.example/jwks"`), payload)},
		{name: "x5u header", raw: craft(t, "ES256", es.Signer, hdr("ES256", es.ID, "at+jwt", `"x5u":"https://attacker.example/c.pem"`), payload)},
		{name: "x5c header", raw: craft(t, "ES256", es.Signer, hdr("ES256", es.ID, "at+jwt", `"x5c":["MIIB"]`), payload)},
		{name: "x5t header", raw: craft(t, "ES256", es.Signer, hdr("ES256", es.ID, "at+jwt", `"x5t":"AAAA"`), payload)},
		{name: "crit header", raw: craft(t, "ES256", es.Signer, hdr("ES256", es.ID, "at+jwt", `"crit":["x"]`, `"x":1`), payload)},
		{name: "b64 false header", raw: craft(t, "ES256", es.Signer, hdr("ES256", es.ID, "at+jwt", `"b64":false`, `"crit":["b64"]`), payload)},
		{name: "RS256 header on the ES256 kid", raw: craft(t, "RS256", foreignRS, hdr("RS256", es.ID, "at+jwt"), payload)},
		{name: "ES256 header on the EdDSA kid", raw: craft(t, "ES256", foreignES, hdr("ES256", ed.ID, "at+jwt"), payload)},
		{name: "RS256 on the PS256 key, validly signed", raw: craft(t, "RS256", ps.Signer, hdr("RS256", ps.ID, "at+jwt"), payload)},
		{name: "PS256 on the RS256 key, validly signed", raw: craft(t, "PS256", rs.Signer, hdr("PS256", rs.ID, "at+jwt"), payload)},
		{name: "RSA key below 2048 bits", raw: craft(t, "RS256", small, hdr("RS256", "small", "at+jwt"), payload), src: smallSet},
		{name: "ECDSA r = s = 0", raw: gh + "." + gp + "." + b64.EncodeToString(make([]byte, 64))},
		{name: "ECDSA r = s = n", raw: gh + "." + gp + "." + b64.EncodeToString(nn)},
		{name: "ECDSA DER signature", raw: gh + "." + gp + "." + b64.EncodeToString(der)},
		{name: "JSON serialization", raw: fmt.Sprintf(`{"payload":%q,"protected":%q,"signature":%q}`, gp, gh, gs)},
		{name: "oversize", raw: gh + "." + gp + strings.Repeat("A", token.MaxSize) + "." + gs},
		{name: "two segments", raw: gh + "." + gp},
		{name: "four segments", raw: good + "." + gs},

		// Claims layer (Verifier).
		{name: "expired beyond leeway", raw: good, now: exp.Add(verify.DefaultLeeway)},
		{name: "expired long ago", raw: good, now: exp.Add(24 * time.Hour)},
		{name: "expired with a custom leeway", raw: good, now: exp.Add(2 * time.Second), mod: func(v *verify.Verifier) { v.Leeway = time.Second }},
		{name: "no exp", raw: iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Expiry = 0 })},
		{name: "nbf in the future", raw: iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) {
			c.NotBefore = token.NewNumericDate(t0.Add(verify.DefaultLeeway + time.Second))
		})},
		{name: "iat in the future", raw: iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) {
			c.IssuedAt = token.NewNumericDate(t0.Add(verify.DefaultLeeway + time.Second))
		})},
		{name: "wrong aud", raw: iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Audience = token.Audience{"https://other.example"} })},
		{name: "aud with trailing slash", raw: iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Audience = token.Audience{testAudience + "/"} })},
		{name: "missing aud", raw: iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Audience = nil })},
		{name: "iss with trailing slash", raw: iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Issuer = testIssuer + "/" })},
		{name: "iss without the verifier's trailing slash", raw: good, mod: func(v *verify.Verifier) { v.Issuer = testIssuer + "/" }},
		{name: "iss in another case", raw: iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Issuer = strings.ToUpper(testIssuer) })},
		{name: "missing iss", raw: iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Issuer = "" })},
		{name: "typ JWT", raw: iss.mint(t, "ES256", "JWT", nil)},
		{name: "typ missing", raw: craft(t, "ES256", es.Signer, hdr("ES256", es.ID, ""), payload)},
		{name: "typ application/jwt", raw: iss.mint(t, "ES256", "application/jwt", nil)},
		{name: "typ of a logout token", raw: iss.mint(t, "ES256", "logout+jwt", nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			src := token.KeySource(iss.set)
			if tt.src != nil {
				src = tt.src
			}
			v := verifier(src, now)
			if tt.mod != nil {
				tt.mod(v)
			}
			c, err := v.Verify(context.Background(), tt.raw)
			if !errors.Is(err, verify.ErrInvalid) || !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Verify = %+v, %v; want an error wrapping ErrInvalid", c, err)
			}
			if c != nil {
				t.Errorf("Verify returned claims %+v with its error", c)
			}
		})
	}
}

func TestVerifierBoundaries(t *testing.T) {
	iss := getIssuer(t)
	raw := iss.mint(t, "ES256", token.TypeAccess, nil)
	exp := t0.Add(5 * time.Minute)
	tests := []struct {
		name   string
		leeway time.Duration
		now    time.Time
		ok     bool
	}{
		{"default leeway, 1s inside", 0, exp.Add(verify.DefaultLeeway - time.Second), true},
		{"default leeway, at the edge", 0, exp.Add(verify.DefaultLeeway), false},
		{"custom leeway, inside", 2 * time.Minute, exp.Add(time.Minute), true},
		{"custom leeway, outside", 2 * time.Minute, exp.Add(2 * time.Minute), false},
		{"nbf edge: leeway before nbf", 0, t0.Add(-verify.DefaultLeeway), true},
		{"nbf edge: 1s earlier", 0, t0.Add(-verify.DefaultLeeway - time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verifier(iss.set, tt.now)
			v.Leeway = tt.leeway
			_, err := v.Verify(context.Background(), raw)
			if tt.ok && err != nil {
				t.Errorf("Verify: %v", err)
			}
			if !tt.ok && !errors.Is(err, verify.ErrInvalid) {
				t.Errorf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestVerifierConfiguration(t *testing.T) {
	iss := getIssuer(t)
	ctx := context.Background()
	raw := iss.mint(t, "ES256", token.TypeAccess, func(c *token.Claims) { c.Audience = nil })

	for _, v := range []*verify.Verifier{
		{Keys: iss.set, Audience: testAudience},
		{Keys: iss.set, Issuer: testIssuer},
		{Issuer: testIssuer, Audience: testAudience}, // no Keys: an error, not a panic
	} {
		if _, err := v.Verify(ctx, raw); err == nil {
			t.Errorf("Verifier %+v without Issuer or Audience verified a token", v)
		}
	}

	// IgnoreAudience (the issuer's introspection) accepts a token with no
	// audience of its own.
	v := &verify.Verifier{Keys: iss.set, Issuer: testIssuer, IgnoreAudience: true, Now: func() time.Time { return t0 }}
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Errorf("IgnoreAudience: %v", err)
	}

	// Type selects another typ: the at+jwt default no longer passes.
	idTok := iss.mint(t, "ES256", "JWT", nil)
	v = verifier(iss.set, t0)
	v.Type = "JWT"
	if _, err := v.Verify(ctx, idTok); err != nil {
		t.Errorf("Type JWT: %v", err)
	}
	if _, err := v.Verify(ctx, iss.mint(t, "ES256", token.TypeAccess, nil)); !errors.Is(err, verify.ErrInvalid) {
		t.Errorf("Type JWT accepted an at+jwt token: %v", err)
	}
}

// TestVerifierClaims checks what Verify returns on success.
func TestVerifierClaims(t *testing.T) {
	iss := getIssuer(t)
	raw := iss.mint(t, "EdDSA", token.TypeAccess, func(c *token.Claims) { c.Extra = map[string]any{"tenant": "acme"} })
	got, err := verifier(iss.set, t0).Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	want := claims()
	want.Extra = map[string]any{"tenant": "acme"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
}

func hmacToken(hdr string, payload, key []byte) string {
	input := b64.EncodeToString([]byte(hdr)) + "." + b64.EncodeToString(payload)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + b64.EncodeToString(m.Sum(nil))
}

func foreignKey(tb testing.TB, alg string) crypto.Signer {
	tb.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func publicJWK(tb testing.TB, pub any) string {
	tb.Helper()
	b, err := jose.JSONWebKey{Key: pub}.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
