package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cli runs one sigil command line in-process, with no environment, and
// returns its stdout, stderr and exit status.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cliEnv(t, nil, args...)
}

// cliEnv is cli with environment variables.
func cliEnv(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb strings.Builder
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code = m.Run(context.Background(), args)
	return out.String(), errb.String(), code
}

// mustCLI is cli that fails the test unless the command exits 0, and
// decodes its stdout into v when v is not nil.
func mustCLI(t *testing.T, v any, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, args...)
	if code != 0 {
		t.Fatalf("sigil %s: exit %d; stderr: %s", strings.Join(args, " "), code, errs)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("sigil %s: stdout is not the JSON expected: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return out
}

// node is a `sigil serve` or `sigil dev` running in-process.
type node struct {
	issuer, admin string
	stdout        *syncBuffer
	stderr        *syncBuffer
	cancel        context.CancelFunc
	exited        chan int      // receives Run's result once (for waitHTTP)
	done          chan struct{} // closed when Run has returned
	code          int           // Run's result, once done is closed
}

// startNode runs `sigil CMD --listen … --admin-listen … ARGS…` in a
// goroutine on free loopback ports and waits for /readyz.
func startNode(t *testing.T, cmd string, args ...string) *node {
	t.Helper()
	return startNodeEnv(t, nil, cmd, args...)
}

// startNodeEnv is startNode with environment variables.
func startNodeEnv(t *testing.T, env map[string]string, cmd string, args ...string) *node {
	t.Helper()
	pub, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	adm, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{issuer: "http://" + pub, admin: "http://" + adm, stdout: new(syncBuffer), stderr: new(syncBuffer), cancel: cancel, exited: make(chan int, 1), done: make(chan struct{})}
	m := &Main{Stdin: strings.NewReader(""), Stdout: n.stdout, Stderr: n.stderr, Getenv: func(k string) string { return env[k] }}
	argv := append([]string{cmd, "--listen", pub, "--admin-listen", adm}, args...)
	go func() {
		n.code = m.Run(ctx, argv)
		close(n.done)
		n.exited <- n.code
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.done:
		case <-time.After(20 * time.Second):
			t.Errorf("sigil %s did not stop", cmd)
		}
	})
	if err := waitHTTP(n.issuer+"/readyz", 20*time.Second, n.exited); err != nil {
		t.Fatalf("%v; stderr:\n%s", err, n.stderr)
	}
	return n
}

// stop cancels the node's context, as SIGTERM does, and checks that Run
// returns 0 within a few seconds.
func (n *node) stop(t *testing.T) {
	t.Helper()
	start := time.Now()
	n.cancel()
	select {
	case <-n.done:
		if n.code != 0 {
			t.Fatalf("Run returned %d after cancel, want 0; stderr:\n%s", n.code, n.stderr)
		}
		t.Logf("Run returned 0 %v after cancel", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return within 10s of cancel; stderr:\n%s", n.stderr)
	}
}

// metadata is the part of the RFC 8414 metadata the tests use.
type metadata struct {
	Issuer                string `json:"issuer"`
	TokenEndpoint         string `json:"token_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

func discover(t *testing.T, issuer string) metadata {
	t.Helper()
	var md metadata
	status, body := httpDo(t, http.MethodGet, issuer+"/.well-known/oauth-authorization-server", "", nil, "")
	if status != http.StatusOK {
		t.Fatalf("metadata: %d %s", status, body)
	}
	if err := json.Unmarshal([]byte(body), &md); err != nil {
		t.Fatal(err)
	}
	if md.Issuer != issuer || md.TokenEndpoint == "" || md.IntrospectionEndpoint == "" {
		t.Fatalf("metadata lacks issuer %q, token_endpoint or introspection_endpoint: %s", issuer, body)
	}
	return md
}

// httpDo sends one request; user (id:secret) is sent as HTTP Basic after
// form-encoding both parts (RFC 6749 §2.3.1); bearer as a Bearer token.
func httpDo(t *testing.T, method, u, user string, form url.Values, bearer string) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if id, secret, ok := strings.Cut(user, ":"); ok {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// active introspects tok as client id:secret and reports "active".
func active(t *testing.T, md metadata, id, secret, tok string) bool {
	t.Helper()
	status, body := httpDo(t, http.MethodPost, md.IntrospectionEndpoint, id+":"+secret, url.Values{"token": {tok}}, "")
	if status != http.StatusOK {
		t.Fatalf("introspect: %d %s", status, body)
	}
	var r struct {
		Active *bool `json:"active"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Active == nil {
		t.Fatalf("introspect: no active member in %s (%v)", body, err)
	}
	if !*r.Active && strings.TrimSpace(body) != `{"active":false}` {
		t.Errorf("introspect: an inactive token must read {\"active\":false} and nothing more, got %s", body)
	}
	return *r.Active
}

// tokenResponse is what `sigil token --json` prints.
type tokenResponse struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresIn   *int64  `json:"expires_in"`
	Scope       *string `json:"scope"`
}

