package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodeSummary is what e2e/node/rp.mjs prints.
type nodeSummary struct {
	AllowStatus   int    `json:"allow_status"`
	CallbackISS   string `json:"callback_iss"`
	IDTokenHeader struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	} `json:"id_token_header"`
	IDToken struct {
		ISS          string `json:"iss"`
		Sub          string `json:"sub"`
		Aud          any    `json:"aud"`
		NonceMatched bool   `json:"nonce_matched"`
	} `json:"id_token"`
	TokenType string         `json:"token_type"`
	Scope     string         `json:"scope"`
	UserInfo  map[string]any `json:"userinfo"`
	Refresh   struct {
		AccessTokenChanged  bool   `json:"access_token_changed"`
		RefreshTokenRotated bool   `json:"refresh_token_rotated"`
		ReuseError          string `json:"reuse_error"`
	} `json:"refresh"`
}

// TestNodeClient runs the openid-client relying party (e2e/node/rp.mjs)
// against a real `sigil serve`, as a confidential client
// (client_secret_basic) and as a public one (none, PKCE only).
func TestNodeClient(t *testing.T) {
	node := nodeCommand(t)
	s := newSigil(t)
	s.createUser(t, alice.username, alice.password, alice.claims)
	// Nothing listens on the redirect URI: the script takes the redirect
	// to it without following it.
	redirectURI := "http://" + freeAddr(t) + "/callback"
	clients := map[string]registeredClient{
		"confidential": s.createClient(t, "node confidential", redirectURI, "client_secret_basic"),
		"public":       s.createClient(t, "node public", redirectURI, "none"),
	}
	srv := s.start(t)

	for _, name := range []string{"confidential", "public"} {
		t.Run(name, func(t *testing.T) {
			c := clients[name]
			sum := runNodeRP(t, node, map[string]string{
				"SIGIL_ISSUER":  srv.issuer,
				"CLIENT_ID":     c.ClientID,
				"CLIENT_SECRET": c.ClientSecret,
				"REDIRECT_URI":  redirectURI,
				"USERNAME":      alice.username,
				"PASSWORD":      alice.password,
			})
			if sum.AllowStatus != 303 {
				t.Errorf("Allow answered %d, want 303", sum.AllowStatus)
			}
			if sum.CallbackISS != srv.issuer || sum.IDToken.ISS != srv.issuer {
				t.Errorf("iss %q in the callback and %q in the ID token, want %q", sum.CallbackISS, sum.IDToken.ISS, srv.issuer)
			}
			if sum.IDTokenHeader.Alg != "RS256" || sum.IDTokenHeader.Typ != "JWT" {
				t.Errorf("ID token header alg %q typ %q, want RS256 and JWT", sum.IDTokenHeader.Alg, sum.IDTokenHeader.Typ)
			}
			if !sum.IDToken.NonceMatched || sum.IDToken.Sub == "" {
				t.Errorf("ID token: sub %q, nonce matched %v", sum.IDToken.Sub, sum.IDToken.NonceMatched)
			}
			if !strings.EqualFold(sum.TokenType, "Bearer") {
				t.Errorf("token_type %q, want Bearer", sum.TokenType)
			}
			if sum.UserInfo["sub"] != sum.IDToken.Sub || sum.UserInfo["email"] != "alice@example.com" || sum.UserInfo["name"] != "Alice" {
				t.Errorf("userinfo %v, want alice's claims and the ID token's sub %q", sum.UserInfo, sum.IDToken.Sub)
			}
			if !sum.Refresh.AccessTokenChanged || !sum.Refresh.RefreshTokenRotated {
				t.Errorf("refresh: new access token %v, rotated refresh token %v; want both", sum.Refresh.AccessTokenChanged, sum.Refresh.RefreshTokenRotated)
			}
			if sum.Refresh.ReuseError != "invalid_grant" {
				t.Errorf("reusing the spent refresh token gave %q, want invalid_grant", sum.Refresh.ReuseError)
			}
		})
	}
}

// nodeCommand returns the node to run e2e/node/rp.mjs with: Node.js 20 or
// newer, with the script's packages installed. It fails the test when
// either is missing.
func nodeCommand(t *testing.T) string {
	t.Helper()
	sigilBinary(t) // skips in -short mode, like every test that runs sigil
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("these tests need Node.js 20 or newer on PATH (.ci/run checks for it): %v", err)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < 20 {
		t.Fatalf("node %s: these tests need Node.js 20 or newer", v)
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "openid-client", "package.json")); err != nil {
		t.Fatalf("openid-client is not installed for e2e/node: run `npm ci --prefix e2e/node` (.ci/run does): %v", err)
	}
	return node
}

// runNodeRP runs rp.mjs with env (and PATH) and decodes its summary.
func runNodeRP(t *testing.T, node string, env map[string]string) nodeSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("node", "rp.mjs"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node rp.mjs: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.Bytes(), stdout.Bytes())
	}
	t.Logf("rp.mjs summary:\n%s", stdout.Bytes())
	var sum nodeSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("rp.mjs summary: %v\n%s", err, stdout.Bytes())
	}
	return sum
}
