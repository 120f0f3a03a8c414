package issuer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/secret"
	"github.com/sigil-sts/sigil/server"
)

// testNode is a real Sigil node on loopback, in its own data directory.
// Its issuer is http://127.0.0.1:PORT with a port picked before start, so
// a restart on the same data directory keeps the issuer (and with it the
// iss of every token issued before).
type testNode struct {
	t      testing.TB
	cfg    config.Config
	srv    *server.Server
	issuer string
	base   string // where requests go: http:// + Listen + the issuer's path
	hc     *http.Client
}

// freeAddr returns a loopback address with a port that was free a moment
// ago: listen on port 0, close, reuse. Racy in theory, fine in tests.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startNode starts a node on config.Default() with loopback listeners,
// KeysPrepublish 0 and a temporary data directory, after applying mods.
// It is shut down when the test ends.
func startNode(t testing.TB, mods ...func(*config.Config)) *testNode {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = freeAddr(t)
	cfg.AdminListen = "127.0.0.1:0"
	cfg.KeysPrepublish = 0
	for _, m := range mods {
		m(&cfg)
	}
	iss, err := url.Parse(cfg.IssuerURL())
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{t: t, cfg: cfg, issuer: cfg.IssuerURL(), base: "http://" + cfg.Listen + iss.Path, hc: &http.Client{Timeout: 10 * time.Second}}
	n.start()
	t.Cleanup(n.stop)
	return n
}

// quietLog drops the node's log output unless the test runs verbosely.
func quietLog() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (n *testNode) start() {
	n.t.Helper()
	ctx := context.Background()
	core, err := server.OpenCore(ctx, n.cfg)
	if err != nil {
		n.t.Fatalf("open core: %v", err)
	}
	// The port was free a moment ago (or was ours before a restart); retry
	// briefly in case the kernel has not released it yet.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n.srv, err = server.Start(ctx, core, quietLog())
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		core.Close()
		n.t.Fatalf("start node: %v", err)
	}
}

func (n *testNode) stop() {
	if n.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		n.t.Errorf("shutdown: %v", err)
	}
	n.srv = nil
	n.hc.CloseIdleConnections()
}

// restart shuts the node down and starts it again on the same data
// directory and address.
func (n *testNode) restart() {
	n.t.Helper()
	n.stop()
	n.start()
}

func (n *testNode) admin() *admin.Service { return n.srv.Core.Admin }

// url is the address of path on this node. It is the issuer's endpoint
// unless the test configured an issuer other than the listen address.
func (n *testNode) url(path string) string { return n.base + path }

// newClient registers a client through the admin service.
func (n *testNode) newClient(t testing.TB, spec admin.ClientSpec) *admin.ClientInfo {
	t.Helper()
	if spec.Name == "" {
		spec.Name = t.Name()
	}
	c, err := n.admin().CreateClient(context.Background(), spec)
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	return c
}

// storeClient writes a client straight to the store, past the admin
// layer's validation, with secret sec hashed as the server does: for
// checks the issuer must enforce on its own (registered claims smuggled in,
// odd ids and secrets, TTLs over the cap).
func (n *testNode) storeClient(t testing.TB, c *sigil.Client, sec string) {
	t.Helper()
	if sec != "" {
		c.SecretHash = n.srv.Core.Secrets.Hash(secret.New(sec))
	}
	if c.AuthMethod == "" {
		c.AuthMethod = sigil.AuthSecretBasic
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{sigil.GrantClientCredentials}
	}
	if err := n.srv.Core.Store.CreateClient(context.Background(), c); err != nil {
		t.Fatalf("store client: %v", err)
	}
	n.srv.Issuer.Cache.Invalidate()
}

// reply is an HTTP response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body as a JSON object, failing the test if it is not.
func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(r.body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("status %d: body is not a JSON object: %v: %q", r.status, err, r.body)
	}
	return m
}

// str returns the string member name of the JSON body.
func (r reply) str(t testing.TB, name string) string {
	t.Helper()
	s, _ := r.json(t)[name].(string)
	return s
}

