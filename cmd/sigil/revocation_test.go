package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/verify"
)

// countingTransport counts the requests a resource server sends the
// issuer.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestRevocationReachesResourceServer is issue 4's end-to-end check: a
// resource server built on package verify (JWKS and status lists, no
// introspection) accepts a token; the token is revoked through the CLI,
// by jti, by client and by subject; the same resource server refuses it
// within the status list ttl (1s here), and sends the issuer no request
// per token it checks.
func TestRevocationReachesResourceServer(t *testing.T) {
	const ttl = time.Second
	const rs = "https://rs.example"
	dir := filepath.Join(t.TempDir(), "data")
	n := startNode(t, "serve", "--data-dir", dir, "--keys-prepublish", "0s", "--status-list-ttl", ttl.String())
	md := discover(t, n.issuer)

	calls := &countingTransport{}
	hc := &http.Client{Transport: calls, Timeout: 10 * time.Second}
	v, err := verify.ForIssuer(context.Background(), hc, n.issuer, rs)
	if err != nil {
		t.Fatal(err)
	}
	if v.Keys.(*verify.JWKS).URL != md.JWKSURI {
		t.Fatalf("ForIssuer uses JWKS %s, the metadata names %s", v.Keys.(*verify.JWKS).URL, md.JWKSURI)
	}
	mw := &verify.Middleware{Verifier: v}
	api := httptest.NewServer(mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	defer api.Close()
	get := func(tok string) int {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, api.URL+"/things", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	type client struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	var a, b, c client
	mustCLI(t, &a, "client", "create", "--data-dir", dir, "--name", "a", "--audiences", rs, "--json")
	mustCLI(t, &b, "client", "create", "--data-dir", dir, "--name", "b", "--audiences", rs, "--json")
	mustCLI(t, &c, "client", "create", "--data-dir", dir, "--name", "c", "--audiences", rs, "--json")
	tokA1 := cliToken(t, n.issuer, a.ClientID, a.ClientSecret).AccessToken
	tokA2 := cliToken(t, n.issuer, a.ClientID, a.ClientSecret).AccessToken
	tokB := cliToken(t, n.issuer, b.ClientID, b.ClientSecret).AccessToken
	tokC := cliToken(t, n.issuer, c.ClientID, c.ClientSecret).AccessToken

	// Warm: discovery, then the first token costs a JWKS fetch and a
	// status list fetch; then a burst of requests costs nothing.
	for _, tok := range []string{tokA1, tokA2, tokB, tokC} {
		if status := get(tok); status != http.StatusNoContent {
			t.Fatalf("fresh token: status %d", status)
		}
	}
	warm := calls.n.Load()
	if warm > 3 {
		t.Fatalf("%d issuer requests to warm up, want at most 3 (metadata, JWKS, one list)", warm)
	}
	for range 200 {
		get(tokA1)
	}
	if burst := calls.n.Load() - warm; burst > 1 {
		t.Fatalf("200 requests made %d issuer requests, want none (at most one background list refresh)", burst)
	}

	// The CLI runs while the resource server is polled: a client or
	// subject revocation sets the entries at once and then waits to look
	// again for tokens still being recorded (admin.Service.Revoke), so
	// the time is counted from when the command starts.
	revokedWithin := func(what, tok string, args ...string) {
		t.Helper()
		start := time.Now()
		done := make(chan string, 1)
		go func() {
			out, errs, code := cli(t, append([]string{"revoke", "--data-dir", dir}, args...)...)
			if code != 0 {
				out = "exit " + errs
			}
			done <- fmt.Sprintf("%q after %v", out, time.Since(start).Round(time.Millisecond))
		}()
		took := eventually(t, 5*time.Second, what+" refused", func() bool { return get(tok) == http.StatusUnauthorized })
		out := <-done
		t.Logf("%s: refused %v after the command started; the command said %s", what, took.Round(time.Millisecond), out)
		if took > ttl {
			t.Errorf("%s: refused %v after the revocation, want within the status list ttl %v", what, took, ttl)
		}
	}
	_, claims := claimsOf(t, tokA1)
	revokedWithin("revoke --jti", tokA1, "--jti", claims["jti"].(string))
	if status := get(tokA2); status != http.StatusNoContent {
		t.Fatalf("another token of the same client: status %d after revoking one jti", status)
	}
	revokedWithin("revoke --client", tokA2, "--client", a.ClientID)
	revokedWithin("revoke --subject", tokB, "--subject", b.ClientID)
	if status := get(tokC); status != http.StatusNoContent {
		t.Fatalf("an unrelated client's token: status %d", status)
	}

	// A token issued after the client revocation's second is good.
	nextSecond()
	fresh := cliToken(t, n.issuer, a.ClientID, a.ClientSecret).AccessToken
	if status := get(fresh); status != http.StatusNoContent {
		t.Errorf("a token issued after revoke --client: status %d", status)
	}
}