func cliToken(t *testing.T, issuer, id, secret string, extra ...string) tokenResponse {
	t.Helper()
	var tr tokenResponse
	mustCLI(t, &tr, append([]string{"token", "--issuer", issuer, "--client-id", id, "--client-secret", secret, "--json"}, extra...)...)
	return tr
}

// claimsOf decodes a JWT's header and payload without verifying it.
func claimsOf(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// tamper returns tok with one claim changed and the signature kept.
func tamper(t *testing.T, tok, claim string, value any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	_, claims := claimsOf(t, tok)
	claims[claim] = value
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %#o, want %#o", path, got, want)
	}
}

// nextSecond sleeps into the next whole second: revocation cutoffs and
// iat are whole seconds, so a token issued in the second of a revocation
// counts as revoked.
func nextSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 10*time.Millisecond).Sub(now))
}

// eventually polls cond every 20ms until it holds or d has passed, and
// returns how long it took.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestServe runs `sigil serve` in-process and drives it with the CLI (in
// the same process, on the same store) and with plain HTTP.
func TestServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	n := startNode(t, "serve", "--data-dir", dir, "--keys-prepublish", "0s")

	if status, body := httpDo(t, http.MethodGet, n.issuer+"/healthz", "", nil, ""); status != http.StatusOK {
		t.Fatalf("healthz: %d %s", status, body)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, "admin-token"), 0o600)
	checkMode(t, filepath.Join(dir, "sigil.db"), 0o600)
	checkMode(t, filepath.Join(dir, "master-key"), 0o600)

	// The admin API takes the token from DIR/admin-token as a Bearer token.
	adminToken, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := httpDo(t, http.MethodGet, n.admin+"/admin/v1/clients", "", nil, ""); status != http.StatusUnauthorized {
		t.Errorf("admin API without the token: %d, want 401", status)
	}
	if status, body := httpDo(t, http.MethodGet, n.admin+"/admin/v1/clients", "", nil, strings.TrimSpace(string(adminToken))); status != http.StatusOK {
		t.Errorf("admin API with the token: %d %s", status, body)
	}

	md := discover(t, n.issuer)

	// A client created through the CLI while the server runs.
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	mustCLI(t, &c, "client", "create", "--data-dir", dir, "--name", "svc", "--scopes", "read write", "--default-scopes", "read", "--json")
	if c.ClientID == "" || c.ClientSecret == "" {
		t.Fatalf("client create: no client_id or client_secret: %+v", c)
	}

	t.Run("token", func(t *testing.T) {
		tr := cliToken(t, n.issuer, c.ClientID, c.ClientSecret)
		if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "Bearer") || tr.ExpiresIn == nil || *tr.ExpiresIn <= 0 || *tr.ExpiresIn > 300 || tr.Scope == nil || *tr.Scope != "read" {
			t.Fatalf("sigil token --json: %+v, want access_token, token_type Bearer, expires_in in (0, 300], scope read", tr)
		}
		_, claims := claimsOf(t, tr.AccessToken)
		if claims["iss"] != n.issuer || claims["client_id"] != c.ClientID {
			t.Errorf("claims %v: want iss %s and client_id %s", claims, n.issuer, c.ClientID)
		}
		tr = cliToken(t, n.issuer, c.ClientID, c.ClientSecret, "--scope", "read write")
		if tr.Scope == nil || *tr.Scope != "read write" {
			t.Errorf("--scope 'read write': scope %v", tr.Scope)
		}
	})

	t.Run("decode", func(t *testing.T) {
		tok := cliToken(t, n.issuer, c.ClientID, c.ClientSecret).AccessToken
		out, errs, code := cli(t, "decode", "--issuer", n.issuer, tok)
		if code != 0 || !strings.Contains(out, "signature: valid") {
			t.Fatalf("decode --issuer of a good token: exit %d, stdout:\n%s\nstderr: %s", code, out, errs)
		}
		for _, bad := range []struct{ name, tok string }{
			{"scope raised", tamper(t, tok, "scope", "read write admin")},
			{"expiry extended", tamper(t, tok, "exp", 4102444800)},
			{"signature cut", tok[:len(tok)-4]},
		} {
			out, errs, code := cli(t, "decode", "--issuer", n.issuer, bad.tok)
			if code != 1 || !strings.Contains(out, "INVALID") || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "sigil: ") {
				t.Errorf("decode --issuer of a token with its %s: exit %d (want 1), stdout:\n%s\nstderr: %q", bad.name, code, out, errs)
			}
		}
	})

	t.Run("revoke jti", func(t *testing.T) {
		tok := cliToken(t, n.issuer, c.ClientID, c.ClientSecret).AccessToken
		other := cliToken(t, n.issuer, c.ClientID, c.ClientSecret).AccessToken
		if !active(t, md, c.ClientID, c.ClientSecret, tok) {
			t.Fatal("a new token introspects as inactive")
		}
		_, claims := claimsOf(t, tok)
		jti, _ := claims["jti"].(string)
		if jti == "" {
			t.Fatalf("token has no jti: %v", claims)
		}
		mustCLI(t, nil, "revoke", "--data-dir", dir, "--jti", jti)
		if active(t, md, c.ClientID, c.ClientSecret, tok) {
			t.Error("token still active right after sigil revoke --jti")
		}
		if !active(t, md, c.ClientID, c.ClientSecret, other) {
			t.Error("revoking one jti made another token of the client inactive")
		}
	})

	t.Run("revoke client", func(t *testing.T) {
		nextSecond()
		var toks []string
		for range 3 {
			toks = append(toks, cliToken(t, n.issuer, c.ClientID, c.ClientSecret).AccessToken)
		}
		mustCLI(t, nil, "revoke", "--data-dir", dir, "--client", c.ClientID)
		for i, tok := range toks {
			if active(t, md, c.ClientID, c.ClientSecret, tok) {
				t.Errorf("token %d still active right after sigil revoke --client", i)
			}
		}
		// The client stays usable: a token issued after the revocation's
		// second is active.
		nextSecond()
		tok := cliToken(t, n.issuer, c.ClientID, c.ClientSecret).AccessToken
		if !active(t, md, c.ClientID, c.ClientSecret, tok) {
			t.Error("a token issued after sigil revoke --client is inactive")
		}
	})

	t.Run("rotate secret", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}}
		if status, body := httpDo(t, http.MethodPost, md.TokenEndpoint, c.ClientID+":"+c.ClientSecret, form, ""); status != http.StatusOK {
			t.Fatalf("token with the current secret: %d %s", status, body)
		}
		var r struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		mustCLI(t, &r, "client", "rotate-secret", c.ClientID, "--data-dir", dir, "--json")
		if r.ClientID != c.ClientID || r.ClientSecret == "" || r.ClientSecret == c.ClientSecret {
			t.Fatalf("rotate-secret: %+v, want a new secret for %s", r, c.ClientID)
		}
		took := eventually(t, time.Second, "the old secret stops working", func() bool {
			status, _ := httpDo(t, http.MethodPost, md.TokenEndpoint, c.ClientID+":"+c.ClientSecret, form, "")
			return status == http.StatusUnauthorized
		})
		t.Logf("old secret refused %v after rotate-secret", took.Round(time.Millisecond))
		if status, body := httpDo(t, http.MethodPost, md.TokenEndpoint, c.ClientID+":"+r.ClientSecret, form, ""); status != http.StatusOK {
			t.Fatalf("token with the new secret: %d %s", status, body)
		}
		c.ClientSecret = r.ClientSecret
	})

	t.Run("keys rotate", func(t *testing.T) {
		old := cliToken(t, n.issuer, c.ClientID, c.ClientSecret).AccessToken
		oldHeader, _ := claimsOf(t, old)
		var k struct{ KID, Alg, State string }
		mustCLI(t, &k, "keys", "rotate", "--data-dir", dir, "--json")
		if k.State != "next" || k.Alg != "ES256" {
			t.Fatalf("keys rotate: %+v, want an ES256 key in state next", k)
		}
		// With keys.prepublish 0s the server promotes it at its next key
		// refresh, and retires the old key.
		eventually(t, 10*time.Second, "the new key becomes active", func() bool {
			var ks []struct{ KID, Alg, State string }
			mustCLI(t, &ks, "keys", "list", "--data-dir", dir, "--json")
			states := map[string]string{}
			for _, x := range ks {
				states[x.KID] = x.State
			}
			return states[k.KID] == "active" && states[oldHeader["kid"].(string)] == "retired"
		})
		eventually(t, 5*time.Second, "tokens are signed with the new key", func() bool {
			h, _ := claimsOf(t, cliToken(t, n.issuer, c.ClientID, c.ClientSecret).AccessToken)
			return h["kid"] == k.KID
		})
		// A token signed by the retired key still verifies: retired keys
		// stay published.
		if out, errs, code := cli(t, "decode", "--issuer", n.issuer, old); code != 0 {
			t.Errorf("decode of a token signed by the retired key: exit %d\n%s%s", code, out, errs)
		}
		if !active(t, md, c.ClientID, c.ClientSecret, old) {
			t.Error("a token signed by the retired key introspects as inactive")
		}
	})

	n.stop(t)
	if !strings.Contains(n.stderr.String(), "shutting down") {
		t.Errorf("serve did not log its shutdown:\n%s", n.stderr)
	}
	// After the shutdown nothing listens.
	if _, err := (&http.Client{Timeout: time.Second}).Get(n.issuer + "/healthz"); err == nil {
		t.Error("the public listener still answers after Run returned")
	}
}