func (n *testNode) do(t testing.TB, req *http.Request) reply {
	t.Helper()
	resp, err := n.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// auth is how a request authenticates: Basic credentials (encoded per
// RFC 6749 §2.3.1 unless raw), or nothing.
type auth struct {
	id, secret string
	raw        bool // send id and secret without form-encoding
}

func basic(c *admin.ClientInfo) auth { return auth{id: c.ClientID, secret: c.ClientSecret} }

// postForm POSTs form to path with the given client authentication.
func (n *testNode) postForm(t testing.TB, path string, form url.Values, a auth) reply {
	t.Helper()
	return n.postRaw(t, path, "application/x-www-form-urlencoded", form.Encode(), a)
}

func (n *testNode) postRaw(t testing.TB, path, contentType, body string, a auth) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.url(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.id != "" || a.secret != "" {
		if a.raw {
			req.SetBasicAuth(a.id, a.secret)
		} else {
			req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
		}
	}
	return n.do(t, req)
}

func (n *testNode) get(t testing.TB, path string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n.do(t, req)
}

// token gets a client_credentials access token for a Basic client, with
// extra form parameters.
func (n *testNode) token(t testing.TB, c *admin.ClientInfo, extra url.Values) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	for k, v := range extra {
		form[k] = v
	}
	r := n.postForm(t, "/token", form, basic(c))
	if r.status != http.StatusOK {
		t.Fatalf("token: status %d: %s", r.status, r.body)
	}
	tok := r.str(t, "access_token")
	if tok == "" {
		t.Fatalf("token: no access_token in %s", r.body)
	}
	return tok
}

// introspect asks the introspection endpoint about tok as caller.
func (n *testNode) introspect(t testing.TB, caller auth, tok string) reply {
	t.Helper()
	return n.postForm(t, "/introspect", url.Values{"token": {tok}}, caller)
}

// active reports whether tok introspects as active for caller, and fails
// the test on anything but a well-formed 200 answer.
func (n *testNode) active(t testing.TB, caller auth, tok string) bool {
	t.Helper()
	r := n.introspect(t, caller, tok)
	if r.status != http.StatusOK {
		t.Fatalf("introspect: status %d: %s", r.status, r.body)
	}
	switch a := r.json(t)["active"]; a {
	case true:
		return true
	case false:
		if string(r.body) != `{"active":false}` {
			t.Errorf("inactive answer = %s, want exactly {\"active\":false}", r.body)
		}
		return false
	default:
		t.Fatalf("introspect: active = %v in %s", a, r.body)
	}
	return false
}

// jwks fetches the served JWK Set with jwx.
func (n *testNode) jwks(t testing.TB) jwk.Set {
	t.Helper()
	r := n.get(t, "/.well-known/jwks.json")
	if r.status != http.StatusOK {
		t.Fatalf("jwks: status %d: %s", r.status, r.body)
	}
	set, err := jwk.Parse(r.body)
	if err != nil {
		t.Fatalf("jwx cannot parse the JWKS: %v: %s", err, r.body)
	}
	return set
}

// verifyJWX verifies tok with jwx against the served JWKS and validates
// iss, exp, nbf and iat.
func (n *testNode) verifyJWX(t testing.TB, tok string) jwt.Token {
	t.Helper()
	parsed, err := jwt.Parse([]byte(tok), jwt.WithKeySet(n.jwks(t)), jwt.WithIssuer(n.issuer), jwt.WithValidate(true))
	if err != nil {
		t.Fatalf("jwx does not verify the token: %v", err)
	}
	return parsed
}

// decodePart decodes one segment of a compact JWS (0 header, 1 claims)
// without verifying anything.
func decodePart(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	return m
}

func header(t testing.TB, tok string) map[string]any { return decodePart(t, tok, 0) }
func claims(t testing.TB, tok string) map[string]any { return decodePart(t, tok, 1) }

// num reads a JSON number member as int64.
func num(t testing.TB, m map[string]any, name string) int64 {
	t.Helper()
	v, ok := m[name].(json.Number)
	if !ok {
		t.Fatalf("%s = %#v, want a number", name, m[name])
	}
	i, err := v.Int64()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return i
}

// wantError checks an RFC 6749 §5.2 error response: status, error code,
// JSON body and Cache-Control: no-store.
func wantError(t testing.TB, r reply, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if got := r.str(t, "error"); got != code {
		t.Errorf("error = %q, want %q (body %s)", got, code, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if code == "invalid_dpop_proof" || code == "use_dpop_nonce" {
		// RFC 9449 §7.1's challenge, naming the error and the algorithms.
		want := `DPoP error="` + code + `", algs="ES256 EdDSA RS256 PS256"`
		if got := r.header.Get("WWW-Authenticate"); got != want {
			t.Errorf("WWW-Authenticate = %q, want %q", got, want)
		}
	}
}

// eventually polls cond every 20ms until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nextSecond waits until the wall clock has passed the second of at:
// revocation cutoffs and iat are whole seconds (sigil.Revocation), so a
// token issued in the same second as a revocation is covered by it.
func nextSecond(t testing.TB, at time.Time) {
	t.Helper()
	eventually(t, 3*time.Second, "the next second", func() bool { return time.Now().Unix() > at.Unix() })
}
