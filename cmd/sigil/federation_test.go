package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestServeFederationSettings: trusted issuers reach the server from the
// config file (federation.trusted-issuers, a list of mappings) and from
// the environment (JSON), and bad ones stop it with the key named.
func TestServeFederationSettings(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "sigil.yaml")
	if err := os.WriteFile(conf, []byte(`federation:
  trusted-issuers:
    - issuer: https://ci.example
      jwks-url: https://ci.example/jwks
      max-age: 10m
      rules:
        - subject: "repo:org/.*"
          client: ci-deployer
          claims: {repository: org/app}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNodeEnv(t, nil, "serve", "--data-dir", filepath.Join(dir, "d"), "--config", conf)
	status, body := httpDo(t, http.MethodGet, n.issuer+"/.well-known/oauth-authorization-server", "", nil, "")
	var md struct {
		Grants []string `json:"grant_types_supported"`
	}
	if err := json.Unmarshal([]byte(body), &md); status != http.StatusOK || err != nil {
		t.Fatalf("metadata: %d %s", status, body)
	}
	if !slices.Contains(md.Grants, "urn:ietf:params:oauth:grant-type:jwt-bearer") {
		t.Errorf("grant_types_supported = %v, lacks jwt-bearer with a trusted issuer configured", md.Grants)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"SIGIL_FEDERATION_TRUSTED_ISSUERS": `[{"issuer":"https://ci.example","jwks-url":"http://ci.example/jwks","rules":[{"subject":".*","client":"c"}]}]`},
			"federation-trusted-issuers[0].jwks-url"},
		{[]string{"--federation-trusted-issuers", `[{issuer: https://ci.example, jwks-url: "https://ci.example/jwks"}]`}, nil,
			"federation-trusted-issuers[0].rules: at least one"},
		{[]string{"--federation-trusted-issuers", `[{issuer: https://ci.example, jwks_url: x}]`}, nil, "jwks_url"},
	} {
		args := append([]string{"serve", "--data-dir", filepath.Join(dir, "bad"), "--listen", "127.0.0.1:0", "--admin-listen", ""}, tc.args...)
		_, stderr, code := cliEnv(t, tc.env, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("sigil %s (env %v): exit %d, stderr %q; want exit 2 naming %s", strings.Join(tc.args, " "), tc.env, code, stderr, tc.want)
		}
	}
}
