package password

import (
	"testing"
	"time"
)

// The benchmarks report, besides wall time, the process's CPU time per
// operation (cpu-ms/op, where the platform tells it): the figure the
// defaults are chosen by, and one that other load on the machine disturbs
// less than wall time.

func BenchmarkHash(b *testing.B) {
	bench(b, func() {
		if _, err := Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	bench(b, func() { Verify(h, "a wrong guess") })
}

// BenchmarkVerifyDummy should match BenchmarkVerify: the sign-in of an
// unknown username costs what a known one's does.
func BenchmarkVerifyDummy(b *testing.B) {
	bench(b, func() { VerifyDummy("a wrong guess") })
}

func bench(b *testing.B, f func()) {
	b.ReportAllocs()
	start := cpuTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if cpu := cpuTime() - start; cpu > 0 {
		b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(n), "cpu-ms/op")
	}
}
