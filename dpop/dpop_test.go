package dpop_test

import (
	"context"
	"crypto"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/sigil-sts/sigil/dpop"
)

// The RFC 9449 examples (NOTES §4.7), all made with the key whose
// thumbprint is rfcJKT.
const (
	// rfcFig2 is the Fig 2/4 proof for POST https://server.example.com/token.
	rfcFig2    = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	rfcFig2IAT = 1562262616
	rfcFig2URI = "https://server.example.com/token"

	// rfcFig13 is the Fig 13 proof, with ath, for GET
	// https://resource.example.org/protectedresource with rfcToken.
	rfcFig13    = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
	rfcFig13IAT = 1562262618
	rfcFig13URI = "https://resource.example.org/protectedresource"
	rfcToken    = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	rfcATH      = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"

	rfcJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
)

var ctx = context.Background()

func TestCheckValid(t *testing.T) {
	c := newChecker(t, now)
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			k := key(t, alg)
			s := newSpec(k)
			p, err := c.Check(ctx, s.request(t))
			wantOK(t, p, err)
			if want := k.jkt(t); p.JKT != want {
				t.Errorf("JKT = %q, want jwx's thumbprint %q", p.JKT, want)
			}
			if p.Alg != alg {
				t.Errorf("Alg = %q, want %q", p.Alg, alg)
			}
			if p.JTI != s.claims["jti"] {
				t.Errorf("JTI = %q, want %q", p.JTI, s.claims["jti"])
			}
			if !p.IssuedAt.Equal(now) {
				t.Errorf("IssuedAt = %v, want %v", p.IssuedAt, now)
			}
			if pk, ok := p.Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(k.signer.Public()) {
				t.Errorf("Key = %T, not the proof's public key", p.Key)
			}
		})
		t.Run(alg+"/resource", func(t *testing.T) {
			s := newSpec(key(t, alg))
			s.method, s.uri, s.accessToken = "GET", resourceURI, "an-access-token"
			s.claims["htm"], s.claims["htu"], s.claims["ath"] = "GET", resourceURI, ath("an-access-token")
			p, err := c.Check(ctx, s.request(t))
			wantOK(t, p, err)
		})
	}
}

func TestRFC9449Fig2(t *testing.T) {
	at := time.Unix(rfcFig2IAT, 0)
	post := dpop.Request{Header: []string{rfcFig2}, Method: "POST", URI: rfcFig2URI}

	t.Run("valid", func(t *testing.T) {
		p, err := newChecker(t, at).Check(ctx, post)
		wantOK(t, p, err)
		if p.JKT != rfcJKT {
			t.Errorf("JKT = %q, want %q", p.JKT, rfcJKT)
		}
		if p.Alg != "ES256" || p.JTI != "-BwC3ESc6acc2lTc" || !p.IssuedAt.Equal(at) {
			t.Errorf("Proof = %+v, want ES256, jti -BwC3ESc6acc2lTc, iat %v", p, at)
		}
	})
	for _, tc := range []struct {
		name   string
		at     time.Time
		method string
		uri    string
		desc   string
	}{
		{"GET", at, "GET", rfcFig2URI, "htm does not match"},
		{"token2", at, "POST", "https://server.example.com/token2", "htu does not match"},
		{"clock +1h", at.Add(time.Hour), "POST", rfcFig2URI, "iat is outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChecker(t, tc.at)
			p, err := c.Check(ctx, dpop.Request{Header: []string{rfcFig2}, Method: tc.method, URI: tc.uri})
			wantError(t, p, err, dpop.CodeInvalidProof, tc.desc)
			if tc.at.Equal(at) {
				// The failure did not use up the jti.
				p, err = c.Check(ctx, post)
				wantOK(t, p, err)
			}
		})
	}
	t.Run("replay", func(t *testing.T) {
		c := newChecker(t, at)
		p, err := c.Check(ctx, post)
		wantOK(t, p, err)
		p, err = c.Check(ctx, post)
		wantError(t, p, err, dpop.CodeInvalidProof, "used before")
	})
}

func TestRFC9449Fig13(t *testing.T) {
	if ath(rfcToken) != rfcATH {
		t.Fatalf("ath(%q) = %q, want %q", rfcToken, ath(rfcToken), rfcATH)
	}
	at := time.Unix(rfcFig13IAT, 0)
	req := func(token string) dpop.Request {
		return dpop.Request{Header: []string{rfcFig13}, Method: "GET", URI: rfcFig13URI, AccessToken: token}
	}
	c := newChecker(t, at)
	p, err := c.Check(ctx, req(rfcToken+"x"))
	wantError(t, p, err, dpop.CodeInvalidProof, "ath does not match")
	p, err = c.Check(ctx, req(rfcToken))
	wantOK(t, p, err)
	if p.JKT != rfcJKT {
		t.Errorf("JKT = %q, want %q", p.JKT, rfcJKT)
	}
}

