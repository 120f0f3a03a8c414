package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
)

// TestParseAccepts is the control for TestParseRejects: untampered tokens,
// minted by token.Sign or by craft with the same keys and headers the
// attacks reuse, verify.
func TestParseAccepts(t *testing.T) {
	f := getFixture(t)
	payload := mustJSON(t, accessClaims())
	type tc struct {
		name    string
		raw     string
		wantHdr token.Header
	}
	var tests []tc
	for _, alg := range keys.Algorithms {
		k := f.keys[alg]
		tests = append(tests,
			tc{alg + "/Sign", mustSign(t, k, token.TypeAccess, accessClaims()), token.Header{Alg: alg, KID: k.ID, Typ: token.TypeAccess}},
			tc{alg + "/crafted", craft(t, alg, k.Signer, header(alg, k.ID), payload), token.Header{Alg: alg, KID: k.ID, Typ: token.TypeAccess}},
		)
	}
	es := f.keys["ES256"]
	tests = append(tests,
		tc{"no typ", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q}`, es.ID), payload), token.Header{Alg: "ES256", KID: es.ID}},
		tc{"header with whitespace", craft(t, "ES256", es.Signer, fmt.Sprintf(` { "alg" : "ES256" , "kid" : %q , "typ":"at+jwt" } `, es.ID), payload), token.Header{Alg: "ES256", KID: es.ID, Typ: "at+jwt"}},
		tc{"unknown harmless header member", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt","cty":"x"}`, es.ID), payload), token.Header{Alg: "ES256", KID: es.ID, Typ: "at+jwt"}},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c, err := token.Parse(context.Background(), tt.raw, f.src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.wantHdr, *h); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(accessClaims(), c); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseRejects runs the classic JWT attacks against Parse. Each must
