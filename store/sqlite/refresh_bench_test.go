package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

// BenchmarkRefreshRotation measures the refresh grant's store work from
// 64 goroutines, each rotating a family of its own: the family read, the
// user read and the rotation (grouped commits).
func BenchmarkRefreshRotation(b *testing.B) {
	for _, step := range []string{"read", "user", "rotate"} {
		b.Run(step, func(b *testing.B) {
			ctx := context.Background()
			s := openClosed(b, b.TempDir())
			now := time.Now()
			if err := s.CreateUser(ctx, &sigil.User{ID: "u1", Username: "alice", Claims: map[string]any{"department": "eng"}}); err != nil {
				b.Fatal(err)
			}
			const families = 64
			heads := make(chan string, families)
			for i := range families {
				f := &sigil.RefreshFamily{
					ID: fmt.Sprintf("f-%d", i), ClientID: "c1", UserID: "u1",
					Scopes: []string{"offline_access", "read"}, Audience: []string{"https://api.example.com"},
					AuthTime: now, AMR: []string{"pwd"}, ACR: "1", TokenHash: "h-0",
					CreatedAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour),
				}
				if err := s.CreateRefreshFamily(ctx, f, sigil.IssuedToken{JTI: "jti", ExpiresAt: now.Add(5 * time.Minute)}); err != nil {
					b.Fatal(err)
				}
				heads <- f.ID
			}
			var seq atomic.Int64
			b.SetParallelism(families / 2)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				family, generation, hash := <-heads, int64(0), "h-0"
				for pb.Next() {
					var err error
					switch step {
					case "read":
						_, err = s.RefreshFamily(ctx, family)
					case "user":
						_, err = s.User(ctx, "u1")
					case "rotate":
						n := seq.Add(1)
						next := fmt.Sprintf("h-%d", n)
						err = s.RotateRefresh(ctx, sigil.RefreshRotation{
							FamilyID: family, Generation: generation, TokenHash: hash, NextHash: next,
							IdleExpiresAt: time.Now().Add(time.Hour),
							Access:        sigil.IssuedToken{JTI: fmt.Sprintf("jti-%d", n), ExpiresAt: time.Now().Add(5 * time.Minute)},
						})
						generation, hash = generation+1, next
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