// rejection is a proof that breaks exactly one rule of RFC 9449 §4.3.
type rejection struct {
	name string
	key  string                  // the proof key; default ES256
	base func(testing.TB, *spec) // shapes both the valid and the broken proof
	bad  func(testing.TB, *spec) // the one violation
	desc string                  // what the error description says; "" for any
}

// editSegment returns an edit that replaces segment i (0 header, 1
// payload, 2 signature) of a compact proof with f of it.
func editSegment(i int, f func(string) string) func(string) string {
	return func(p string) string {
		parts := strings.Split(p, ".")
		parts[i] = f(parts[i])
		return strings.Join(parts, ".")
	}
}

func setHeader(name string, v any) func(testing.TB, *spec) {
	return func(_ testing.TB, s *spec) { s.header[name] = v }
}

func delHeader(name string) func(testing.TB, *spec) {
	return func(_ testing.TB, s *spec) { delete(s.header, name) }
}

func setClaim(name string, v any) func(testing.TB, *spec) {
	return func(_ testing.TB, s *spec) { s.claims[name] = v }
}

func delClaim(name string) func(testing.TB, *spec) {
	return func(_ testing.TB, s *spec) { delete(s.claims, name) }
}

func rawProof(_ testing.TB, s *spec) { s.raw = true }

// atResource makes the request one to a resource with an access token.
func atResource(_ testing.TB, s *spec) {
	s.method, s.uri, s.accessToken = "GET", resourceURI, "token-1"
	s.claims["htm"], s.claims["htu"], s.claims["ath"] = "GET", resourceURI, ath("token-1")
}

func withPrivateJWK(only ...string) func(testing.TB, *spec) {
	return func(t testing.TB, s *spec) {
		priv := s.key.privateJWK(t)
		jwk := map[string]any{}
		for name, v := range s.key.jwk {
			jwk[name] = v
		}
		for _, name := range only {
			jwk[name] = priv[name]
		}
		if len(only) == 0 {
			jwk = priv
		}
		s.header["jwk"] = jwk
	}
}