// fail with token.ErrInvalid and return neither header nor claims.
func TestParseRejects(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	es, ed, rs, ps := f.keys["ES256"], f.keys["EdDSA"], f.keys["RS256"], f.keys["PS256"]
	claims := accessClaims()
	payload := mustJSON(t, claims)
	good := mustSign(t, es, token.TypeAccess, claims)
	gh, gp, gs := segments(t, good)

	foreignES := newKey(t, "ES256", es.ID)
	foreignEd := newKey(t, "EdDSA", ed.ID)
	foreignRS := newKey(t, "RS256", rs.ID)

	// HS256 keyed with the public key: the classic confusion of a verifier
	// that takes alg from the token and uses "the key" as an HMAC secret.
	esDER, rsDER := pkixDER(t, es.Public), pkixDER(t, rs.Public)
	rsPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsDER})
	esJWK := jwkJSON(t, es)
	rsJWK := jwkJSON(t, rs)

	// ECDSA signatures with r or s out of [1, n-1] (CVE-2022-21449 and
	// its relatives).
	n := elliptic.P256().Params().N
	p := elliptic.P256().Params().P
	sig, _ := b64.DecodeString(gs)
	r, s := sig[:32], sig[32:]
	ecSig := func(r, s []byte) string { return gh + "." + gp + "." + b64.EncodeToString(p1363(r, s)) }
	ones := bytesOf(0xff, 32)
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
	if err != nil {
		t.Fatal(err)
	}
	sPlusN := new(big.Int).Add(new(big.Int).SetBytes(s), n).Bytes()

	// A 1024-bit RSA key registered for RS256, signing properly.
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallSrc := source{"small": {&small.PublicKey, "RS256"}}

	// A different, validly signed token: its signature must not transfer.
	other := accessClaims()
	other.Subject = "mallory"
	otherTok := mustSign(t, es, token.TypeAccess, other)
	_, op, osig := segments(t, otherTok)

	longKID := strings.Repeat("k", 8<<10)

	tests := []struct {
		name string
		raw  string
		src  source // nil: f.src
	}{
		// alg none (RFC 7519 §6): unsigned tokens are never accepted.
		{"alg none empty signature", unsigned(fmt.Sprintf(`{"alg":"none","kid":%q,"typ":"at+jwt"}`, es.ID), payload), nil},
		{"alg none no kid", unsigned(`{"alg":"none","typ":"at+jwt"}`, payload), nil},
		{"alg None", unsigned(fmt.Sprintf(`{"alg":"None","kid":%q}`, es.ID), payload), nil},
		{"alg NONE", unsigned(fmt.Sprintf(`{"alg":"NONE","kid":%q}`, es.ID), payload), nil},
		{"alg none keeping a valid signature", b64.EncodeToString(fmt.Appendf(nil, `{"alg":"none","kid":%q}`, es.ID)) + "." + gp + "." + gs, nil},
		{"alg empty", craftHMAC(t, fmt.Sprintf(`{"alg":"","kid":%q}`, es.ID), payload, sha256.New, esDER), nil},
		{"alg missing", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"kid":%q,"typ":"at+jwt"}`, es.ID), payload), nil},
		{"alg ES256 as JSON number", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":256,"kid":%q}`, es.ID), payload), nil},

		// HMAC keyed with public key material under our kid.
		{"HS256 keyed with ES256 PKIX DER", craftHMAC(t, header("HS256", es.ID), payload, sha256.New, esDER), nil},
		{"HS256 keyed with RS256 PKIX DER", craftHMAC(t, header("HS256", rs.ID), payload, sha256.New, rsDER), nil},
		{"HS256 keyed with RS256 PEM", craftHMAC(t, header("HS256", rs.ID), payload, sha256.New, rsPEM), nil},
		{"HS256 keyed with ES256 JWK JSON", craftHMAC(t, header("HS256", es.ID), payload, sha256.New, esJWK), nil},
		{"HS256 keyed with RS256 JWK JSON", craftHMAC(t, header("HS256", rs.ID), payload, sha256.New, rsJWK), nil},
		{"HS256 keyed with raw Ed25519 key", craftHMAC(t, header("HS256", ed.ID), payload, sha256.New, []byte(ed.Public.(ed25519.PublicKey))), nil},
		{"HS512 keyed with RS256 PKIX DER", craftHMAC(t, header("HS512", rs.ID), payload, sha512.New, rsDER), nil},

		// Tampering after signing.
		{"payload altered after signing", gh + "." + b64.EncodeToString(mustJSON(t, other)) + "." + gs, nil},
		{"header altered after signing", b64.EncodeToString(fmt.Appendf(nil, `{"alg":"ES256","kid":%q,"typ":"JWT"}`, es.ID)) + "." + gp + "." + gs, nil},
		{"signature of another token", gh + "." + gp + "." + osig, nil},
		{"payload of another token", gh + "." + op + "." + gs, nil},
		{"signature truncated", gh + "." + gp + "." + gs[:len(gs)-4], nil},
		{"signature empty", gh + "." + gp + ".", nil},

		// Foreign keys carrying our kid.
		{"foreign ES256 key with our kid", mustSign(t, foreignES, token.TypeAccess, claims), nil},
		{"foreign EdDSA key with our kid", mustSign(t, foreignEd, token.TypeAccess, claims), nil},
		{"foreign RS256 key with our kid", mustSign(t, foreignRS, token.TypeAccess, claims), nil},

		// kid values that name no key, signed with a real key so only the
		// lookup can refuse them.
		{"kid path traversal ../../etc/passwd", craft(t, "ES256", es.Signer, header("ES256", "../../etc/passwd"), payload), nil},
		{"kid path traversal ../keys/x", craft(t, "ES256", es.Signer, header("ES256", "../keys/x"), payload), nil},
		{"kid prefix of ours", craft(t, "ES256", es.Signer, header("ES256", es.ID[:len(es.ID)-1]), payload), nil},
		{"kid ours with trailing NUL", craft(t, "ES256", es.Signer, header("ES256", es.ID+"\x00"), payload), nil},
		{"kid ours upper-cased", craft(t, "ES256", es.Signer, header("ES256", strings.ToUpper(es.ID)), payload), nil},
		{"kid empty", craft(t, "ES256", es.Signer, header("ES256", ""), payload), nil},
		{"kid absent", craft(t, "ES256", es.Signer, `{"alg":"ES256","typ":"at+jwt"}`, payload), nil},
		{"kid very long", craft(t, "ES256", es.Signer, header("ES256", longKID), payload), nil},
		{"kid as JSON array", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":[%q]}`, es.ID), payload), nil},

		// Header members that name a key or change processing: refused
		// even when the token is signed by the real key.
		{"jwk header naming the attacker key", craft(t, "ES256", foreignES.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"jwk":%s}`, es.ID, jwkJSON(t, foreignES)), payload), nil},
		{"jwk header naming our own key", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"jwk":%s}`, es.ID, esJWK), payload), nil},
		{"JWK header upper-cased", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"JWK":%s}`, es.ID, esJWK), payload), nil},
		{"jku header", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"jku":"https://attacker.example/jwks.json"}`, es.ID), payload), nil},
		{"x5u header", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"x5u":"https://attacker.example/cert.pem"}`, es.ID), payload), nil},
		{"x5c header with a certificate for the attacker key", craft(t, "ES256", foreignES.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"x5c":[%q]}`, es.ID, selfSigned(t, foreignES)), payload), nil},
		{"x5c header with a certificate for our key", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"x5c":[%q]}`, es.ID, selfSigned(t, es)), payload), nil},
		{"x5t header", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"x5t":"dGh1bWJwcmludA"}`, es.ID), payload), nil},
		{"x5t#S256 header", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"x5t#S256":"dGh1bWJwcmludA"}`, es.ID), payload), nil},
		{"crit header", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"crit":["exp"],"exp":1}`, es.ID), payload), nil},
		{"crit empty list", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"crit":[]}`, es.ID), payload), nil},
		{"b64 false (RFC 7797 unencoded payload)", unencoded(t, es, `{"sub":"alice"}`), nil},
		{"b64 true", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":%q,"b64":true}`, es.ID), payload), nil},
		{"duplicate alg member", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","alg":"ES256","kid":%q}`, es.ID), payload), nil},
		{"duplicate kid member", craft(t, "ES256", es.Signer, fmt.Sprintf(`{"alg":"ES256","kid":"other","kid":%q}`, es.ID), payload), nil},

		// The header's alg must be the alg registered for the kid.
		{"RS256 header on the ES256 kid", craft(t, "RS256", foreignRS.Signer, header("RS256", es.ID), payload), nil},
		{"ES256 header on the EdDSA kid", craft(t, "ES256", foreignES.Signer, header("ES256", ed.ID), payload), nil},
		{"EdDSA header on the ES256 kid", craft(t, "EdDSA", foreignEd.Signer, header("EdDSA", es.ID), payload), nil},
		// The next two carry signatures that are valid for the header's
		// alg under the kid's own key: only the alg binding refuses them.
		{"RS256 header on the PS256 kid signed by its key", craft(t, "RS256", ps.Signer, header("RS256", ps.ID), payload), nil},
		{"PS256 header on the RS256 kid signed by its key", craft(t, "PS256", rs.Signer, header("PS256", rs.ID), payload), nil},
		{"ES384 header", craft(t, "ES256", es.Signer, header("ES384", es.ID), payload), nil},
		{"RSA key below 2048 bits", craft(t, "RS256", small, header("RS256", "small"), payload), smallSrc},

		// ECDSA: P1363 r‖s only, each in [1, n-1].
		{"ECDSA r = s = 0 (CVE-2022-21449)", ecSig(make([]byte, 32), make([]byte, 32)), nil},
		{"ECDSA r = s = n", ecSig(n.Bytes(), n.Bytes()), nil},
		{"ECDSA r = n", ecSig(n.Bytes(), s), nil},
		{"ECDSA s = n", ecSig(r, n.Bytes()), nil},
		{"ECDSA r = 0", ecSig(make([]byte, 32), s), nil},
		{"ECDSA s = 0", ecSig(r, make([]byte, 32)), nil},
		{"ECDSA r = s = 1", ecSig([]byte{1}, []byte{1}), nil},
		{"ECDSA r = s = p", ecSig(p.Bytes(), p.Bytes()), nil},
		{"ECDSA r = s = 2^256-1", ecSig(ones, ones), nil},
		{"ECDSA s + n (65 bytes)", ecSig(r, sPlusN), nil},
		{"ECDSA r and s swapped", ecSig(s, r), nil},
		{"ECDSA DER signature", gh + "." + gp + "." + b64.EncodeToString(der), nil},
		{"ECDSA signature 63 bytes", gh + "." + gp + "." + b64.EncodeToString(sig[:63]), nil},
		{"ECDSA signature 65 bytes", gh + "." + gp + "." + b64.EncodeToString(append(append([]byte{}, sig...), 0)), nil},

		// Serialization and size.
		{"JSON serialization (flattened)", jsonSerialized(t, es, payload, false), nil},
		{"JSON serialization (general)", jsonSerialized(t, es, payload, true), nil},
		{"two segments", gh + "." + gp, nil},
		{"four segments", good + "." + gs, nil},
		{"five segments (JWE shape)", gh + "." + gp + "." + gs + ".x.y", nil},
		{"trailing dot", good + ".", nil},
		{"empty", "", nil},
		{"dots only", "..", nil},
		{"padded header segment", gh + "=." + gp + "." + gs, nil},
		{"header not base64url", "!!!." + gp + "." + gs, nil},
		{"header not JSON", craft(t, "ES256", es.Signer, "not json", payload), nil},
		{"header JSON array", craft(t, "ES256", es.Signer, "[]", payload), nil},
		{"header JSON null", craft(t, "ES256", es.Signer, "null", payload), nil},
		{"payload not JSON, signed", craft(t, "ES256", es.Signer, header("ES256", es.ID), []byte("hello")), nil},
		{"payload JSON array, signed", craft(t, "ES256", es.Signer, header("ES256", es.ID), []byte(`["iss"]`)), nil},
		{"payload with non-numeric exp, signed", craft(t, "ES256", es.Signer, header("ES256", es.ID), []byte(`{"exp":"tomorrow"}`)), nil},
		{"payload with negative exp, signed", craft(t, "ES256", es.Signer, header("ES256", es.ID), []byte(`{"exp":-1}`)), nil},
		{"payload with aud of numbers, signed", craft(t, "ES256", es.Signer, header("ES256", es.ID), []byte(`{"aud":[1,2]}`)), nil},
		{"empty payload, signed", craft(t, "ES256", es.Signer, header("ES256", es.ID), nil), nil},
		{"longer than MaxSize", sizedToken(t, es, token.MaxSize+1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := f.src
			if tt.src != nil {
				src = tt.src
			}
			h, c, err := token.Parse(ctx, tt.raw, src)
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Parse = %+v, %+v, %v; want an error wrapping ErrInvalid", h, c, err)
			}
			if h != nil || c != nil {
				t.Errorf("Parse returned header %+v and claims %+v with its error", h, c)
			}
		})
	}
}

