package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/sigil-sts/sigil/internal/pgtest"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// TestTwoNodesOnPostgres runs two `sigil serve` processes (the real
// binary) on one PostgreSQL schema, as behind a load balancer: one issuer
// URL, one master key and one admin token (SIGIL_MASTER_KEY,
// SIGIL_ADMIN_TOKEN), a data directory each (journal). The CLI writes
// through the database too. What one node or the CLI does, the other node
// sees: clients and their secrets, revocation in introspection and in its
// status lists, key rotation in its JWKS and, after the pre-publication
// delay, in its signatures, DPoP proof jtis, and one audit chain that
// verifies.
func TestTwoNodesOnPostgres(t *testing.T) {
	bin := sigilBinary(t)
	dsn := pgtest.FreshSchema(t)
	mk, adminToken := make([]byte, 32), make([]byte, 32)
	rand.Read(mk)
	rand.Read(adminToken)
	env := map[string]string{"SIGIL_MASTER_KEY": hex.EncodeToString(mk), "SIGIL_ADMIN_TOKEN": hex.EncodeToString(adminToken)}
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	// The nodes poll for changes only every minute: what they see sooner
	// comes through LISTEN/NOTIFY (or, for keys, the one-second reload).
	const prepublish = 2 * time.Second
	common := []string{"--dsn", dsn, "--keys-prepublish", prepublish.String(), "--status-list-ttl", "1s", "--cache-refresh", "1m"}
	start := func(name string, extra ...string) *process {
		t.Helper()
		p := startServeEnv(t, bin, envList, append(append([]string{"--data-dir", filepath.Join(t.TempDir(), name), "--node-id", name}, common...), extra...)...)
		if err := waitHTTP(p.issuer+"/readyz", 20*time.Second, p.exited); err != nil {
			t.Fatalf("node %s: %v; stderr:\n%s", name, err, p.stderr)
		}
		return p
	}
	a := start("a")
	b := start("b", "--issuer", a.issuer)
	cliDir := filepath.Join(t.TempDir(), "cli")
	sigil := func(v any, args ...string) string {
		t.Helper()
		out, errs, code := cliEnv(t, env, append(args, "--dsn", dsn, "--data-dir", cliDir)...)
		if code != 0 {
			t.Fatalf("sigil %s: exit %d: %s", strings.Join(args, " "), code, errs)
		}
		if v != nil {
			if err := json.Unmarshal([]byte(out), v); err != nil {
				t.Fatalf("sigil %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		return out
	}

	// Both admin APIs take the shared admin token.
	for _, n := range []*process{a, b} {
		if status, body := httpDo(t, http.MethodGet, n.admin+"/admin/v1/clients", "", nil, env["SIGIL_ADMIN_TOKEN"]); status != http.StatusOK {
			t.Fatalf("admin API of %s with the shared token: %d %s", n.issuer, status, body)
		}
	}

	// B answers as the same issuer as A.
	var md struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	status, body := httpDo(t, http.MethodGet, b.issuer+"/.well-known/oauth-authorization-server", "", nil, "")
	if err := json.Unmarshal([]byte(body), &md); status != http.StatusOK || err != nil || md.Issuer != a.issuer {
		t.Fatalf("node b's metadata: %d %s", status, body)
	}

	// A client created through the CLI gets tokens from either node.
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	sigil(&c, "client", "create", "--name", "svc", "--scopes", "read", "--json")
	user := func() string { return url.QueryEscape(c.ClientID) + ":" + url.QueryEscape(c.ClientSecret) }
	tokenFrom := func(n *process, dpopProof string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, n.issuer+"/token", strings.NewReader("grant_type=client_credentials&scope=read"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
		if dpopProof != "" {
			req.Header.Set("DPoP", dpopProof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	introspect := func(n *process, tok string) bool {
		t.Helper()
		status, body := httpDo(t, http.MethodPost, n.issuer+"/introspect", user(), url.Values{"token": {tok}}, "")
		if status != http.StatusOK {
			t.Fatalf("introspect on %s: %d %s", n.issuer, status, body)
		}
		return strings.Contains(body, `"active":true`)
	}
	status, fromA := tokenFrom(a, "")
	if status != http.StatusOK {
		t.Fatalf("token from a: %d %v", status, fromA)
	}
	tokA := fromA["access_token"].(string)
	if !introspect(b, tokA) {
		t.Fatal("a token from node a is not active on node b")
	}

	// The secret rotated through the CLI: B, which holds the client in its
	// cache, refuses the old secret at once.
	var rotated struct {
		ClientSecret string `json:"client_secret"`
	}
	sigil(&rotated, "client", "rotate-secret", c.ClientID, "--json")
	took := eventually(t, 2*time.Second, "node b refuses the old secret", func() bool {
		status, _ := tokenFrom(b, "")
		return status == http.StatusUnauthorized
	})
	t.Logf("node b refused the old secret %v after the rotation", took.Round(time.Millisecond))
	c.ClientSecret = rotated.ClientSecret

	// Revoked through node A (RFC 7009): inactive on B at once, and
	// INVALID in the status list B serves.
	if status, body := httpDo(t, http.MethodPost, a.issuer+"/revoke", user(), url.Values{"token": {tokA}}, ""); status != http.StatusOK {
		t.Fatalf("revoke on a: %d %s", status, body)
	}
	if introspect(b, tokA) {
		t.Error("a token revoked on node a is still active on node b")
	}
	_, claims := claimsOf(t, tokA)
	ref := claims["status"].(map[string]any)["status_list"].(map[string]any)
	idx, _ := ref["idx"].(float64)
	listPath := strings.TrimPrefix(ref["uri"].(string), a.issuer)
	// B signs its lists as the shared issuer: read them as that issuer,
	// through B's address.
	viaB := &http.Client{Transport: rewriteHost{to: strings.TrimPrefix(b.issuer, "http://")}}
	onB := &verify.StatusLists{Keys: &verify.JWKS{URL: a.issuer + "/.well-known/jwks.json", Client: viaB}, Issuer: a.issuer, Client: viaB}
	err := onB.Check(context.Background(), &token.StatusListRef{Index: int64(idx), URI: a.issuer + listPath})
	if !errors.Is(err, verify.ErrRevoked) {
		t.Errorf("node b's status list for a token revoked on node a: %v, want revoked", err)
	}

	// A key rotated through the CLI is published by B (and signs there,
	// with no pre-publication delay in this test).
	var key struct {
		KID string `json:"kid"`
	}
	sigil(&key, "keys", "rotate", "--json")
	rotatedAt := time.Now()
	eventually(t, 5*time.Second, "node b publishes the rotated key", func() bool {
		_, jwks := httpDo(t, http.MethodGet, b.issuer+"/.well-known/jwks.json", "", nil, "")
		return strings.Contains(jwks, key.KID)
	})
	signsWith := func() string {
		status, out := tokenFrom(b, "")
		if status != http.StatusOK {
			t.Fatalf("token from b: %d %v", status, out)
		}
		hdr, _ := claimsOf(t, out["access_token"].(string))
		kid, _ := hdr["kid"].(string)
		return kid
	}
	if kid := signsWith(); kid == key.KID && time.Since(rotatedAt) < prepublish {
		t.Fatalf("node b signs with the rotated key %v after the rotation, before the %v pre-publication delay", time.Since(rotatedAt), prepublish)
	}
	eventually(t, 5*time.Second, "node b signs with the rotated key", func() bool { return signsWith() == key.KID })
	if took := time.Since(rotatedAt); took < prepublish {
		t.Fatalf("node b signed with the rotated key %v after the rotation, before the %v pre-publication delay", took, prepublish)
	}

	// A DPoP proof used at A is refused at B.
	proof := dpopProof(t, a.issuer+"/token")
	if status, out := tokenFrom(a, proof); status != http.StatusOK || out["token_type"] != "DPoP" {
		t.Fatalf("DPoP token from a: %d %v", status, out)
	}
	if status, out := tokenFrom(b, proof); status != http.StatusBadRequest || out["error"] != "invalid_dpop_proof" {
		t.Errorf("the same proof at node b: %d %v, want 400 invalid_dpop_proof", status, out)
	}

	// A client assertion (private_key_jwt) used at A is refused at B.
	assertionKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubJWK, err := jwk.Import(assertionKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubJWK.Set(jwk.KeyIDKey, "k1")
	pubJWK.Set(jwk.AlgorithmKey, jwa.ES256())
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	set := jwk.NewSet()
	set.AddKey(pubJWK)
	jwksJSON, _ := json.Marshal(set)
	if err := os.WriteFile(jwksFile, jwksJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	var pkc struct {
		ClientID string `json:"client_id"`
	}
	sigil(&pkc, "client", "create", "--name", "agent", "--auth-method", "private_key_jwt", "--jwks-file", jwksFile, "--json")
	assertion := clientAssertion(t, assertionKey, pkc.ClientID, md.TokenEndpoint)
	withAssertion := func(n *process, assertion string) (int, string) {
		return httpDo(t, http.MethodPost, n.issuer+"/token", "", url.Values{"grant_type": {"client_credentials"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}, "")
	}
	if status, body := withAssertion(a, assertion); status != http.StatusOK {
		t.Fatalf("client assertion at a: %d %s", status, body)
	}
	if status, body := withAssertion(b, assertion); status != http.StatusUnauthorized || !strings.Contains(body, "invalid_client") {
		t.Errorf("the same client assertion at node b: %d %s, want 401 invalid_client", status, body)
	}
	// B does authenticate the client: only the replay was refused.
	if status, body := withAssertion(b, clientAssertion(t, assertionKey, pkc.ClientID, md.TokenEndpoint)); status != http.StatusOK {
		t.Errorf("a fresh client assertion at node b: %d %s", status, body)
	}

	// Both nodes wrote one audit chain: stop them (final checkpoints) and
	// verify it.
	for _, n := range []*process{a, b} {
		if code, _ := n.stop(t, 10*time.Second); code != 0 {
			t.Fatalf("node %s exited %d; stderr:\n%s", n.issuer, code, n.stderr)
		}
	}
	var report struct {
		Intact      bool  `json:"intact"`
		Records     int64 `json:"records"`
		Checkpoints int   `json:"checkpoints"`
	}
	sigil(&report, "audit", "verify", "--json")
	if !report.Intact || report.Records < 6 || report.Checkpoints < 2 {
		t.Errorf("audit verify of the two nodes' trail: %+v; want intact, with every record and a checkpoint from each node", report)
	}
	nodes := sigil(nil, "audit", "tail", "--json")
	if !strings.Contains(nodes, `"node":"a"`) || !strings.Contains(nodes, `"node":"b"`) {
		t.Errorf("the trail lacks records of one node:\n%s", nodes)
	}
}

// rewriteHost sends every request to one host:port, keeping its URL
// otherwise: a load balancer in front of one node.
type rewriteHost struct{ to string }

func (r rewriteHost) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Host = r.to
	return http.DefaultTransport.RoundTrip(req)
}

// dpopProof makes a DPoP proof for POST htu with jwx, an independent JOSE
// library, and a fresh ES256 key.
func dpopProof(t *testing.T, htu string) string {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	jti := make([]byte, 16)
	rand.Read(jti)
	payload, _ := json.Marshal(map[string]any{"jti": hex.EncodeToString(jti), "htm": "POST", "htu": htu, "iat": time.Now().Unix()})
	h := jws.NewHeaders()
	h.Set(jws.TypeKey, "dpop+jwt")
	h.Set(jws.JWKKey, pub)
	out, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestMigratePostgres: sigil migrate --dsn prints what an empty schema
// lacks without applying it, applies it, and then has nothing to do.
func TestMigratePostgres(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	out := mustCLI(t, nil, "migrate", "--dsn", dsn, "--print")
	if !strings.Contains(out, "-- 0001_init.sql\n") || !strings.Contains(out, "-- 0002_notify.sql\n") {
		t.Fatalf("migrate --print on an empty schema:\n%s", out)
	}
	if out := mustCLI(t, nil, "migrate", "--dsn", dsn, "--print"); !strings.Contains(out, "-- 0001_init.sql") {
		t.Fatalf("--print applied the migrations: a second --print says\n%s", out)
	}
	if out := mustCLI(t, nil, "migrate", "--dsn", dsn); !strings.Contains(out, "applied 0001_init.sql\napplied 0002_notify.sql\n") {
		t.Fatalf("migrate:\n%s", out)
	}
	if out := mustCLI(t, nil, "migrate", "--dsn", dsn, "--print"); out != "-- the schema is up to date\n" {
		t.Fatalf("migrate --print after migrating:\n%s", out)
	}
}

// TestPostgresOutage: the database becomes unreachable while a node
// serves (a proxy between them cuts every connection and refuses new
// ones, as a stopped server would, without stopping the server other
// tests share). Requests that need the database fail fast with 503
// temporarily_unavailable and Retry-After; tokens the node can still
// issue from its caches are acknowledged only with their audit records in
// its journal; when the database is back the node recovers without a
// restart, and every token acknowledged during the outage is in the trail.
func TestPostgresOutage(t *testing.T) {
	proxy, dsn := pgtest.NewProxy(t, pgtest.FreshSchema(t))
	mk := make([]byte, 32)
	rand.Read(mk)
	env := map[string]string{"SIGIL_MASTER_KEY": hex.EncodeToString(mk)}
	dir := filepath.Join(t.TempDir(), "node")
	n := startNodeEnv(t, env, "serve", "--dsn", dsn, "--data-dir", dir, "--keys-prepublish", "0s")
	cliDir := filepath.Join(t.TempDir(), "cli")
	var warm, cold struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	for _, c := range []any{&warm, &cold} {
		out, errs, code := cliEnv(t, env, "client", "create", "--dsn", dsn, "--data-dir", cliDir, "--name", "c", "--json")
		if code != 0 {
			t.Fatalf("client create: %s", errs)
		}
		json.Unmarshal([]byte(out), c)
	}
	token := func(id, secret string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, n.issuer+"/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode == http.StatusOK {
			return resp.StatusCode, out["access_token"].(string), resp.Header
		}
		code, _ := out["error"].(string)
		return resp.StatusCode, code, resp.Header
	}
	status, tok, _ := token(warm.ClientID, warm.ClientSecret)
	if status != http.StatusOK {
		t.Fatalf("token before the outage: %d %s", status, tok)
	}
	introspect := func(tok string) (int, string) {
		return httpDo(t, http.MethodPost, n.issuer+"/introspect", url.QueryEscape(warm.ClientID)+":"+url.QueryEscape(warm.ClientSecret), url.Values{"token": {tok}}, "")
	}

	proxy.Down()
	start := time.Now()
	status, body := introspect(tok)
	if took := time.Since(start); status != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") || took > 5*time.Second {
		t.Fatalf("introspection with the database down: %d %s after %v; want a fast 503 temporarily_unavailable", status, body, took)
	}
	start = time.Now()
	status, code, hdr := token(cold.ClientID, cold.ClientSecret)
	if took := time.Since(start); status != http.StatusServiceUnavailable || code != "temporarily_unavailable" || hdr.Get("Retry-After") == "" || took > 5*time.Second {
		t.Fatalf("token for a client the node has not cached, database down: %d %s (Retry-After %q) after %v; want a fast 503",
			status, code, hdr.Get("Retry-After"), took)
	}
	// The cached client still gets tokens: their records wait in the
	// node's journal.
	var during []string
	for range 5 {
		status, tok, _ := token(warm.ClientID, warm.ClientSecret)
		if status == http.StatusOK {
			during = append(during, tok)
		} else if status != http.StatusServiceUnavailable {
			t.Fatalf("token for a cached client, database down: %d %s", status, tok)
		}
	}
	t.Logf("%d of 5 tokens issued during the outage", len(during))

	proxy.Up(t)
	eventually(t, 10*time.Second, "introspection works again", func() bool {
		status, _ := introspect(tok)
		return status == http.StatusOK
	})
	if status, code, _ := token(cold.ClientID, cold.ClientSecret); status != http.StatusOK {
		t.Fatalf("token for the other client after the outage: %d %s", status, code)
	}
	// Every token acknowledged during the outage reaches the trail.
	for _, tok := range during {
		_, claims := claimsOf(t, tok)
		jti := claims["jti"].(string)
		eventually(t, 10*time.Second, "the record of "+jti+" in the trail", func() bool {
			out, _, code := cliEnv(t, env, "audit", "tail", "--dsn", dsn, "--data-dir", cliDir, "--json", "-n", "1000")
			return code == 0 && strings.Contains(out, jti)
		})
	}
	n.stop(t)
	var report struct {
		Intact bool `json:"intact"`
	}
	out, errs, exit := cliEnv(t, env, "audit", "verify", "--dsn", dsn, "--data-dir", cliDir, "--json")
	if err := json.Unmarshal([]byte(out), &report); exit != 0 || err != nil || !report.Intact {
		t.Fatalf("audit verify after the outage: exit %d %s %s", exit, out, errs)
	}
}

// clientAssertion signs an RFC 7523 client assertion for clientID with
// jwx, kid k1.
func clientAssertion(t *testing.T, key *ecdsa.PrivateKey, clientID, aud string) string {
	t.Helper()
	jti := make([]byte, 16)
	rand.Read(jti)
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "jti": hex.EncodeToString(jti),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	h := jws.NewHeaders()
	h.Set(jws.KeyIDKey, "k1")
	out, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestPostgresBlackHole: the database stops answering without refusing
// anything (a partition: connections open, bytes dropped). Requests that
// wait on it fail with 503 once the request timeout (1s here) has passed,
// rather than hang; the node recovers when the database answers again.
func TestPostgresBlackHole(t *testing.T) {
	proxy, dsn := pgtest.NewProxy(t, pgtest.FreshSchema(t))
	mk := make([]byte, 32)
	rand.Read(mk)
	env := map[string]string{"SIGIL_MASTER_KEY": hex.EncodeToString(mk)}
	n := startNodeEnv(t, env, "serve", "--dsn", dsn, "--data-dir", filepath.Join(t.TempDir(), "node"), "--request-timeout", "1s")
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	out, errs, code := cliEnv(t, env, "client", "create", "--dsn", dsn, "--data-dir", filepath.Join(t.TempDir(), "cli"), "--name", "c", "--json")
	if code != 0 {
		t.Fatal(errs)
	}
	json.Unmarshal([]byte(out), &c)
	user := url.QueryEscape(c.ClientID) + ":" + url.QueryEscape(c.ClientSecret)
	status, body := httpDo(t, http.MethodPost, n.issuer+"/token", user, url.Values{"grant_type": {"client_credentials"}}, "")
	if status != http.StatusOK {
		t.Fatalf("token: %d %s", status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal([]byte(body), &tr)

	proxy.Freeze()
	start := time.Now()
	status, body = httpDo(t, http.MethodPost, n.issuer+"/introspect", user, url.Values{"token": {tr.AccessToken}}, "")
	took := time.Since(start)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") || took > 5*time.Second {
		t.Fatalf("introspection with the database a black hole: %d %s after %v; want 503 temporarily_unavailable after about the 1s request timeout", status, body, took)
	}
	t.Logf("503 after %v", took.Round(time.Millisecond))
	proxy.Thaw()
	eventually(t, 10*time.Second, "introspection works again", func() bool {
		status, _ := httpDo(t, http.MethodPost, n.issuer+"/introspect", user, url.Values{"token": {tr.AccessToken}}, "")
		return status == http.StatusOK
	})
}

// TestPostgresHostileClientID: text PostgreSQL cannot hold (a NUL,
// invalid UTF-8) in an unauthenticated client_id is refused like any
// unknown client, and its audit record is written: the trail does not
// stall on it, tokens keep being issued, and the journal recovers.
func TestPostgresHostileClientID(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	mk := make([]byte, 32)
	rand.Read(mk)
	env := map[string]string{"SIGIL_MASTER_KEY": hex.EncodeToString(mk)}
	dir := filepath.Join(t.TempDir(), "node")
	n := startNodeEnv(t, env, "serve", "--dsn", dsn, "--data-dir", dir, "--audit-queue", "4")
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	cliDir := filepath.Join(t.TempDir(), "cli")
	out, errs, code := cliEnv(t, env, "client", "create", "--dsn", dsn, "--data-dir", cliDir, "--name", "c", "--json")
	if code != 0 {
		t.Fatal(errs)
	}
	json.Unmarshal([]byte(out), &c)
	for _, id := range []string{"\x00", "a\xffb", strings.Repeat("é", 200)} {
		status, body := httpDo(t, http.MethodPost, n.issuer+"/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {"x"}}, "")
		if status != http.StatusUnauthorized {
			t.Fatalf("client_id %q: %d %s, want 401", id, status, body)
		}
	}
	// More tokens than the audit queue holds: the writer must be moving.
	for i := range 12 {
		if status, body := httpDo(t, http.MethodPost, n.issuer+"/token", url.QueryEscape(c.ClientID)+":"+url.QueryEscape(c.ClientSecret),
			url.Values{"grant_type": {"client_credentials"}}, ""); status != http.StatusOK {
			t.Fatalf("token %d after the hostile requests: %d %s", i, status, body)
		}
	}
	n.stop(t)
	if out, errs, code := cliEnv(t, env, "audit", "verify", "--dsn", dsn, "--data-dir", dir); code != 0 {
		t.Fatalf("audit verify (recovering the node's journal): exit %d: %s %s", code, out, errs)
	}
}
