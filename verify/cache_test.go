package verify_test

import (
	"context"
	"crypto"
	"errors"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// swappableKeys is a KeySource whose answer for one kid the test changes.
type swappableKeys struct {
	token.KeySource
	kid string
	pub crypto.PublicKey // nil: the kid is gone
	alg string
}

func (s *swappableKeys) Lookup(ctx context.Context, kid string) (crypto.PublicKey, string, error) {
	if kid != s.kid {
		return s.KeySource.Lookup(ctx, kid)
	}
	if s.pub == nil {
		return nil, "", errors.New("unknown kid")
	}
	return s.pub, s.alg, nil
}

// TestParseCache: a cached token verifies again without its signature
// being checked, but every other check still runs, and a key that is gone
// or changed under its kid stops the cached token.
func TestParseCache(t *testing.T) {
	iss := getIssuer(t)
	k := iss.key(t, "ES256")
	raw := iss.mint(t, "ES256", token.TypeAccess, nil)
	keys := &swappableKeys{KeySource: iss.set, kid: k.ID, pub: k.Public, alg: k.Alg}
	v := verifier(keys, t0)
	v.Cache = verify.NewParseCache(8)

	for i := range 2 {
		c, err := v.Verify(context.Background(), raw)
		if err != nil || c.Subject != "alice" {
			t.Fatalf("Verify #%d: %+v, %v", i, c, err)
		}
		c.Subject = "mallory" // a caller's change must not reach the cache
	}
	if c, err := v.Verify(context.Background(), raw); err != nil || c.Subject != "alice" {
		t.Fatalf("Verify after a caller changed its copy: %+v, %v", c, err)
	}
	// Times, audience and issuer are checked on every call.
	late := *v
	late.Now = func() time.Time { return t0.Add(time.Hour) }
	if _, err := late.Verify(context.Background(), raw); !errors.Is(err, verify.ErrInvalid) {
		t.Errorf("cached token after exp: %v", err)
	}
	other := *v
	other.Audience = "https://other.example"
	if _, err := other.Verify(context.Background(), raw); !errors.Is(err, verify.ErrInvalid) {
		t.Errorf("cached token for another audience: %v", err)
	}
	// Another key under the kid: the cached token is verified afresh, and
	// fails.
	keys.pub = foreignKey(t, "ES256").Public()
	if _, err := v.Verify(context.Background(), raw); err == nil {
		t.Error("cached token accepted after its kid moved to another key")
	}
	// The kid gone: refused.
	keys.pub = nil
	if _, err := v.Verify(context.Background(), raw); err == nil {
		t.Error("cached token accepted after its key was removed")
	}
	// Back: accepted again.
	keys.pub = k.Public
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Errorf("Verify with the key back: %v", err)
	}
	// A tampered copy is another entry, and fails its signature.
	if _, err := v.Verify(context.Background(), raw[:len(raw)-3]+"AAA"); err == nil {
		t.Error("a tampered token verified")
	}
}

// BenchmarkVerifyCached compares Verify of one ES256 token with and
// without a ParseCache.
func BenchmarkVerifyCached(b *testing.B) {
	iss := getIssuer(b)
	raw := iss.mint(b, "ES256", token.TypeAccess, nil)
	for _, cached := range []bool{false, true} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			v := verifier(iss.set, t0)
			if cached {
				v.Cache = verify.NewParseCache(1024)
			}
			for b.Loop() {
				if _, err := v.Verify(context.Background(), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
