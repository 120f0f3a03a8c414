package token_test

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
)

func BenchmarkSign(b *testing.B) {
	f := getFixture(b)
	for _, alg := range keys.Algorithms {
		b.Run(alg, func(b *testing.B) {
			k, c := f.keys[alg], accessClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := token.Sign(k, token.TypeAccess, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse is the whole signature layer: header policy, go-jose
// structure, key lookup, VerifySignature, claims decoding.
func BenchmarkParse(b *testing.B) {
	f := getFixture(b)
	ctx := context.Background()
	for _, alg := range keys.Algorithms {
		b.Run(alg, func(b *testing.B) {
			raw := mustSign(b, f.keys[alg], token.TypeAccess, accessClaims())
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := token.Parse(ctx, raw, f.src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifySignature compares our ES256 check with go-jose's Verify
// on the same parsed token (parsing excluded from both), the figures
// BENCHMARKS.md quotes.
func BenchmarkVerifySignature(b *testing.B) {
	f := getFixture(b)
	k := f.keys["ES256"]
	raw := mustSign(b, k, token.TypeAccess, accessClaims())
	jws, err := jose.ParseSignedCompact(raw, keys.JOSEAlgorithms)
	if err != nil {
		b.Fatal(err)
	}
	hdr, payload, _ := segments(b, raw)
	input := []byte(hdr + "." + payload)
	sig := jws.Signatures[0].Signature
	b.Run("ES256/sigil", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := token.VerifySignature("ES256", k.Public, input, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ES256/go-jose", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jws.Verify(k.Public); err != nil {
				b.Fatal(err)
			}
		}
	})
}