// devOutput is what `sigil dev` prints.
type devOutput struct {
	issuer, clientID, clientSecret string
	curlUser, curlURL              string
	curlData                       []string
}

var (
	devIssuer = regexp.MustCompile(`(?m)^\s+issuer\s+(http://\S+)$`)
	devID     = regexp.MustCompile(`(?m)^\s+client_id\s+(\S+)$`)
	devSecret = regexp.MustCompile(`(?m)^\s+client_secret\s+(\S+)$`)
	devCurl   = regexp.MustCompile(`(?m)^\s*curl (.*)$`)
	curlUser  = regexp.MustCompile(`-u '([^']*)'`)
	curlData  = regexp.MustCompile(`-d (\S+)`)
	curlURL   = regexp.MustCompile(`(https?://\S+)\s*$`)
)

func parseDev(t *testing.T, out string) devOutput {
	t.Helper()
	var d devOutput
	for _, f := range []struct {
		re  *regexp.Regexp
		dst *string
	}{{devIssuer, &d.issuer}, {devID, &d.clientID}, {devSecret, &d.clientSecret}} {
		m := f.re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("sigil dev output has no %s line:\n%s", f.re, out)
		}
		*f.dst = m[1]
	}
	m := devCurl.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sigil dev output has no curl line:\n%s", out)
	}
	curl := m[1]
	u, url := curlUser.FindStringSubmatch(curl), curlURL.FindStringSubmatch(curl)
	if u == nil || url == nil {
		t.Fatalf("curl line has no -u 'ID:SECRET' or URL: %s", curl)
	}
	d.curlUser, d.curlURL = u[1], url[1]
	for _, m := range curlData.FindAllStringSubmatch(curl, -1) {
		d.curlData = append(d.curlData, m[1])
	}
	return d
}

