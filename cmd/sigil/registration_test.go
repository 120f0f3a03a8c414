package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRegistrationSettings: the registration and client metadata
// document settings reach the server from the environment, the config
// file and flags, and bad ones stop it with the setting named.
func TestServeRegistrationSettings(t *testing.T) {
	dir := t.TempDir()
	token := strings.Repeat("r", 40)
	conf := filepath.Join(dir, "sigil.yaml")
	if err := os.WriteFile(conf, []byte("registration:\n  scopes: [openid, mcp:tools]\n  audiences: https://mcp.example.com/mcp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNodeEnv(t, map[string]string{"SIGIL_REGISTRATION_TOKEN": token}, "serve",
		"--data-dir", filepath.Join(dir, "d"), "--config", conf, "--client-metadata-documents")
	status, body := httpDo(t, http.MethodGet, n.issuer+"/.well-known/openid-configuration", "", nil, "")
	var md map[string]any
	if err := json.Unmarshal([]byte(body), &md); status != http.StatusOK || err != nil {
		t.Fatalf("metadata: %d %s", status, body)
	}
	if md["registration_endpoint"] != n.issuer+"/register" || md["client_id_metadata_document_supported"] != true {
		t.Errorf("metadata: registration_endpoint %v, client_id_metadata_document_supported %v", md["registration_endpoint"], md["client_id_metadata_document_supported"])
	}
	register := func(bearer string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, n.issuer+"/register", strings.NewReader(
			`{"redirect_uris":["https://rp.example/cb"],"token_endpoint_auth_method":"none","scope":"openid mcp:tools profile"}`))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if status, _ := register(""); status != http.StatusUnauthorized {
		t.Errorf("registration without the token: %d, want 401", status)
	}
	status, got := register(token)
	if status != http.StatusCreated || got["scope"] != "openid mcp:tools" {
		t.Errorf("registration: %d %v", status, got)
	}
	// The operator sees how the client came to be.
	id, _ := got["client_id"].(string)
	out, stderr, code := cliEnv(t, nil, "client", "get", id, "--data-dir", filepath.Join(dir, "d"))
	if code != 0 || !strings.Contains(out, "by itself (RFC 7591), with an initial access token") {
		t.Errorf("sigil client get: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	// The test-only loopback allowance is announced loudly at start.
	unsafe := startNodeEnv(t, nil, "serve", "--data-dir", filepath.Join(dir, "u"),
		"--client-metadata-documents", "--client-metadata-unsafe-allow-loopback")
	if !strings.Contains(unsafe.stderr.String(), "UNSAFE: client-metadata-unsafe-allow-loopback is on") {
		t.Errorf("no warning at start with --client-metadata-unsafe-allow-loopback; stderr:\n%s", unsafe.stderr)
	}
	if strings.Contains(n.stderr.String(), "UNSAFE") {
		t.Errorf("a warning without --client-metadata-unsafe-allow-loopback; stderr:\n%s", n.stderr)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"--registration-token", "short"}, nil, 2, "registration-token"},
		{nil, map[string]string{"SIGIL_REGISTRATION_AUDIENCES": "not-a-url"}, 2, "registration-audiences"},
		{[]string{"--client-metadata-documents", "--client-metadata-ca-file", filepath.Join(dir, "missing.pem")}, nil, 1, "client-metadata-ca-file"},
		{[]string{"--client-metadata-documents", "--client-metadata-ca-file", conf}, nil, 1, "no PEM certificate"},
	} {
		args := append([]string{"serve", "--data-dir", filepath.Join(dir, "bad"), "--listen", "127.0.0.1:0", "--admin-listen", ""}, tc.args...)
		_, stderr, code := cliEnv(t, tc.env, args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("sigil %s: exit %d, stderr %q; want exit %d naming %s", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
	}
}
