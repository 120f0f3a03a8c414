package issuer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/server"
)

// benchNode builds a node's public handler without listeners, with one
// client_secret_basic client.
func benchNode(b *testing.B) (http.Handler, string) {
	return benchNodeWith(b, func(*config.Config) {})
}

// benchNodeWith is benchNode with a configuration change.
func benchNodeWith(b *testing.B, configure func(*config.Config)) (http.Handler, string) {
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = ""
	configure(&cfg)
	core, err := server.OpenCore(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.Start(context.Background(), core, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	c, err := core.Admin.CreateClient(context.Background(), admin.ClientSpec{Name: "bench", Scope: "read write"})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Issuer.Mount(mux)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":"+c.ClientSecret))
	return httpx.WithRequestID(mux), auth
}

func post(h http.Handler, path, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", auth)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// BenchmarkTokenEndpoint measures one client_credentials request through
// the handler (no network): form parse, Basic auth, scope, ES256 signing.
func BenchmarkTokenEndpoint(b *testing.B) {
	h, auth := benchNode(b)
	b.ReportAllocs()
	for b.Loop() {
		if w := post(h, "/token", auth, "grant_type=client_credentials&scope=read"); w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}

// BenchmarkIntrospect measures introspection of a valid access token
// through the handler: client auth, ES256 verification, client and
// revocation lookups.
func BenchmarkIntrospect(b *testing.B) {
	h, auth := benchNode(b)
	w := post(h, "/token", auth, "grant_type=client_credentials&scope=read")
	var t struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(w.Body.Bytes(), &t)
	body := "token=" + url.QueryEscape(t.AccessToken)
	b.ReportAllocs()
	for b.Loop() {
		if w := post(h, "/introspect", auth, body); w.Code != 200 || !strings.Contains(w.Body.String(), `"active":true`) {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}

// BenchmarkIntrospectParallel is BenchmarkIntrospect from many goroutines,
// to show contention (the store's connection pool, locks).
func BenchmarkIntrospectParallel(b *testing.B) {
	h, auth := benchNode(b)
	w := post(h, "/token", auth, "grant_type=client_credentials&scope=read")
	var t struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(w.Body.Bytes(), &t)
	body := "token=" + url.QueryEscape(t.AccessToken)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := post(h, "/introspect", auth, body); w.Code != 200 {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
}

// BenchmarkTokenEndpointParallel is BenchmarkTokenEndpoint from many
// goroutines, so the audit writer batches as it does under load; with the
// audit trail on (the default) and off, for what the trail costs.
func BenchmarkTokenEndpointParallel(b *testing.B) {
	for _, on := range []bool{true, false} {
		b.Run(fmt.Sprintf("audit=%v", on), func(b *testing.B) {
			h, auth := benchNodeWith(b, func(c *config.Config) { c.AuditEnabled = on })
			b.ReportAllocs()
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if w := post(h, "/token", auth, "grant_type=client_credentials&scope=read"); w.Code != 200 {
						b.Fatal(w.Code, w.Body.String())
					}
				}
			})
		})
	}
}

// BenchmarkRefreshParallel measures the refresh-token grant with rotation
// through a real node's token endpoint over loopback, from 64 goroutines,
// each rotating a family of its own (every request is a real rotation).
// Compare BenchmarkTokenEndpointParallel.
func BenchmarkRefreshParallel(b *testing.B) {
	n := startNode(b)
	c := newRP(b, n, "client_secret_basic")
	newUser(b, n, "alice", alicePassword, nil)
	br := newBrowser(b, n)
	const families = 64
	tokens := make(chan string, families)
	for range families {
		p := newPKCE()
		resp := br.codeFor(c, c.authParams(p, "offline_access read:files"), "alice", alicePassword)
		tokens <- n.redeem(b, c, resp.Get("code"), p.verifier).str(b, "refresh_token")
	}
	b.SetParallelism(families / 2) // 64 goroutines on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rt := <-tokens
		for pb.Next() {
			r := n.refresh(b, c, rt, nil)
			if r.status != http.StatusOK {
				b.Fatalf("refresh: %d %s", r.status, r.body)
			}
			rt = r.str(b, "refresh_token")
		}
	})
}
