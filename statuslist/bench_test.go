package statuslist_test

import (
	"context"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/token"
)

// BenchmarkAllocate is the per-token cost on the issuer's hot path: an
// entry from the leased list, with the lease renewals (a store write
// every 2^19 tokens) amortised in, from parallel goroutines.
func BenchmarkAllocate(b *testing.B) {
	a := &statuslist.Allocator{Store: openStore(b), Holder: "bench", BaseURI: baseURI, Retention: time.Hour}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Allocate(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPublish builds and signs the Status List Token of a full-size
// list (2^20 entries) with 10,000 revoked entries: what the issuer does
// when a list has changed and a relying party asks for it.
func BenchmarkPublish(b *testing.B) {
	st := openStore(b)
	a := &statuslist.Allocator{Store: st, Holder: "bench", BaseURI: baseURI, Retention: time.Hour, Now: func() time.Time { return t0 }}
	jtis := make([]string, 10_000)
	var list uint32
	for i := range jtis {
		e, err := a.Allocate(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		list = e.List
		jtis[i] = token.NewStatusJTI(t0, e.List, e.Index)
	}
	if _, err := statuslist.Invalidate(context.Background(), st, jtis...); err != nil {
		b.Fatal(err)
	}
	p := &statuslist.Publisher{Store: st, Keys: newKeys(b, st), Issuer: "https://issuer.example", BaseURI: baseURI}
	now := t0
	p.Now = func() time.Time { return now }
	var size int
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Hour) // past TTL/2: every call builds afresh
		tok, err := p.Token(context.Background(), int64(list))
		if err != nil {
			b.Fatal(err)
		}
		size = len(tok)
	}
	b.ReportMetric(float64(size), "bytes")
	_ = sigil.StatusInvalid
}