// headerWith returns the proof's header JSON with extra members spliced
// in as written, so that names may repeat or differ only in case.
func headerWith(t testing.TB, s *spec, drop []string, extra string) string {
	h := map[string]any{}
	for name, v := range s.header {
		h[name] = v
	}
	for _, name := range drop {
		delete(h, name)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if extra == "" {
		return string(b)
	}
	return string(b[:len(b)-1]) + "," + extra + "}"
}

func rejections() []rejection {
	return []rejection{
		// §4.3 1: exactly one DPoP header.
		{name: "no header", bad: func(_ testing.TB, s *spec) { s.headers = func(string) []string { return nil } }, desc: "no DPoP proof"},
		{name: "two headers", bad: func(_ testing.TB, s *spec) { s.headers = func(p string) []string { return []string{p, p} } }, desc: "more than one DPoP header"},
		{name: "two different headers", bad: func(t testing.TB, s *spec) {
			other := newSpec(s.key).proof(t)
			s.headers = func(p string) []string { return []string{p, other} }
		}, desc: "more than one DPoP header"},

		// §4.3 2: a single well-formed JWT.
		{name: "empty header value", bad: func(_ testing.TB, s *spec) { s.headers = func(string) []string { return []string{""} } }, desc: "not a single compact JWT"},
		{name: "garbage", bad: func(_ testing.TB, s *spec) { s.edit = func(string) string { return "garbage" } }, desc: "not a single compact JWT"},
		{name: "no signature segment", bad: func(_ testing.TB, s *spec) {
			s.edit = func(p string) string { return p[:strings.LastIndexByte(p, '.')] }
		}, desc: "not a single compact JWT"},
		{name: "no dots", bad: func(_ testing.TB, s *spec) { s.edit = func(p string) string { return strings.ReplaceAll(p, ".", "") } }, desc: "not a single compact JWT"},
		{name: "JWE-like five parts", bad: func(_ testing.TB, s *spec) {
			s.edit = func(p string) string { return p + ".ZW5jcnlwdGVk.dGFn" }
		}, desc: "not a single compact JWT"},
		{name: "JWE compact", bad: func(_ testing.TB, s *spec) {
			s.edit = func(string) string {
				return "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ"
			}
		}, desc: "not a single compact JWT"},
		{name: "comma-joined pair", bad: func(t testing.TB, s *spec) {
			other := newSpec(s.key).proof(t)
			s.edit = func(p string) string { return p + "," + other }
		}, desc: "not a single compact JWT"},
		{name: "comma-space-joined pair", bad: func(t testing.TB, s *spec) {
			other := newSpec(s.key).proof(t)
			s.edit = func(p string) string { return p + ", " + other }
		}, desc: "not a single compact JWT"},
		{name: "auth scheme prefix", bad: func(_ testing.TB, s *spec) { s.edit = func(p string) string { return "DPoP " + p } }, desc: "not a single compact JWT"},
		{name: "header not base64url", bad: func(_ testing.TB, s *spec) {
			s.edit = editSegment(0, func(h string) string { return strings.NewReplacer("-", "+", "_", "/").Replace(h) + "=" })
		}, desc: "not base64url"},
		{name: "header not an object", base: rawProof, bad: func(_ testing.TB, s *spec) {
			s.signAlg, s.headerJSON = "ES256", `["typ","dpop+jwt","alg","ES256"]`
		}, desc: "header is not a JSON object"},
		{name: "claims not an object", base: rawProof, bad: func(_ testing.TB, s *spec) {
			s.payload = `["jti","htm","htu","iat"]`
		}, desc: "claims are not a JSON object"},
		{name: "claims null", base: rawProof, bad: func(_ testing.TB, s *spec) { s.payload = `null` }, desc: "claims are not a JSON object"},

		// §4.3 3: the required claims.
		{name: "jti missing", bad: delClaim("jti"), desc: "jti is missing"},
		{name: "jti empty", bad: setClaim("jti", ""), desc: "jti is missing"},
		{name: "jti a number", bad: setClaim("jti", 12345), desc: `"jti" is not a string`},
		{name: "htm missing", bad: delClaim("htm"), desc: "htm is missing"},
		{name: "htu missing", bad: delClaim("htu"), desc: "htu is missing"},
		{name: "iat missing", bad: delClaim("iat"), desc: "iat is missing"},
		{name: "iat a string", bad: setClaim("iat", strconv.FormatInt(now.Unix(), 10)), desc: "iat is not a number"},
		{name: "iat null", bad: setClaim("iat", nil), desc: "iat is not a number"},
		{name: "iat a boolean", bad: setClaim("iat", true), desc: "iat is not a number"},

		// §4.3 4: typ.
		{name: "typ missing", bad: delHeader("typ"), desc: "typ is not dpop+jwt"},
		{name: "typ jwt", bad: setHeader("typ", "jwt"), desc: "typ is not dpop+jwt"},
		{name: "typ at+jwt", bad: setHeader("typ", "at+jwt"), desc: "typ is not dpop+jwt"},
		{name: "typ JWT", bad: setHeader("typ", "JWT"), desc: "typ is not dpop+jwt"},
		{name: "typ dpop", bad: setHeader("typ", "dpop"), desc: "typ is not dpop+jwt"},

		// §4.3 5: an asymmetric alg Sigil supports.
		{name: "alg none", base: rawProof, bad: setHeader("alg", "none"), desc: `alg "none"`},
		{name: "alg HS256", base: rawProof, bad: func(_ testing.TB, s *spec) {
			s.header["alg"], s.signer = "HS256", []byte("0123456789abcdef0123456789abcdef")
		}, desc: `alg "HS256"`},
		{name: "alg HS256 with an oct jwk", base: rawProof, bad: func(_ testing.TB, s *spec) {
			secret := []byte("0123456789abcdef0123456789abcdef")
			s.header["alg"], s.signer = "HS256", secret
			s.header["jwk"] = map[string]any{"kty": "oct", "k": b64(secret)}
		}, desc: `alg "HS256"`},
		{name: "alg missing", base: rawProof, bad: func(_ testing.TB, s *spec) {
			delete(s.header, "alg")
			s.signAlg = "ES256"
		}, desc: `alg ""`},
		{name: "alg es256", base: rawProof, bad: func(_ testing.TB, s *spec) {
			s.header["alg"], s.signAlg = "es256", "ES256"
		}, desc: `alg "es256"`},
		{name: "alg ES384", base: rawProof, bad: func(t testing.TB, s *spec) {
			s.header["alg"], s.header["jwk"], s.signer = "ES384", key(t, "P384").jwk, key(t, "P384").signer
		}, desc: `alg "ES384"`},

		// §4.3 5 and 6: the jwk must fit alg.
		{name: "ES256 with an RSA jwk", bad: func(t testing.TB, s *spec) { s.header["jwk"] = key(t, "RS256").jwk }, desc: "does not fit alg ES256"},
		{name: "ES256 with an Ed25519 jwk", bad: func(t testing.TB, s *spec) { s.header["jwk"] = key(t, "EdDSA").jwk }, desc: "does not fit alg ES256"},
		{name: "EdDSA with an EC jwk", key: "EdDSA", bad: func(t testing.TB, s *spec) { s.header["jwk"] = key(t, "ES256").jwk }, desc: "does not fit alg EdDSA"},
		{name: "RS256 with an EC jwk", key: "RS256", bad: func(t testing.TB, s *spec) { s.header["jwk"] = key(t, "ES256").jwk }, desc: "does not fit alg RS256"},
		{name: "ES256 with a P-384 key", base: rawProof, bad: func(t testing.TB, s *spec) {
			s.header["jwk"], s.signer = key(t, "P384").jwk, key(t, "P384").signer
		}, desc: "does not fit alg ES256"},
		{name: "RS256 with a 1024-bit key", key: "RS256", base: rawProof, bad: func(t testing.TB, s *spec) {
			s.header["jwk"], s.signer = key(t, "RSA1024").jwk, key(t, "RSA1024").signer
		}, desc: "does not fit alg RS256"},

		// §4.3 6: the signature, with the jwk's key, over the proof as sent.
		{name: "signed by another key", bad: func(t testing.TB, s *spec) { s.header["jwk"] = key(t, "ES256-2").jwk }, desc: "signature does not verify"},
		{name: "signed by another RSA key", key: "RS256", bad: func(t testing.TB, s *spec) { s.header["jwk"] = key(t, "PS256").jwk }, desc: "signature does not verify"},
		{name: "PS256 header over an RS256 signature", key: "PS256", base: rawProof, bad: func(_ testing.TB, s *spec) { s.signAlg = "RS256" }, desc: "signature does not verify"},
		{name: "RS256 header over a PS256 signature", key: "RS256", base: rawProof, bad: func(_ testing.TB, s *spec) { s.signAlg = "PS256" }, desc: "signature does not verify"},
		{name: "tampered payload", bad: func(_ testing.TB, s *spec) {
			s.edit = editSegment(1, func(string) string {
				cl := map[string]any{}
				for name, v := range s.claims {
					cl[name] = v
				}
				cl["jti"] = newJTI()
				b, _ := json.Marshal(cl)
				return b64(b)
			})
		}, desc: "signature does not verify"},
		{name: "tampered header", bad: func(t testing.TB, s *spec) {
			s.edit = editSegment(0, func(string) string { return b64([]byte(headerWith(t, s, nil, `"kid":"x"`))) })
		}, desc: "signature does not verify"},
		{name: "truncated signature", bad: func(_ testing.TB, s *spec) {
			s.edit = editSegment(2, func(sig string) string { return sig[:len(sig)-4] })
		}, desc: "signature does not verify"},
		{name: "empty signature", bad: func(_ testing.TB, s *spec) {
			s.edit = editSegment(2, func(string) string { return "" })
		}, desc: "signature does not verify"},
		{name: "zero ES256 signature", bad: func(_ testing.TB, s *spec) {
			s.edit = editSegment(2, func(string) string { return b64(make([]byte, 64)) })
		}, desc: "signature does not verify"},

		// §4.3 7: no private key in jwk.
		{name: "EC jwk with d", base: rawProof, bad: withPrivateJWK(), desc: "holds a private key"},
		{name: "EC jwk with D", base: rawProof, bad: func(t testing.TB, s *spec) {
			withPrivateJWK()(t, s)
			jwk := s.header["jwk"].(map[string]any)
			jwk["D"] = jwk["d"]
			delete(jwk, "d")
		}, desc: "holds a private key"},
		{name: "Ed25519 jwk with d", key: "EdDSA", base: rawProof, bad: withPrivateJWK(), desc: "holds a private key"},
		{name: "RSA private jwk", key: "RS256", base: rawProof, bad: withPrivateJWK(), desc: "holds a private key"},
		{name: "RSA jwk with d", key: "RS256", base: rawProof, bad: withPrivateJWK("d"), desc: "holds a private key"},
		{name: "RSA jwk with p and q", key: "RS256", base: rawProof, bad: withPrivateJWK("p", "q"), desc: "holds a private key"},
		{name: "RSA jwk with dp, dq and qi", key: "PS256", base: rawProof, bad: withPrivateJWK("dp", "dq", "qi"), desc: "holds a private key"},
		{name: "oct jwk with k", base: rawProof, bad: setHeader("jwk", map[string]any{"kty": "oct", "k": b64([]byte("0123456789abcdef"))}), desc: "holds a private key"},
		{name: "jwk missing", bad: delHeader("jwk"), desc: "has no jwk"},
		{name: "jwk a string", base: rawProof, bad: setHeader("jwk", "key"), desc: "jwk header is not a JSON object"},

		// §4.3 8: htm.
		{name: "htm GET for POST", bad: setClaim("htm", "GET"), desc: "htm does not match"},
		{name: "htm post for POST", bad: setClaim("htm", "post"), desc: "htm does not match"},
		{name: "request GET for htm POST", bad: func(_ testing.TB, s *spec) { s.method = "GET" }, desc: "htm does not match"},
		{name: "htm empty", bad: setClaim("htm", ""), desc: "htm does not match"},

		// §4.3 9: htu.
		{name: "htu other host", bad: setClaim("htu", "https://other.example.com/token"), desc: "htu does not match"},
		{name: "htu other path", bad: setClaim("htu", "https://as.example.com/token2"), desc: "htu does not match"},
		{name: "htu trailing slash", bad: setClaim("htu", "https://as.example.com/token/"), desc: "htu does not match"},
		{name: "htu http for https", bad: setClaim("htu", "http://as.example.com/token"), desc: "htu does not match"},
		{name: "htu other port", bad: setClaim("htu", "https://as.example.com:8443/token"), desc: "htu does not match"},
		{name: "htu https port 80", bad: setClaim("htu", "https://as.example.com:80/token"), desc: "htu does not match"},
		{name: "htu relative", bad: setClaim("htu", "/token"), desc: "htu does not match"},
		{name: "htu with userinfo", bad: setClaim("htu", "https://user@as.example.com/token"), desc: "htu does not match"},
		{name: "htu encoded slash", bad: setClaim("htu", "https://as.example.com%2Ftoken"), desc: "htu does not match"},
		{name: "htu path case", bad: setClaim("htu", "https://as.example.com/TOKEN"), desc: "htu does not match"},
		{name: "htu a number", bad: setClaim("htu", 1), desc: `"htu" is not a string`},

		// §4.3 11 and §11.1: iat within the window.
		{name: "iat stale", bad: setClaim("iat", now.Add(-window-leeway-time.Second).Unix()), desc: "iat is outside"},
		{name: "iat in the future", bad: setClaim("iat", now.Add(leeway+time.Second).Unix()), desc: "iat is outside"},
		{name: "iat far future", bad: setClaim("iat", 1<<40), desc: "iat is outside"},
		{name: "iat huge", bad: setClaim("iat", 1e300), desc: "iat is not a number"},
		{name: "iat zero", bad: setClaim("iat", 0), desc: "iat is outside"},
		{name: "iat negative", bad: setClaim("iat", -now.Unix()), desc: "iat is outside"},

		// §11.1: bounded sizes.
		{name: "jti of 257 bytes", bad: setClaim("jti", strings.Repeat("j", dpop.MaxJTISize+1)), desc: "jti is longer than 256"},
		{name: "proof over 8 KiB", bad: setClaim("pad", strings.Repeat("p", dpop.MaxProofSize)), desc: "longer than 8192 bytes"},

		// §4.3 12: ath at a resource.
		{name: "ath missing", base: atResource, bad: delClaim("ath"), desc: "ath does not match"},
		{name: "ath of another token", base: atResource, bad: setClaim("ath", ath("token-2")), desc: "ath does not match"},
		{name: "ath of the token with padding", base: atResource, bad: setClaim("ath", ath("token-1")+"="), desc: "ath does not match"},
		{name: "ath empty", base: atResource, bad: setClaim("ath", ""), desc: "ath does not match"},
		{name: "request token changed", base: atResource, bad: func(_ testing.TB, s *spec) { s.accessToken = "token-2" }, desc: "ath does not match"},

		// JWS extensions Check does not understand (RFC 7515 §4.1.11).
		{name: "crit", base: rawProof, bad: func(_ testing.TB, s *spec) {
			s.header["crit"], s.header["exp"] = []string{"exp"}, now.Unix()
		}, desc: "uses an extension"},
		{name: "b64 false", base: rawProof, bad: func(_ testing.TB, s *spec) {
			s.header["crit"], s.header["b64"] = []string{"b64"}, false
		}, desc: "uses an extension"},
		{name: "crit empty", base: rawProof, bad: setHeader("crit", []string{}), desc: "uses an extension"},

		// Member names are case-sensitive (RFC 7515 §4): "TYP" is not typ,
		// "JWK" is not jwk, and a proof carrying both spellings is refused
		// whichever parser reads it.
		{name: "TYP for typ", base: rawProof, bad: func(t testing.TB, s *spec) {
			s.headerJSON = headerWith(t, s, []string{"typ"}, `"TYP":"dpop+jwt"`)
		}, desc: "ambiguous"},
		{name: "Typ for typ", base: rawProof, bad: func(t testing.TB, s *spec) {
			s.headerJSON = headerWith(t, s, []string{"typ"}, `"Typ":"dpop+jwt"`)
		}, desc: "ambiguous"},
		{name: "typ jwt then Typ dpop+jwt", base: rawProof, bad: func(t testing.TB, s *spec) {
			s.header["typ"] = "jwt"
			s.headerJSON = headerWith(t, s, nil, `"Typ":"dpop+jwt"`)
		}, desc: "repeats the member"},
		{name: "JWK for jwk", base: rawProof, bad: func(t testing.TB, s *spec) {
			b, _ := json.Marshal(s.key.jwk)
			s.headerJSON = headerWith(t, s, []string{"jwk"}, `"JWK":`+string(b))
		}, desc: "ambiguous"},
		{name: "private jwk then public JWK", key: "RS256", base: rawProof, bad: func(t testing.TB, s *spec) {
			withPrivateJWK("p", "q")(t, s)
			b, _ := json.Marshal(s.key.jwk)
			s.headerJSON = headerWith(t, s, nil, `"JWK":`+string(b))
		}, desc: ""},
		{name: "jwk with oth then a clean JWK", key: "RS256", base: rawProof, bad: func(t testing.TB, s *spec) {
			jwk := maps.Clone(s.key.jwk)
			jwk["oth"] = []map[string]any{{"r": "Aw", "d": "BQ", "t": "Bw"}}
			s.header["jwk"] = jwk
			b, _ := json.Marshal(s.key.jwk)
			s.headerJSON = headerWith(t, s, nil, `"JWK":`+string(b))
		}, desc: "repeats the member"},
		{name: "ALG for alg", base: rawProof, bad: func(t testing.TB, s *spec) {
			s.signAlg = "ES256"
			s.headerJSON = headerWith(t, s, []string{"alg"}, `"ALG":"ES256"`)
		}, desc: "ambiguous"},
		{name: "alg RS256 then Alg ES256", base: rawProof, bad: func(t testing.TB, s *spec) {
			s.header["alg"], s.signAlg = "RS256", "ES256"
			s.headerJSON = headerWith(t, s, nil, `"Alg":"ES256"`)
		}, desc: "repeats the member"},
	}
}

// TestCheckRejects breaks each §4.3 rule once. Every case also checks the
// valid proof built the same way, with the same jti, after the broken one:
// it must pass, which shows both that the case fails for its one
// violation and that a refused proof does not use up its jti.
func TestCheckRejects(t *testing.T) {
	c := newChecker(t, now)
	for _, tc := range rejections() {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.key
			if name == "" {
				name = "ES256"
			}
			k := key(t, name)
			jti := newJTI()
			build := func(broken bool) dpop.Request {
				s := newSpec(k)
				s.claims["jti"] = jti
				if tc.base != nil {
					tc.base(t, s)
				}
				if broken {
					tc.bad(t, s)
				}
				return s.request(t)
			}
			p, err := c.Check(ctx, build(true))
			wantError(t, p, err, dpop.CodeInvalidProof, tc.desc)
			p, err = c.Check(ctx, build(false))
			wantOK(t, p, err)
		})
	}
}

