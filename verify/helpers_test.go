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
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
)

// memStore is an in-memory sigil.KeyStore with the semantics the
// interface documents. Its fail field, when set, makes every call fail.
type memStore struct {
	mu   sync.Mutex
	keys []*sigil.SigningKey // oldest first
	fail error
}

var _ sigil.KeyStore = (*memStore)(nil)

func (m *memStore) CreateKey(_ context.Context, k *sigil.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.find(k.ID) != nil {
		return fmt.Errorf("key %s: %w", k.ID, sigil.ErrConflict)
	}
	c := *k
	m.keys = append(m.keys, &c)
	return nil
}

func (m *memStore) Keys(context.Context) ([]*sigil.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	out := make([]*sigil.SigningKey, len(m.keys))
	for i, k := range m.keys {
		c := *k
		out[i] = &c
	}
	return out, nil
}

func (m *memStore) PromoteKey(_ context.Context, kid string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	k := m.find(kid)
	switch {
	case k == nil:
		return sigil.ErrNotFound
	case k.State == sigil.KeyActive:
		return nil
	case k.State == sigil.KeyRetired:
		return sigil.ErrConflict
	}
	for _, o := range m.keys {
		if o.Alg == k.Alg && o.State == sigil.KeyActive {
			o.State, o.RetiredAt = sigil.KeyRetired, at
		}
	}
	k.State = sigil.KeyActive
	return nil
}

func (m *memStore) DeleteKey(_ context.Context, kid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	i := slices.IndexFunc(m.keys, func(k *sigil.SigningKey) bool { return k.ID == kid })
	if i < 0 {
		return sigil.ErrNotFound
	}
	m.keys = slices.Delete(m.keys, i, i+1)
	return nil
}

func (m *memStore) find(kid string) *sigil.SigningKey {
	for _, k := range m.keys {
		if k.ID == kid {
			return k
		}
	}
	return nil
}

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

func getIssuer(tb testing.TB) *issuer {
	tb.Helper()
	issuerOnce.Do(func() {
		mk, err := keys.ParseMasterKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
		if err != nil {
			tb.Fatal(err)
		}
		s := &keys.Set{Store: &memStore{}, Sealer: keys.NewSealer(mk), Prepublish: time.Hour, RetainRetired: time.Hour, Now: func() time.Time { return t0 }}
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
