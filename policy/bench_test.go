package policy_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/policy"
)

// BenchmarkEvaluate evaluates the 40 Todo interop requests in turn,
// in process, on each engine (the target: Cedar p50 under 20 µs).
func BenchmarkEvaluate(b *testing.B) {
	f := loadDecisions(b)
	reqs := make([]policy.Request, len(f.Evaluation))
	for i, c := range f.Evaluation {
		r, err := policy.DecodeRequest(c.Request, policy.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = r
	}
	ctx := context.Background()
	all := engines(b)
	for _, name := range []string{"cedar", "rego"} {
		e := all[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			// Each evaluation is timed too, for the percentiles the
			// issue's target is stated in; the clock reads add about
			// 50 ns to ns/op.
			var lat []time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				if _, err := e.Evaluate(ctx, reqs[i%len(reqs)]); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// BenchmarkEvaluateBatch100 decodes and evaluates one AuthZEN evaluations
// request of 100 items (the target: under 1 ms).
func BenchmarkEvaluateBatch100(b *testing.B) {
	body := []byte(`{"subject":{"type":"user","id":"CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"},"action":{"name":"can_update_todo"},"evaluations":[`)
	for i := range 100 {
		if i > 0 {
			body = append(body, ',')
		}
		owner := "rick@the-citadel.com"
		if i%2 == 1 {
			owner = "morty@the-citadel.com"
		}
		body = fmt.Appendf(body, `{"resource":{"type":"todo","id":"todo-%d","properties":{"ownerID":%q}}}`, i, owner)
	}
	body = append(body, "]}"...)
	ctx := context.Background()
	all := engines(b)
	for _, name := range []string{"cedar", "rego"} {
		e := all[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				batch, err := policy.DecodeEvaluations(body, policy.Limits{})
				if err != nil {
					b.Fatal(err)
				}
				ds, err := policy.EvaluateBatch(ctx, e, batch)
				if err != nil || len(ds) != 100 || ds[0].Allow || !ds[1].Allow {
					b.Fatalf("batch: %v, %d decisions", err, len(ds))
				}
			}
		})
	}
}