// TestCheckBoundaries accepts proofs just inside each limit.
func TestCheckBoundaries(t *testing.T) {
	c := newChecker(t, now)
	for _, tc := range []struct {
		name string
		edit func(testing.TB, *spec)
	}{
		{"iat at the window's edge", setClaim("iat", now.Add(-window-leeway).Unix())},
		{"iat at the leeway's edge", setClaim("iat", now.Add(leeway).Unix())},
		{"iat fractional", setClaim("iat", float64(now.Unix())+0.5)},
		{"iat exponent", setClaim("iat", json.Number("1.8e9"))},
		{"jti of 256 bytes", setClaim("jti", strings.Repeat("j", dpop.MaxJTISize))},
		{"proof of 8 KiB", func(t testing.TB, s *spec) {
			// Grow a padding claim until the proof is as long as allowed.
			s.claims["pad"] = ""
			n := (dpop.MaxProofSize-len(s.proof(t)))*3/4 - 4
			for {
				s.claims["pad"] = strings.Repeat("p", n+1)
				if len(s.proof(t)) > dpop.MaxProofSize {
					break
				}
				n++
			}
			s.claims["pad"] = strings.Repeat("p", n)
			if l := len(s.proof(t)); l < dpop.MaxProofSize-3 {
				t.Fatalf("padded proof is only %d bytes", l)
			}
		}},
		{"ath at the token endpoint", setClaim("ath", ath("ignored"))},
		{"extra claims", setClaim("nonce", "unasked")},
		{"kid header", setHeader("kid", "k1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(key(t, "ES256"))
			tc.edit(t, s)
			r := s.request(t)
			if n := len(r.Header[0]); n > dpop.MaxProofSize {
				t.Fatalf("test proof is %d bytes", n)
			}
			p, err := c.Check(ctx, r)
			wantOK(t, p, err)
		})
	}
}

