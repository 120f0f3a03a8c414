package token_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
)

// FuzzParse feeds attacker-shaped strings to Parse. It must never panic,
// every error must wrap ErrInvalid, and whatever it accepts go-jose must
// accept too under the same key, with the same claims (a differential
// against an independent verification path).
func FuzzParse(f *testing.F) {
	fix := getFixture(f)
	src := source{}
	for kid, k := range fix.src {
		src[kid] = k
	}
	// The RFC 7515 A.3 key has no kid; the RFC 9068 example's kid names
	// the fixture's RS256 key.
	src[""] = sourceKey{rfc7515A3Key(f), "ES256"}
	rs := fix.keys["RS256"]
	src["RjEwOwOA"] = sourceKey{rs.Public, "RS256"}

	for _, alg := range keys.Algorithms {
		f.Add(mustSign(f, fix.keys[alg], token.TypeAccess, accessClaims()))
	}
	es := fix.keys["ES256"]
	good := mustSign(f, es, token.TypeAccess, accessClaims())
	gh, gp, gs := segments(f, good)
	f.Add(rfc7515A3)
	f.Add(craft(f, "RS256", rs.Signer, rfc9068Header, []byte(rfc9068Claims)))
	f.Add(craft(f, "ES256", es.Signer, header("ES256", es.ID), []byte(`{"iss":"a","ISS":"b","ſub":"c","aud":null}`)))
	for _, s := range []string{
		"", ".", "..", "...", "a.b.c", "a.b", "a.b.c.d",
		gh + "." + gp + ".", gh + "." + gp, good + ".", good + "\n", " " + good,
		gh + "." + gp + "." + gs + "AA", gh + "=." + gp + "." + gs,
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.",              // {"alg":"none"}
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl", // {"alg":"HS256"}
		"eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiYiJdfQ.e30." + gs,  // crit
		"eyJhbGciOiJFUzI1NiIsImp3ayI6e319.e30." + gs,        // jwk {}
		"eyJhbGciOiJFUzI1NiIsImFsZyI6IkVTMjU2In0.e30." + gs, // duplicate alg
		"W10.W10." + gs,                             // [] . []
		"bnVsbA.bnVsbA." + gs,                       // null . null
		"eyJhbGciOiJFUzI1NiIsImtpZCI6MX0.e30." + gs, // kid: 1
		`{"payload":"e30","protected":"e30","signature":"` + gs + `"}`, // JSON serialization
		strings.Repeat("A", 100) + "." + strings.Repeat("B", 100) + "." + strings.Repeat("C", 100),
	} {
		f.Add(s)
	}

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw string) {
		h, c, err := token.Parse(ctx, raw, src)
		if err != nil {
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Parse error %v does not wrap ErrInvalid", err)
			}
			if h != nil || c != nil {
				t.Fatalf("Parse returned %+v, %+v with error %v", h, c, err)
			}
			return
		}
		k, ok := src[h.KID]
		if !ok || k.alg != h.Alg {
			t.Fatalf("Parse accepted kid %q alg %q, not a key of the source", h.KID, h.Alg)
		}
		jws, err := jose.ParseSignedCompact(raw, keys.JOSEAlgorithms)
		if err != nil {
			t.Fatalf("Parse accepted %q; go-jose cannot parse it: %v", raw, err)
		}
		payload, err := jws.Verify(k.pub)
		if err != nil {
			t.Fatalf("Parse accepted %q; go-jose Verify refuses it: %v", raw, err)
		}
		var want token.Claims
		if err := json.Unmarshal(payload, &want); err != nil {
			t.Fatalf("go-jose payload does not decode: %v", err)
		}
		if diff := cmp.Diff(&want, c); diff != "" {
			t.Fatalf("claims differ (-go-jose +Parse):\n%s", diff)
		}
	})
}

