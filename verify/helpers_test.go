package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/store/sqlite"
	"github.com/sigil-sts/sigil/token"
)

// clock is an injected time source for Set.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var b64 = base64.RawURLEncoding

// t0 is when the test tokens are minted.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testIssuer   = "https://sigil.example"
	testAudience = "https://rs.example"
)

// issuer is the issuer's side of the tests: a keys.Set over an in-memory
// store, with an active key for every algorithm.
type issuer struct {
	set *keys.Set
}

var (
	issuerOnce sync.Once
	sharedIss  *issuer
)

// sharedDir holds the shared key set's store for the test run.
var sharedDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sigil-verify-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func getIssuer(tb testing.TB) *issuer {
	tb.Helper()
	issuerOnce.Do(func() {
		mk, err := keys.ParseMasterKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
		if err != nil {
			tb.Fatal(err)
		}
		// The key set is shared by every test of the package, so its store
		// lives in a directory TestMain removes, not in one test's TempDir.
		st, err := sqlite.Open(context.Background(), filepath.Join(sharedDir, "store"))
		if err != nil {
			tb.Fatal(err)
		}
		s := &keys.Set{Store: st, Sealer: keys.NewSealer(mk), LoadPrivate: true, Prepublish: time.Hour, RetainRetired: time.Hour, Now: func() time.Time { return t0 }}
		if err := s.Init(context.Background(), keys.Algorithms...); err != nil {
			tb.Fatal(err)
		}
		sharedIss = &issuer{set: s}
	})
	if sharedIss == nil {
		tb.Fatal("issuer keys could not be created")
	}
	return sharedIss
}

func (iss *issuer) key(tb testing.TB, alg string) *keys.Key {
	tb.Helper()
	k, err := iss.set.Active(alg)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// claims are those of a valid access token minted at t0.
func claims() *token.Claims {
	return &token.Claims{
		Issuer:    testIssuer,
		Subject:   "alice",
		Audience:  token.Audience{testAudience},
		Expiry:    token.NewNumericDate(t0.Add(5 * time.Minute)),
		NotBefore: token.NewNumericDate(t0),
		IssuedAt:  token.NewNumericDate(t0),
		JTI:       "jti-1",
		ClientID:  "client-1",
		Scope:     "read",
	}
}

// mint signs claims, changed by mod, with the issuer's active key for alg.
func (iss *issuer) mint(tb testing.TB, alg, typ string, mod func(*token.Claims)) string {
	tb.Helper()
	c := claims()
	if mod != nil {
		mod(c)
	}
	raw, err := token.Sign(iss.key(tb, alg), typ, c)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// craft signs an arbitrary header and payload with the standard library,
// bypassing go-jose, so a test can put any header on a real signature.
func craft(tb testing.TB, alg string, priv crypto.Signer, hdr string, payload []byte) string {
	tb.Helper()
	input := b64.EncodeToString([]byte(hdr)) + "." + b64.EncodeToString(payload)
	h := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch alg {
	case "ES256":
		r, s, e := ecdsa.Sign(rand.Reader, priv.(*ecdsa.PrivateKey), h[:])
		if e != nil {
			tb.Fatal(e)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case "EdDSA":
		sig = ed25519.Sign(priv.(ed25519.PrivateKey), []byte(input))
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, priv.(*rsa.PrivateKey), crypto.SHA256, h[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, priv.(*rsa.PrivateKey), crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		tb.Fatalf("craft: algorithm %q", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// hdr is a protected header for alg and kid with the given typ member
// (raw JSON, or empty for none) and extra raw members.
func hdr(alg, kid, typ string, extra ...string) string {
	s := fmt.Sprintf(`{"alg":%q,"kid":%q`, alg, kid)
	if typ != "" {
		s += fmt.Sprintf(`,"typ":%q`, typ)
	}
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}