// TestCheckHTUEquivalent accepts an htu that differs from the request URI
// only by what RFC 9449 §4.3 ignores (query, fragment) or by RFC 3986
// §6.2.2 and §6.2.3 normalisation.
func TestCheckHTUEquivalent(t *testing.T) {
	c := newChecker(t, now)
	for _, tc := range []struct{ name, htu, uri string }{
		{"htu query", tokenURI + "?a=b", tokenURI},
		{"htu fragment", tokenURI + "#frag", tokenURI},
		{"request query", tokenURI, tokenURI + "?grant_type=x"},
		{"both queries differ", tokenURI + "?a=1", tokenURI + "?a=2"},
		{"upper-case host", "https://AS.Example.COM/token", tokenURI},
		{"upper-case request host", tokenURI, "https://AS.EXAMPLE.COM/token"},
		{"upper-case scheme", "HTTPS://as.example.com/token", tokenURI},
		{"default https port", "https://as.example.com:443/token", tokenURI},
		{"default http port", "http://as.example.com:80/token", "http://as.example.com/token"},
		{"empty port", "https://as.example.com:/token", tokenURI},
		{"%7E for ~", "https://as.example.com/%7Esigil/token", "https://as.example.com/~sigil/token"},
		{"%7e for ~", "https://as.example.com/~sigil/token", "https://as.example.com/%7esigil/token"},
		{"encoded unreserved", "https://as.example.com/%74%6F%6B%65%6E", tokenURI},
		{"percent-encoding case", "https://as.example.com/a%2fb", "https://as.example.com/a%2Fb"},
		{"dot segments", "https://as.example.com/a/b/../../token", tokenURI},
		{"single dots", "https://as.example.com/./token", tokenURI},
		{"encoded dot segments", "https://as.example.com/a/%2E%2E/token", tokenURI},
		{"empty path", "https://as.example.com", "https://as.example.com/"},
		{"IPv6 host", "https://[2001:DB8::1]:8443/token", "https://[2001:db8::1]:8443/token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(key(t, "ES256"))
			s.claims["htu"], s.uri = tc.htu, tc.uri
			p, err := c.Check(ctx, s.request(t))
			wantOK(t, p, err)
		})
	}
}