// FuzzClaimsUnmarshal: decoding arbitrary JSON never panics, and whatever
// decodes survives Marshal then Unmarshal unchanged — registered fields
// and Extra alike. Marshal must also never emit a member that decodes
// differently (a shadowed registered claim would).
func FuzzClaimsUnmarshal(f *testing.F) {
	for _, s := range []string{
		rfc9068Claims,
		`{"iss":"joe",` + "\r\n" + ` "exp":1300819380,` + "\r\n" + ` "http://example.com/is_root":true}`, // RFC 7519 §3.1
		`{}`, `null`, `[]`, `""`, `1`,
		`{"iss":"evil","iss":"good"}`,
		`{"ISS":"a","iss":"b","Iss":"c"}`,
		`{"ſub":"root","sub":"alice"}`,
		`{"aud":null}`, `{"aud":[]}`, `{"aud":[""]}`, `{"aud":["a","b"]}`, `{"aud":"a"}`,
		`{"exp":1.5}`, `{"exp":-0}`, `{"exp":9007199254740992}`, `{"exp":9007199254740993}`, `{"exp":1e400}`,
		`{"nbf":null,"iat":0}`,
		`{"x":{"y":[1,2.5,"z",null,true]},"":""}`,
		`{"cnf":{"jkt":"abc"},"act":{"sub":"svc"}}`,
		`{"scope":"a b","client_id":"c","jti":"j"}`,
		"{\"\xff\":\"\xfe\"}",
		`{"a":1e999999}`,
		`{"authorization_details":[{"type":"mcp_tool","resource":"https://m.example","tools":["a","b"]}]}`,
		`{"authorization_details":[]}`, `{"authorization_details":null}`, `{"authorization_details":[{"type":"x","tools":[]}]}`,
		`{"authorization_details":[{"type":"x","tools":[null],"resource":""}],"authorization_details":[{"type":"y"}]}`,
		`{"authorization_details":[{"type":"a","type":"b","Type":"c","tools":null}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c token.Claims
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", c, err)
		}
		var c2 token.Claims
		if err := json.Unmarshal(out, &c2); err != nil {
			t.Fatalf("Unmarshal(Marshal(c)) = %v for %s", err, out)
		}
		if diff := cmp.Diff(c, c2, claimsRoundTrip); diff != "" {
			t.Fatalf("round trip of %q via %s changed claims (-first +second):\n%s", b, out, diff)
		}
	})
}

// FuzzClaimsFastPaths holds UnmarshalJSON's fast paths (member scanning,
// plain strings and integers, the canonical status claim) to the general
// decoding through encoding/json: the same claims, and an error exactly
// when it errs.
func FuzzClaimsFastPaths(f *testing.F) {
	for _, s := range []string{
		rfc9068Claims,
		`{"iss":"a","sub":"b","aud":["c","d"],"exp":1,"nbf":0,"iat":1700000000,"jti":"j","client_id":"c","scope":"s t"}`,
		`{"status":{"status_list":{"idx":0,"uri":"https://x/statuslists/1"}}}`,
		`{"status":{"status_list":{"idx":01,"uri":"u"}}}`, `{"status":{"status_list":{"idx":1,"uri":"u\"}}"}}}`,
		`{"status":{"status_list":{"idx":1,"uri":"u"},"x":1}}`, `{"status":{"status_list":{"uri":"u","idx":1}}}`,
		`{"status":{"status_list":{"idx":1e3,"uri":"u"}}}`, `{"status":{"status_list":{"idx":-1,"uri":"u"}}}`,
		`{"exp":"1","exp":2}`, `{"exp":2,"exp":"1"}`, `{"iss":1,"iss":"a"}`, `{"x":1,"x":[2]}`,
		`{"iss":"\u0061","sub":"\ud800","jti":"a\\b"}`, "{\"iss\":\"\xff\"}", "{\"\xff\":1}", `{"i\u0073s":"a"}`,
		`{"exp":123456789012345,"iat":1234567890123456,"nbf":9007199254740993}`, `{"exp":0,"iat":00}`,
		` { "iss" : "a" , "aud" : [ "b" , { "c" : "}" } ] , "x" : { "y" : "\"" } } `,
		`null`, `[]`, `""`, `1`, `{`, `{"a":}`, `{"a":1,}`, `{}`, `{"":""}`, `{"a":true,"b":false,"c":null}`,
		`{"cnf":{"jkt":"x"},"CNF":{"jkt":"y"},"ſub":"z"}`,
		`{"sub":"admin","sub":null}`, `{"iss":"a","iss":null,"jti":"j","jti":null,"scope":"s","scope":null}`,
		`{"exp":5,"exp":null}`, `{"aud":"a","aud":null}`, `{"cnf":{"jkt":"x"},"cnf":null}`,
		`{"authorization_details":[{"type":"mcp_tool","resource":"https://m.example","tools":["a"]}],"authorization_details":null}`,
		`{"authorization_details":[{"type":1}],"authorization_details":[]}`, `{"authorization_details":[ { "type" : "t" , "tools" : [ ] } ]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, slow token.Claims
		errFast := json.Unmarshal(b, &fast)
		errSlow := token.DecodeClaimsSlow(b, &slow)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("%q: fast paths err %v, general decoding err %v", b, errFast, errSlow)
		}
		if errFast != nil {
			return
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("%q: fast paths decode differently (-general +fast):\n%s", b, diff)
		}
	})
}

// FuzzClaimsMarshal holds the hand-written Claims encoder to encoding/json:
// for any claims a token can decode into, the same bytes, and an error
// exactly when it errs.
func FuzzClaimsMarshal(f *testing.F) {
	for _, s := range []string{
		rfc9068Claims, `{}`, `{"aud":[]}`, `{"aud":["a"]}`, `{"aud":["a","b<&>"]}`,
		`{"iss":"\u2028\u0000\"\\é","exp":1,"nbf":0,"iat":9007199254740992}`,
		`{"cnf":{}}`, `{"cnf":{"jkt":"x"}}`, `{"status":{}}`, `{"status":{"status_list":{"idx":0,"uri":"<u>"}}}`,
		`{"x":1.5e300,"y":[1,{"z":null}],"A":"\u00e9","<k>":true,"":""}`, `{"sub":"s","department":"eng","clearance":"internal"}`,
		"{\"jti\":\"\xff\"}",
		`{"sub":"u","auth_time":5,"acr":"1","amr":["pwd","<m>"],"azp":"c","nonce":"n\u2028","at_hash":"h"}`, `{"amr":[]}`, `{"amr":null}`,
		`{"status":{},"authorization_details":[{"type":"mcp_tool","resource":"https://m.example/<&>","tools":["a","\u2028é",""]},{"type":""}],"z":1}`,
		`{"authorization_details":[{"type":"x","tools":[],"resource":""}]}`, `{"authorization_details":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c token.Claims
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		fast, errFast := json.Marshal(c)
		slow, errSlow := token.MarshalClaimsSlow(c)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("%q: hand-written err %v, encoding/json err %v", b, errFast, errSlow)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("%q:\nhand-written %s\nencoding/json %s", b, fast, slow)
		}
	})
}
