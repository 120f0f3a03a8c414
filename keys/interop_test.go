package keys_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// TestJWKSMembers: every published key names itself (kid), its type
// (kty), its algorithm (alg) and its use (sig), and no member of a
// private or symmetric key (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
func TestJWKSMembers(t *testing.T) {
	ctx := context.Background()
	s := newSet(t, newStore(t), &clock{t: t0}, true)
	if err := s.Init(ctx, keys.Algorithms...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, "EdDSA"); err != nil { // a next key too
		t.Fatal(err)
	}
	wantKty := map[string]string{"ES256": "EC", "EdDSA": "OKP", "RS256": "RSA", "PS256": "RSA"}
	pub := publishedKeys(t, s)
	if len(pub) != len(keys.Algorithms)+1 {
		t.Fatalf("JWKS has %d keys, want %d", len(pub), len(keys.Algorithms)+1)
	}
	for _, key := range s.Keys() {
		kid, k := key.ID, pub[key.ID]
		t.Run(key.Alg+"/"+string(key.State), func(t *testing.T) {
			if k == nil {
				t.Fatalf("key %s is not published", kid)
			}
			alg, _ := k["alg"].(string)
			if kid == "" || !keys.Supported(alg) || k["kty"] != wantKty[alg] || k["use"] != "sig" {
				t.Errorf("key members kid=%q alg=%v kty=%v use=%v", kid, k["alg"], k["kty"], k["use"])
			}
			for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
				if _, ok := k[m]; ok {
					t.Errorf("published key %s has private member %q", kid, m)
				}
			}
			if _, _, err := s.Lookup(ctx, kid); err != nil {
				t.Errorf("published kid not found by Lookup: %v", err)
			}
		})
	}
	// The verify package reads back exactly the published keys.
	set, err := verify.ParseJWKS(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != len(pub) {
		t.Errorf("verify.ParseJWKS kept %d of %d keys", len(set), len(pub))
	}
}

// TestInteropJWX verifies tokens minted by token.Sign with
// lestrrat-go/jwx, an independent JOSE implementation, using only the
// published JWKS.
func TestInteropJWX(t *testing.T) {
	ctx := context.Background()
	s := newSet(t, newStore(t), &clock{t: t0}, true)
	if err := s.Init(ctx, keys.Algorithms...); err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(s.JWKS())
	if err != nil {
		t.Fatalf("jwx cannot parse the JWKS: %v\n%s", err, s.JWKS())
	}
	if set.Len() != len(keys.Algorithms) {
		t.Fatalf("jwx read %d keys, want %d", set.Len(), len(keys.Algorithms))
	}
	claims := &token.Claims{
		Issuer:   "https://sigil.example",
		Subject:  "alice",
		Audience: token.Audience{"https://rs.example"},
		IssuedAt: token.NewNumericDate(t0),
		Expiry:   token.NewNumericDate(t0.Add(5 * time.Minute)),
		JTI:      "jti-interop",
		ClientID: "c1",
		Scope:    "read",
		Extra:    map[string]any{"tenant": "acme"},
	}
	for _, alg := range keys.Algorithms {
		t.Run(alg, func(t *testing.T) {
			raw, err := token.Sign(mustActive(t, s, alg), token.TypeAccess, claims)
			if err != nil {
				t.Fatal(err)
			}
			payload, err := jws.Verify([]byte(raw), jws.WithKeySet(set))
			if err != nil {
				t.Fatalf("jwx jws.Verify: %v", err)
			}
			var got token.Claims
			if err := json.Unmarshal(payload, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(claims, &got); diff != "" {
				t.Errorf("claims (-signed +jwx payload):\n%s", diff)
			}
			tok, err := jwt.ParseString(raw, jwt.WithKeySet(set),
				jwt.WithClock(jwt.ClockFunc(func() time.Time { return t0.Add(time.Minute) })),
				jwt.WithIssuer("https://sigil.example"), jwt.WithAudience("https://rs.example"))
			if err != nil {
				t.Fatalf("jwx jwt.Parse: %v", err)
			}
			if jti, _ := tok.JwtID(); jti != "jti-interop" {
				t.Errorf("jwx jti = %q", jti)
			}
			msg, err := jws.Parse([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			h := msg.Signatures()[0].ProtectedHeaders()
			if typ, _ := h.Type(); typ != token.TypeAccess {
				t.Errorf("typ = %q, want %q", typ, token.TypeAccess)
			}
			if kid, _ := h.KeyID(); kid != mustActive(t, s, alg).ID {
				t.Errorf("kid = %q", kid)
			}

			// And jwx refuses it once a byte of the payload changes.
			tampered := []byte(raw)
			tampered[len(raw)/2] ^= 1
			if _, err := jws.Verify(tampered, jws.WithKeySet(set)); err == nil {
				t.Error("jwx accepted a tampered token")
			}
		})
	}
}
