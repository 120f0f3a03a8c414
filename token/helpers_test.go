package token_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
)

// b64 is the JWS segment encoding (RFC 7515 §2).
var b64 = base64.RawURLEncoding

// testNow is the fixed time the tests mint tokens at.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// source is a token.KeySource over a fixed map. Unlike verify.KeySet it
// has no empty-kid rule: a kid is found only when it is exactly a key.
type source map[string]sourceKey

type sourceKey struct {
	pub crypto.PublicKey
	alg string
}

func (s source) Lookup(_ context.Context, kid string) (crypto.PublicKey, string, error) {
	k, ok := s[kid]
	if !ok {
		return nil, "", fmt.Errorf("no key %q", kid)
	}
	return k.pub, k.alg, nil
}

// newKey generates a signing key for alg the way keys.Set loads one.
func newKey(tb testing.TB, alg, kid string) *keys.Key {
	tb.Helper()
	s, err := keys.Generate(alg)
	if err != nil {
		tb.Fatalf("Generate(%s): %v", alg, err)
	}
	return &keys.Key{ID: kid, Alg: alg, State: sigil.KeyActive, CreatedAt: testNow, Public: s.Public(), Signer: s}
}

// fixture is one key per algorithm and a source holding exactly those.
type fixture struct {
	keys map[string]*keys.Key // by alg
	src  source
}

var (
	fixtureOnce sync.Once
	sharedFix   *fixture
)

// getFixture returns the package's shared keys; RSA generation is too
// slow to repeat in every test.
func getFixture(tb testing.TB) *fixture {
	tb.Helper()
	fixtureOnce.Do(func() {
		f := &fixture{keys: map[string]*keys.Key{}, src: source{}}
		for _, alg := range keys.Algorithms {
			k := newKey(tb, alg, "kid-"+alg)
			f.keys[alg] = k
			f.src[k.ID] = sourceKey{k.Public, alg}
		}
		sharedFix = f
	})
	if sharedFix == nil {
		tb.Fatal("fixture keys could not be generated")
	}
	return sharedFix
}

// accessClaims are the claims of a well-formed access token.
func accessClaims() *token.Claims {
	return &token.Claims{
		Issuer:    "https://sigil.example",
		Subject:   "alice",
		Audience:  token.Audience{"https://rs.example"},
		Expiry:    token.NewNumericDate(testNow.Add(5 * time.Minute)),
		NotBefore: token.NewNumericDate(testNow),
		IssuedAt:  token.NewNumericDate(testNow),
		JTI:       "jti-1",
		ClientID:  "client-1",
		Scope:     "read write",
	}
}

func mustSign(tb testing.TB, k *keys.Key, typ string, c *token.Claims) string {
	tb.Helper()
	raw, err := token.Sign(k, typ, c)
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	return raw
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// header returns a protected header for alg and kid with typ at+jwt.
func header(alg, kid string) string {
	return fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"at+jwt"}`, alg, kid)
}

// craft builds a compact JWS from a raw header and payload and signs it
// with the standard library directly, not go-jose, so tests can sign any
// header at all with a real key: a rejection then comes from policy, not
// from a broken signature.
func craft(tb testing.TB, alg string, priv crypto.Signer, hdr string, payload []byte) string {
	tb.Helper()
	input := b64.EncodeToString([]byte(hdr)) + "." + b64.EncodeToString(payload)
	return input + "." + b64.EncodeToString(rawSign(tb, alg, priv, []byte(input)))
}

// rawSign signs input with the JWS encoding of alg (RFC 7518 §3, RFC 8037).
func rawSign(tb testing.TB, alg string, priv crypto.Signer, input []byte) []byte {
	tb.Helper()
	h := sha256.Sum256(input)
	switch alg {
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, priv.(*ecdsa.PrivateKey), h[:])
		if err != nil {
			tb.Fatal(err)
		}
		return p1363(r.Bytes(), s.Bytes())
	case "EdDSA":
		return ed25519.Sign(priv.(ed25519.PrivateKey), input)
	case "RS256":
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv.(*rsa.PrivateKey), crypto.SHA256, h[:])
		if err != nil {
			tb.Fatal(err)
		}
		return sig
	case "PS256":
		sig, err := rsa.SignPSS(rand.Reader, priv.(*rsa.PrivateKey), crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			tb.Fatal(err)
		}
		return sig
	}
	tb.Fatalf("rawSign: no algorithm %q", alg)
	return nil
}

// p1363 encodes r and s as two 32-byte big-endian integers. Values longer
// than 32 bytes are kept whole, so the result is then longer than 64.
func p1363(r, s []byte) []byte {
	pad := func(b []byte) []byte {
		if len(b) >= 32 {
			return b
		}
		return append(make([]byte, 32-len(b)), b...)
	}
	return append(pad(r), pad(s)...)
}

// segments splits a compact JWS into its three parts.
func segments(tb testing.TB, raw string) (hdr, payload, sig string) {
	tb.Helper()
	var parts [3]string
	n := 0
	start := 0
	for i := 0; i < len(raw); i++ {
		if raw[i] == '.' {
			if n == 2 {
				tb.Fatalf("segments: more than three parts in %q", raw)
			}
			parts[n] = raw[start:i]
			n++
			start = i + 1
		}
	}
	if n != 2 {
		tb.Fatalf("segments: %d dots in %q", n, raw)
	}
	parts[2] = raw[start:]
	return parts[0], parts[1], parts[2]
}

// repoRoot walks up from the working directory (the package directory
// under go test) to the directory holding go.mod.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

func stdB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