// curlToken sends the request the printed curl line sends: HTTP Basic with
// the -u value as is, and the -d values joined with "&" as a form body.
func curlToken(t *testing.T, d devOutput) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.curlURL, strings.NewReader(strings.Join(d.curlData, "&")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(d.curlUser)))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDev runs `sigil dev` twice in a fresh working directory: it keeps
// its store in ./.sigil, prints what a first try needs, and the printed
// curl gets a token; the second start keeps the client and gives it a new
// secret.
func TestDev(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)

	runDev := func() devOutput {
		n := startNode(t, "dev")
		eventually(t, 5*time.Second, "sigil dev prints its banner", func() bool {
			return strings.Contains(n.stdout.String(), "curl ")
		})
		out := n.stdout.String()
		d := parseDev(t, out)
		if d.issuer != n.issuer {
			t.Errorf("dev prints issuer %s, want %s", d.issuer, n.issuer)
		}
		if d.curlUser != d.clientID+":"+d.clientSecret {
			t.Errorf("curl -u %q does not use the printed client_id and client_secret", d.curlUser)
		}
		if !strings.HasPrefix(d.curlURL, n.issuer+"/") {
			t.Errorf("curl URL %s is not under the issuer %s", d.curlURL, n.issuer)
		}
		status, body := curlToken(t, d)
		if status != http.StatusOK {
			t.Fatalf("the printed curl: %d %s", status, body)
		}
		var tr struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
		}
		if err := json.Unmarshal([]byte(body), &tr); err != nil || tr.AccessToken == "" {
			t.Fatalf("the printed curl: no access_token in %s (%v)", body, err)
		}
		signInDemo(t, n.issuer, out)
		n.stop(t)
		return d
	}

	first := runDev()
	checkMode(t, filepath.Join(wd, ".sigil"), 0o700)
	checkMode(t, filepath.Join(wd, ".sigil", "sigil.db"), 0o600)
	checkMode(t, filepath.Join(wd, ".sigil", "admin-token"), 0o600)

	second := runDev()
	if second.clientID != first.clientID {
		t.Errorf("second start: client_id %s, want the same client %s", second.clientID, first.clientID)
	}
	if second.clientSecret == first.clientSecret {
		t.Error("second start printed the same secret; want a new one")
	}

	// The store is the one in ./.sigil: the CLI finds the demo client
	// there by default.
	var cs []struct {
		ClientID string `json:"client_id"`
	}
	mustCLI(t, &cs, "client", "list", "--json")
	if len(cs) != 1 || cs[0].ClientID != first.clientID {
		t.Errorf("client list in ./.sigil: %+v, want just %s", cs, first.clientID)
	}
}

var (
	devUsername = regexp.MustCompile(`(?m)^\s+username\s+(\S+)$`)
	devPassword = regexp.MustCompile(`(?m)^\s+password\s+(\S+)$`)
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
)

// signInDemo signs in on the account page with the demo user sigil dev
// printed, as a browser would: the page's form, its CSRF cookie, and the
// redirect back to the account page.
func signInDemo(t *testing.T, issuer, out string) {
	t.Helper()
	u, p := devUsername.FindStringSubmatch(out), devPassword.FindStringSubmatch(out)
	if u == nil || p == nil {
		t.Fatalf("sigil dev output has no demo username and password:\n%s", out)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Get(issuer + "/account")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"username": {u[1]}, "password": {p[1]}}
	for _, m := range hiddenField.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	resp, err = c.PostForm(issuer+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Signed in as <strong>"+u[1]+"</strong>") {
		t.Errorf("signing in as the printed demo user: %d %.300s", resp.StatusCode, body)
	}
}
