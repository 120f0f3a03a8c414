package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// BenchmarkVerify measures what issue 4 compares: a resource server's
// check of an ES256 access token (signature, header rules, claims; keys
// in memory) against a bare ES256 signature verification of the same
// signing input, in one run; and the middleware with a DPoP-bound token
// and its proof (the proof's own ES256 verification, its jti in a
// MemoryReplay). Report the sub-benchmarks' ratio.
func BenchmarkVerify(b *testing.B) {
	iss := getIssuer(b)
	k := iss.key(b, "ES256")
	at := t0.Add(time.Minute)
	// A token as Sigil issues them, with a status list entry; every
	// sub-benchmark checks these bytes.
	raw := iss.mint(b, "ES256", token.TypeAccess, func(c *token.Claims) {
		c.Status = &token.Status{List: &token.StatusListRef{Index: 12345, URI: testIssuer + "/statuslists/1"}}
	})
	v := &verify.Verifier{
		Keys:     verify.KeySet{k.ID: {Public: k.Public, Alg: k.Alg}},
		Issuer:   testIssuer,
		Audience: testAudience,
		Now:      func() time.Time { return at },
	}
	ctx := context.Background()

	b.Run("bare-ES256", func(b *testing.B) {
		dot := strings.LastIndexByte(raw, '.')
		sig, err := b64.DecodeString(raw[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		pub := k.Public.(*ecdsa.PublicKey)
		b.ReportAllocs()
		for b.Loop() {
			h := sha256.Sum256([]byte(raw[:dot]))
			if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
				b.Fatal("signature does not verify")
			}
		}
	})
	b.Run("Verifier", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verifier-StatusList", func(b *testing.B) {
		// The same check with the token's status list entry read from a
		// warm cache: the list is fetched (through an in-memory transport)
		// before the timer starts.
		list := statusListToken(b, iss, at)
		withStatus := *v
		withStatus.Status = &verify.StatusLists{Keys: v.Keys, Issuer: testIssuer, Now: v.Now,
			Client: &http.Client{Transport: serveBody(list)}}
		if _, err := withStatus.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := withStatus.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Middleware-DPoP", func(b *testing.B) {
		pk := newProofKey(b)
		bound := iss.mint(b, "ES256", token.TypeAccess, func(c *token.Claims) { c.Confirmation = &token.Confirmation{JKT: pk.jkt} })
		now := func() time.Time { return at }
		m := &verify.Middleware{Verifier: v, DPoP: &dpop.Checker{Replay: &verify.MemoryReplay{Now: now}, Now: now}}
		m.URI = func(*http.Request) string { return resourceURL }
		h := m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		// Proofs are made (with jwx) before the timer: the client's work.
		proofs := make([]string, 0, 4096)
		for range cap(proofs) {
			proofs = append(proofs, pk.proof(b, "GET", resourceURL, bound, at))
		}
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if i == len(proofs) {
				b.StopTimer()
				for j := range proofs {
					proofs[j] = pk.proof(b, "GET", resourceURL, bound, at)
				}
				i = 0
				b.StartTimer()
			}
			r := httptest.NewRequest("GET", resourceURL, nil)
			r.Header.Set("Authorization", "DPoP "+bound)
			r.Header.Set("DPoP", proofs[i])
			i++
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d: %v", w.Code, w.Header())
			}
		}
	})
}

// statusListToken signs a 2^20-entry list for testIssuer's list 1, valid
// at at, with the shared issuer's ES256 key.
func statusListToken(tb testing.TB, iss *issuer, at time.Time) string {
	tb.Helper()
	l, err := statuslist.New(1, statuslist.DefaultSize)
	if err != nil {
		tb.Fatal(err)
	}
	l.Set(7, 1)
	j, err := l.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := token.Sign(iss.key(tb, "ES256"), statuslist.TokenType, &token.Claims{
		Issuer: testIssuer, Subject: testIssuer + "/statuslists/1", IssuedAt: token.NewNumericDate(at),
		Expiry: token.NewNumericDate(at.Add(time.Hour)), Extra: map[string]any{"ttl": 3600, "status_list": j},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// serveBody is a transport that answers every request with body.
type serveBody string

func (s serveBody) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {statuslist.MediaType}},
		Body: io.NopCloser(strings.NewReader(string(s))), Request: r}, nil
}