func TestCheckReplay(t *testing.T) {
	c := newChecker(t, now)
	k := key(t, "ES256")

	t.Run("same proof twice", func(t *testing.T) {
		r := newSpec(k).request(t)
		p, err := c.Check(ctx, r)
		wantOK(t, p, err)
		p, err = c.Check(ctx, r)
		wantError(t, p, err, dpop.CodeInvalidProof, "used before")
	})
	t.Run("same jti, new proof", func(t *testing.T) {
		s := newSpec(k)
		p, err := c.Check(ctx, s.request(t))
		wantOK(t, p, err)
		s.claims["iat"] = now.Unix() - 1
		p, err = c.Check(ctx, s.request(t))
		wantError(t, p, err, dpop.CodeInvalidProof, "used before")
	})
	t.Run("same jti at an equivalent URI", func(t *testing.T) {
		s := newSpec(k)
		p, err := c.Check(ctx, s.request(t))
		wantOK(t, p, err)
		s.claims["htu"], s.uri = "https://AS.example.com:443/./token", "https://as.EXAMPLE.com/token?x=1"
		p, err = c.Check(ctx, s.request(t))
		wantError(t, p, err, dpop.CodeInvalidProof, "used before")
	})
	t.Run("same jti for another URI", func(t *testing.T) {
		s := newSpec(k)
		p, err := c.Check(ctx, s.request(t))
		wantOK(t, p, err)
		s.claims["htu"], s.uri = "https://as.example.com/par", "https://as.example.com/par"
		p, err = c.Check(ctx, s.request(t))
		wantOK(t, p, err)
	})
	t.Run("concurrent", func(t *testing.T) {
		r := newSpec(k).request(t)
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { _, errs[i] = c.Check(ctx, r) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			wantError(t, nil, err, dpop.CodeInvalidProof, "used before")
		}
		if ok != 1 {
			t.Errorf("%d of %d concurrent checks of one proof passed, want 1", ok, n)
		}
	})
	t.Run("shared cache", func(t *testing.T) {
		// A second checker (another node) on the same store sees the jti.
		other := &dpop.Checker{Replay: c.Replay, Window: window, Leeway: leeway, Now: c.Now}
		r := newSpec(k).request(t)
		p, err := c.Check(ctx, r)
		wantOK(t, p, err)
		p, err = other.Check(ctx, r)
		wantError(t, p, err, dpop.CodeInvalidProof, "used before")
	})
}

