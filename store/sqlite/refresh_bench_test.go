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
// 64 goroutines, each rotating a family of its own: the token read, the
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
				t := &sigil.RefreshToken{
					Hash: fmt.Sprintf("h-%d-0", i), FamilyID: fmt.Sprintf("f-%d", i), ClientID: "c1", UserID: "u1",
					Scopes: []string{"offline_access", "read"}, Audience: []string{"https://api.example.com"},
					AuthTime: now, AMR: []string{"pwd"}, ACR: "1", AccessJTI: "jti",
					CreatedAt: now, ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(24 * time.Hour),
				}
				if err := s.CreateRefresh(ctx, t); err != nil {
					b.Fatal(err)
				}
				heads <- t.Hash
			}
			var seq atomic.Int64
			b.SetParallelism(families / 2)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				head := <-heads
				for pb.Next() {
					var err error
					switch step {
					case "read":
						_, err = s.RefreshToken(ctx, head)
					case "user":
						_, err = s.User(ctx, "u1")
					case "rotate":
						next := &sigil.RefreshToken{
							Hash: fmt.Sprintf("h-%d", seq.Add(1)), ClientID: "c1", UserID: "u1",
							Scopes: []string{"offline_access", "read"}, Audience: []string{"https://api.example.com"},
							AuthTime: now, AMR: []string{"pwd"}, ACR: "1", AccessJTI: "jti",
							ExpiresAt: time.Now().Add(time.Hour),
						}
						err = s.RotateRefresh(ctx, head, next)
						head = next.Hash
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
