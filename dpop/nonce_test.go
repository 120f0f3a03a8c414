package dpop_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/dpop"
)

var (
	nonceKey      = []byte("nonce key: 32 bytes or more, yes")
	otherNonceKey = []byte("another nonce key of 32 bytes...")
)

// nqchar is RFC 9449 §8.1's nonce syntax, 1*NQCHAR.
var nqchar = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)

func TestNoncesCurrent(t *testing.T) {
	const lifetime = 10 * time.Minute
	step := lifetime / 2
	n := &dpop.Nonces{Key: nonceKey, Lifetime: lifetime}
	t0 := now.Truncate(step)
	a := n.Current(t0)
	if !nqchar.MatchString(a) {
		t.Errorf("Current = %q, not 1*NQCHAR", a)
	}
	for _, d := range []time.Duration{time.Nanosecond, time.Second, step / 2, step - time.Nanosecond} {
		if got := n.Current(t0.Add(d)); got != a {
			t.Errorf("Current(t0+%v) = %q, want %q as at t0", d, got, a)
		}
	}
	b := n.Current(t0.Add(step))
	if b == a {
		t.Errorf("Current(t0+%v) = Current(t0): the nonce did not change after Lifetime/2", step)
	}
	if got := n.Current(t0.Add(2*step - time.Nanosecond)); got != b {
		t.Errorf("Current(t0+2·step-1ns) = %q, want %q", got, b)
	}
	if got := n.Current(t0.Add(-time.Nanosecond)); got == a {
		t.Errorf("Current(t0-1ns) = Current(t0)")
	}
	// Another node with the same key hands out the same nonce.
	if got := (&dpop.Nonces{Key: nonceKey, Lifetime: lifetime}).Current(t0); got != a {
		t.Errorf("another node's Current = %q, want %q", got, a)
	}
	if got := (&dpop.Nonces{Key: otherNonceKey, Lifetime: lifetime}).Current(t0); got == a {
		t.Errorf("a node with another key made the same nonce %q", got)
	}
}

func TestNoncesDefaultLifetime(t *testing.T) {
	n := &dpop.Nonces{Key: nonceKey}
	step := dpop.DefaultNonceLifetime / 2
	t0 := now.Truncate(step)
	a := n.Current(t0)
	if got := n.Current(t0.Add(step - time.Second)); got != a {
		t.Errorf("Current changed within DefaultNonceLifetime/2")
	}
	if got := n.Current(t0.Add(step)); got == a {
		t.Errorf("Current did not change after DefaultNonceLifetime/2")
	}
	if !n.Valid(a, t0.Add(dpop.DefaultNonceLifetime)) {
		t.Errorf("nonce refused at the end of DefaultNonceLifetime")
	}
	if n.Valid(a, t0.Add(dpop.DefaultNonceLifetime+time.Second)) {
		t.Errorf("nonce accepted after DefaultNonceLifetime")
	}
}

func TestNoncesValid(t *testing.T) {
	const lifetime = 10 * time.Minute
	n := &dpop.Nonces{Key: nonceKey, Lifetime: lifetime}
	t0 := now.Truncate(lifetime / 2)
	a := n.Current(t0)
	garbled := []byte(a)
	garbled[len(garbled)/2] ^= 1
	for _, tc := range []struct {
		name  string
		nonce string
		at    time.Time
		ok    bool
	}{
		{"when issued", a, t0, true},
		{"end of lifetime", a, t0.Add(lifetime), true},
		{"expired", a, t0.Add(lifetime + time.Second), false},
		{"before issue", a, t0.Add(-time.Second), false},
		{"other key", (&dpop.Nonces{Key: otherNonceKey, Lifetime: lifetime}).Current(t0), t0, false},
		{"garbled", string(garbled), t0, false},
		{"truncated", a[:len(a)-1], t0, false},
		{"extended", a + "A", t0, false},
		{"padded", a + "=", t0, false},
		{"empty", "", t0, false},
		{"RFC 9449 example", "eyJ7S_zG.eyJH0-Z.HX4w-7v", t0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := n.Valid(tc.nonce, tc.at); got != tc.ok {
				t.Errorf("Valid(%q, t0%+v) = %v, want %v", tc.nonce, tc.at.Sub(t0), got, tc.ok)
			}
		})
	}
}

// TestCheckNonce runs Check with Nonces set (RFC 9449 §8, §11.3): every
// proof must carry a current nonce of the server's. Each refused proof is
// followed by the same proof, same jti, with a good nonce, which must
// pass: the refusal did not use up the jti.
func TestCheckNonce(t *testing.T) {
	const lifetime = 10 * time.Minute
	step := lifetime / 2
	n := &dpop.Nonces{Key: nonceKey, Lifetime: lifetime}
	c := newChecker(t, now)
	c.Nonces = n
	k := key(t, "ES256")
	other := &dpop.Nonces{Key: otherNonceKey, Lifetime: lifetime}
	garbled := []byte(n.Current(now))
	garbled[3] ^= 1

	for _, tc := range []struct {
		name  string
		nonce any // nil: no nonce claim
		code  string
		desc  string
	}{
		{"no nonce", nil, dpop.CodeUseNonce, "nonce is required"},
		{"other key", other.Current(now), dpop.CodeUseNonce, "invalid or expired"},
		{"garbled", string(garbled), dpop.CodeUseNonce, "invalid or expired"},
		{"empty", "", dpop.CodeUseNonce, "invalid or expired"},
		{"RFC 9449 example", "eyJ7S_zG.eyJH0-Z.HX4w-7v", dpop.CodeUseNonce, "invalid or expired"},
		{"expired", n.Current(now.Add(-lifetime - time.Second)), dpop.CodeUseNonce, "invalid or expired"},
		{"from the future", n.Current(now.Add(step)), dpop.CodeUseNonce, "invalid or expired"},
		{"not a string", 42, dpop.CodeInvalidProof, `"nonce" is not a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(k)
			if tc.nonce != nil {
				s.claims["nonce"] = tc.nonce
			}
			p, err := c.Check(ctx, s.request(t))
			wantError(t, p, err, tc.code, tc.desc)
			s.claims["nonce"] = n.Current(now)
			p, err = c.Check(ctx, s.request(t))
			wantOK(t, p, err)
		})
	}

	for _, tc := range []struct {
		name   string
		issued time.Time
	}{
		{"current", now},
		{"oldest accepted", now.Add(-lifetime)},
		{"previous step", now.Add(-step)},
	} {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			s := newSpec(k)
			s.claims["nonce"] = n.Current(tc.issued)
			p, err := c.Check(ctx, s.request(t))
			wantOK(t, p, err)
		})
	}

	t.Run("RFC 9449 round trip", func(t *testing.T) {
		// The client's first proof has no nonce; it retries with the one
		// the server sent; after that a proof without one is refused again.
		s := newSpec(k)
		p, err := c.Check(ctx, s.request(t))
		wantError(t, p, err, dpop.CodeUseNonce, "")
		s = newSpec(k)
		s.claims["nonce"] = n.Current(now)
		p, err = c.Check(ctx, s.request(t))
		wantOK(t, p, err)
		p, err = c.Check(ctx, newSpec(k).request(t))
		wantError(t, p, err, dpop.CodeUseNonce, "")
	})
}