// TestCheckDefaults checks the zero Window and Leeway mean the documented
// defaults.
func TestCheckDefaults(t *testing.T) {
	c := newChecker(t, now)
	c.Window, c.Leeway = 0, 0
	for _, tc := range []struct {
		name string
		iat  time.Time
		ok   bool
	}{
		{"oldest", now.Add(-dpop.DefaultWindow - dpop.DefaultLeeway), true},
		{"too old", now.Add(-dpop.DefaultWindow - dpop.DefaultLeeway - time.Second), false},
		{"latest", now.Add(dpop.DefaultLeeway), true},
		{"too new", now.Add(dpop.DefaultLeeway + time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(key(t, "ES256"))
			s.claims["iat"] = tc.iat.Unix()
			p, err := c.Check(ctx, s.request(t))
			if tc.ok {
				wantOK(t, p, err)
			} else {
				wantError(t, p, err, dpop.CodeInvalidProof, "iat is outside")
			}
		})
	}
}

// FuzzCheck feeds arbitrary DPoP header values to Check. It must never
// panic and must refuse with an *Error, never another error type; what it
// accepts, jwx must verify under the key Check returned.
func FuzzCheck(f *testing.F) {
	at := time.Unix(rfcFig2IAT, 0)
	c := newChecker(f, at)
	f.Add(rfcFig2)
	f.Add(rfcFig13)
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
		s := newSpec(key(f, alg))
		s.claims["htu"], s.claims["iat"] = rfcFig2URI, at.Unix()
		f.Add(s.proof(f))
	}
	for _, tc := range rejections() {
		k := key(f, "ES256")
		if tc.key != "" {
			k = key(f, tc.key)
		}
		s := newSpec(k)
		s.claims["htu"], s.claims["iat"] = rfcFig2URI, at.Unix()
		if tc.base != nil {
			tc.base(f, s)
		}
		tc.bad(f, s)
		if r := s.request(f); len(r.Header) == 1 {
			f.Add(r.Header[0])
		}
	}
	seg := strings.Split(rfcFig2, ".")
	h, p, sig := seg[0], seg[1], seg[2]
	for _, s := range []string{"", ".", "..", "...", "a.b.c", h + "." + p + ".", h + ".." + sig, "." + p + "." + sig,
		h + "\n." + p + "." + sig, rfcFig2 + "\n", "e30.e30.e30", "bnVsbA.bnVsbA.bnVsbA", "W10.W10.W10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		p, err := c.Check(ctx, dpop.Request{Header: []string{header}, Method: "POST", URI: rfcFig2URI, AccessToken: ""})
		if err != nil {
			if _, ok := err.(*dpop.Error); !ok {
				t.Fatalf("Check error is %T (%v), want *dpop.Error", err, err)
			}
			if p != nil {
				t.Fatal("Check returned a proof with an error")
			}
			return
		}
		if p == nil {
			t.Fatal("Check returned neither a proof nor an error")
		}
		alg, ok := jwa.LookupSignatureAlgorithm(p.Alg)
		if !ok {
			t.Fatalf("Check accepted alg %q", p.Alg)
		}
		if _, err := jws.Verify([]byte(header), jws.WithKey(alg, p.Key)); err != nil {
			t.Fatalf("Check accepted %q, which jwx does not verify: %v", header, err)
		}
	})
}

// BenchmarkCheck checks a valid ES256 proof with a fresh jti each time,
// against the SQLite replay cache. Proofs are signed before the clock
// starts.
func BenchmarkCheck(b *testing.B) {
	c := newChecker(b, now)
	k := key(b, "ES256")
	reqs := make([]dpop.Request, b.N)
	for i := range reqs {
		reqs[i] = newSpec(k).request(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Check(ctx, reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