// TestParseSizeLimit checks the boundary: MaxSize bytes are accepted.
func TestParseSizeLimit(t *testing.T) {
	f := getFixture(t)
	es := f.keys["ES256"]
	atMax := sizedToken(t, es, token.MaxSize)
	if len(atMax) != token.MaxSize {
		t.Fatalf("sizedToken made %d bytes, want %d", len(atMax), token.MaxSize)
	}
	if _, _, err := token.Parse(context.Background(), atMax, f.src); err != nil {
		t.Errorf("Parse(%d bytes) = %v, want success", len(atMax), err)
	}
}

// TestParseHighS: ECDSA signatures are malleable. For a valid (r, s),
// (r, n-s) is valid too, so a third party can derive a second, different
// token string from any ES256 token without the key. It carries the same
// header and claims. Parse accepts it, like every conforming JWS library
// (RFC 7518 §3.4 does not require low-S). This is safe because Sigil keys
// everything that must be unique on the jti claim — revocation, replay
// caches, status lists, introspection results — and never on the token
// bytes or a hash of them. The test pins both halves of that argument:
// the variant verifies, and it yields the original's jti and claims.
func TestParseHighS(t *testing.T) {
	f := getFixture(t)
	es := f.keys["ES256"]
	good := mustSign(t, es, token.TypeAccess, accessClaims())
	gh, gp, gs := segments(t, good)
	sig, err := b64.DecodeString(gs)
	if err != nil {
		t.Fatal(err)
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	flipped := new(big.Int).Sub(n, s)
	variant := gh + "." + gp + "." + b64.EncodeToString(p1363(sig[:32], flipped.Bytes()))
	if variant == good {
		t.Fatal("variant equals the original")
	}

	_, orig, err := token.Parse(context.Background(), good, f.src)
	if err != nil {
		t.Fatalf("Parse(original): %v", err)
	}
	_, c, err := token.Parse(context.Background(), variant, f.src)
	if err != nil {
		t.Fatalf("Parse(high-S variant) = %v; ECDSA signatures are malleable and the variant is expected to verify", err)
	}
	if c.JTI != orig.JTI || c.JTI == "" {
		t.Errorf("variant jti = %q, original %q: replay and revocation keyed on jti would not catch it", c.JTI, orig.JTI)
	}
	if diff := cmp.Diff(orig, c); diff != "" {
		t.Errorf("variant claims differ (-orig +variant):\n%s", diff)
	}
	if err := token.VerifySignature("ES256", es.Public, []byte(gh+"."+gp), p1363(sig[:32], flipped.Bytes())); err != nil {
		t.Errorf("VerifySignature(high-S) = %v", err)
	}
}

// TestParseDuplicateClaims documents how a payload with repeated members
// decodes. Such a payload can only come from a key holder: Sign marshals a
// Go struct and a map, which cannot repeat a name. The rule is
// encoding/json's: the last occurrence wins, every time. Member names are
// matched exactly (RFC 7519 §4), so a case variant ("ISS") or a Unicode
// fold of a registered name ("ſub", with U+017F) can never set a
// registered claim.
func TestParseDuplicateClaims(t *testing.T) {
	f := getFixture(t)
	es := f.keys["ES256"]
	tests := []struct {
		name    string
		payload string
		want    *token.Claims
	}{
		{"iss twice", `{"iss":"evil","iss":"good"}`, &token.Claims{Issuer: "good"}},
		{"iss twice reversed", `{"iss":"good","iss":"evil"}`, &token.Claims{Issuer: "evil"}},
		{"aud string then array", `{"aud":"a","aud":["b","c"]}`, &token.Claims{Audience: token.Audience{"b", "c"}}},
		{"exp twice", `{"exp":100,"exp":200}`, &token.Claims{Expiry: 200}},
		{"extra claim twice", `{"role":"user","role":"admin"}`, &token.Claims{Extra: map[string]any{"role": "admin"}}},
		{"ISS after iss", `{"iss":"good","ISS":"evil"}`, &token.Claims{Issuer: "good"}},
		{"ISS before iss", `{"ISS":"evil","iss":"good"}`, &token.Claims{Issuer: "good"}},
		{"only ISS", `{"ISS":"evil"}`, &token.Claims{}},
		{"Scope after scope", `{"scope":"read","Scope":"admin"}`, &token.Claims{Scope: "read"}},
		{"EXP after exp", `{"exp":100,"EXP":99999999999}`, &token.Claims{Expiry: 100}},
		{"long s fold of sub", `{"sub":"alice","ſub":"root"}`, &token.Claims{Subject: "alice"}},
		{"long s fold of scope", `{"\u017fcope":"admin"}`, &token.Claims{}},
		{"case variant of a non-field registered claim", `{"CNF":{"jkt":"x"}}`, &token.Claims{}},
		{"extra claims keep their case", `{"Role":"a","role":"b"}`, &token.Claims{Extra: map[string]any{"Role": "a", "role": "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := craft(t, "ES256", es.Signer, header("ES256", es.ID), []byte(tt.payload))
			for range 20 { // deterministic: no map-order dependence
				_, c, err := token.Parse(context.Background(), raw, f.src)
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if diff := cmp.Diff(tt.want, c); diff != "" {
					t.Fatalf("claims (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestParseHeaderNamesAreCaseSensitive: JOSE member names are
// case-sensitive (RFC 7515 §4), so "TYP" is not typ. encoding/json would
// read it as typ and go-jose would not; Parse refuses a header naming a
// known member in another case rather than pick one reading.
func TestParseHeaderNamesAreCaseSensitive(t *testing.T) {
	f := getFixture(t)
	es := f.keys["ES256"]
	payload := mustJSON(t, accessClaims())
	tests := []struct {
		name    string
		hdr     string
		wantErr bool
		wantTyp string
	}{
		{"typ", fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, es.ID), false, "at+jwt"},
		{"typ null reads as absent", fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":null}`, es.ID), false, ""},
		{"TYP only", fmt.Sprintf(`{"alg":"ES256","kid":%q,"TYP":"at+jwt"}`, es.ID), true, ""},
		{"TYP after typ", fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"JWT","TYP":"at+jwt"}`, es.ID), true, ""},
		{"KID instead of kid", fmt.Sprintf(`{"alg":"ES256","KID":%q,"typ":"at+jwt"}`, es.ID), true, ""},
		{"Alg instead of alg", fmt.Sprintf(`{"Alg":"ES256","kid":%q,"typ":"at+jwt"}`, es.ID), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, err := token.Parse(context.Background(), craft(t, "ES256", es.Signer, tt.hdr, payload), f.src)
			if tt.wantErr {
				if !errors.Is(err, token.ErrInvalid) {
					t.Fatalf("Parse = %+v, %v; want ErrInvalid", h, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if h.Typ != tt.wantTyp {
				t.Errorf("Typ = %q, want %q", h.Typ, tt.wantTyp)
			}
		})
	}
}

// TestSignNeverEmitsRegisteredExtras: extra claims (a client's configured
// entitlements) can never set or shadow a registered claim, not even by a
// case or Unicode-fold variant of its name, which a verifier decoding
// with encoding/json's case-insensitive matching would read as the
// registered claim.
func TestSignNeverEmitsRegisteredExtras(t *testing.T) {
	f := getFixture(t)
	es := f.keys["ES256"]
	c := accessClaims()
	c.Extra = map[string]any{
		"iss": "evil", "ISS": "evil", "Sub": "root", "ſcope": "admin", "AUD": "other",
		"Exp": 99999999999, "cnf": map[string]any{"jkt": "x"}, "role": "reader",
	}
	raw := mustSign(t, es, token.TypeAccess, c)
	_, p, _ := segments(t, raw)
	body, err := b64.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"evil", "root", "admin", "other", "99999999999", "jkt"} {
		if strings.Contains(string(body), name) {
			t.Errorf("payload %s carries %q from Extra", body, name)
		}
	}
	_, got, err := token.Parse(context.Background(), raw, f.src)
	if err != nil {
		t.Fatal(err)
	}
	want := accessClaims()
	want.Extra = map[string]any{"role": "reader"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
}

// TestRFC7515A3 verifies the ES256 example of RFC 7515 Appendix A.3 (a
// header with no kid, so a single-key source must supply the key).
func TestRFC7515A3(t *testing.T) {
	pub := rfc7515A3Key(t)
	if err := keys.CheckPublic("ES256", pub); err != nil {
		t.Fatal(err)
	}
	hdr, payload, sig := segments(t, rfc7515A3)
	s, err := b64.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := token.VerifySignature("ES256", pub, []byte(hdr+"."+payload), s); err != nil {
		t.Errorf("VerifySignature(RFC 7515 A.3) = %v", err)
	}
	h, c, err := token.Parse(context.Background(), rfc7515A3, source{"": {pub, "ES256"}})
	if err != nil {
		t.Fatalf("Parse(RFC 7515 A.3) = %v", err)
	}
	want := &token.Claims{Issuer: "joe", Expiry: 1300819380, Extra: map[string]any{"http://example.com/is_root": true}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if h.Alg != "ES256" || h.KID != "" {
		t.Errorf("header = %+v", h)
	}
}

// rfc7515A3 is the compact JWS of RFC 7515 Appendix A.3.1.
const rfc7515A3 = "eyJhbGciOiJFUzI1NiJ9" +
	"." +
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt" +
	"cGxlLmNvbS9pc19yb290Ijp0cnVlfQ" +
	"." +
	"DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSA" +
	"pmWQxfKTUJqPP3-Kg6NU1Q"

// rfc7515A3JWK is the public half of the RFC 7515 Appendix A.3 key.
const rfc7515A3JWK = `{"kty":"EC","crv":"P-256",` +
	`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",` +
	`"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`

func rfc7515A3Key(tb testing.TB) *ecdsa.PublicKey {
	tb.Helper()
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON([]byte(rfc7515A3JWK)); err != nil {
		tb.Fatal(err)
	}
	return k.Key.(*ecdsa.PublicKey)
}

func unsigned(hdr string, payload []byte) string {
	return b64.EncodeToString([]byte(hdr)) + "." + b64.EncodeToString(payload) + "."
}

func craftHMAC(tb testing.TB, hdr string, payload []byte, h func() hash.Hash, key []byte) string {
	tb.Helper()
	input := b64.EncodeToString([]byte(hdr)) + "." + b64.EncodeToString(payload)
	m := hmac.New(h, key)
	m.Write([]byte(input))
	return input + "." + b64.EncodeToString(m.Sum(nil))
}

// unencoded builds an RFC 7797 JWS with an unencoded payload (which must
// contain no dot to fit the compact form), correctly signed.
func unencoded(tb testing.TB, k *keys.Key, payload string) string {
	tb.Helper()
	hdr := b64.EncodeToString(fmt.Appendf(nil, `{"alg":"ES256","kid":%q,"b64":false,"crit":["b64"]}`, k.ID))
	input := hdr + "." + payload
	return input + "." + b64.EncodeToString(rawSign(tb, "ES256", k.Signer, []byte(input)))
}

func jsonSerialized(tb testing.TB, k *keys.Key, payload []byte, general bool) string {
	tb.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.Signer, KeyID: k.ID}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	if !general {
		return jws.FullSerialize()
	}
	h, p, sig := segments(tb, must(jws.CompactSerialize()))
	return fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q}]}`, p, h, sig)
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

func pkixDER(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// jwkJSON is the key's entry as the JWKS endpoint publishes it.
func jwkJSON(tb testing.TB, k *keys.Key) []byte {
	tb.Helper()
	b, err := jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: k.Alg, Use: "sig"}.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// selfSigned returns a base64 (standard, as x5c wants) self-signed
// certificate for k.
func selfSigned(tb testing.TB, k *keys.Key) string {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "attacker"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public, k.Signer)
	if err != nil {
		tb.Fatal(err)
	}
	return stdB64(der)
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// sizedToken returns an ES256 token signed by k of exactly want bytes,
// padding the payload with an extra claim and the header with blanks.
func sizedToken(tb testing.TB, k *keys.Key, want int) string {
	tb.Helper()
	base := accessClaims()
	for blanks := range 4 {
		hdr := header("ES256", k.ID) + strings.Repeat(" ", blanks)
		for pad := max(0, want*3/4-400); pad < want; pad++ {
			c := *base
			c.Extra = map[string]any{"pad": strings.Repeat("p", pad)}
			p := mustJSON(tb, &c)
			n := len(b64.EncodeToString([]byte(hdr))) + 1 + len(b64.EncodeToString(p)) + 1 + 86
			if n == want {
				return craft(tb, "ES256", k.Signer, hdr, p)
			}
			if n > want {
				break
			}
		}
	}
	tb.Fatalf("sizedToken: cannot make a token of %d bytes", want)
	return ""
}

// TestParseSignatureEncodingVariants documents a second, alg-independent
// source of token-string malleability next to ECDSA's (r, n-s): Go's
// base64 decoder ignores CR and LF and the unused low bits of a final
// character, so a signature segment has several spellings. Parse (through
// go-jose's decoding) verifies the decoded signature, so such spellings
// may verify. As with high-S, that is harmless only because nothing in
// Sigil is keyed on token bytes; the test pins that every spelling that
// verifies carries exactly the original claims and jti.
func TestParseSignatureEncodingVariants(t *testing.T) {
	f := getFixture(t)
	for _, alg := range keys.Algorithms {
		t.Run(alg, func(t *testing.T) {
			good := mustSign(t, f.keys[alg], token.TypeAccess, accessClaims())
			_, want, err := token.Parse(context.Background(), good, f.src)
			if err != nil {
				t.Fatal(err)
			}
			gh, gp, gs := segments(t, good)
			last := gs[len(gs)-1]
			variants := map[string]string{
				"LF inside the signature":   gh + "." + gp + "." + gs[:10] + "\n" + gs[10:],
				"CRLF ending the signature": good + "\r\n",
			}
			for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
				if byte(c) != last {
					variants["last character "+string(c)] = gh + "." + gp + "." + gs[:len(gs)-1] + string(c)
				}
			}
			accepted := 0
			for name, v := range variants {
				_, c, err := token.Parse(context.Background(), v, f.src)
				if err != nil {
					if !errors.Is(err, token.ErrInvalid) {
						t.Errorf("%s: error %v does not wrap ErrInvalid", name, err)
					}
					continue
				}
				accepted++
				if diff := cmp.Diff(want, c); diff != "" || c.JTI != want.JTI {
					t.Errorf("%s verifies with other claims (-want +got):\n%s", name, diff)
				}
			}
			t.Logf("%s: %d of %d re-spellings of the signature segment verify", alg, accepted, len(variants))
		})
	}
}
