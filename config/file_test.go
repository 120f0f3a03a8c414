package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sigil.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want map[string]string
	}{
		{
			name: "flat",
			yaml: "data-dir: /var/lib/sigil\nlisten: 0.0.0.0:8080\n",
			want: map[string]string{"data-dir": "/var/lib/sigil", "listen": "0.0.0.0:8080"},
		},
		{
			name: "nested",
			yaml: "keys:\n  prepublish: 0s\naccess:\n  token:\n    ttl: 5m\n    max-ttl: 15m\n",
			want: map[string]string{"keys-prepublish": "0s", "access-token-ttl": "5m", "access-token-max-ttl": "15m"},
		},
		{
			name: "flow mapping",
			yaml: "keys: {prepublish: 0s}\n",
			want: map[string]string{"keys-prepublish": "0s"},
		},
		{
			name: "dotted",
			yaml: "keys.prepublish: 30s\naccess.token.alg: EdDSA\n",
			want: map[string]string{"keys-prepublish": "30s", "access-token-alg": "EdDSA"},
		},
		{
			name: "underscored",
			yaml: "data_dir: d\nadmin_listen: 127.0.0.1:9\nkeys:\n  pre_publish_x: 1\n",
			want: map[string]string{"data-dir": "d", "admin-listen": "127.0.0.1:9", "keys-pre-publish-x": "1"},
		},
		{
			name: "upper case keys",
			yaml: "Data-Dir: d\nKEYS:\n  Prepublish: 0s\n",
			want: map[string]string{"data-dir": "d", "keys-prepublish": "0s"},
		},
		{
			name: "lists join with commas",
			yaml: "audiences:\n  - https://a.example\n  - https://b.example\ngrant-types: [client_credentials]\nempty: []\n",
			want: map[string]string{"audiences": "https://a.example,https://b.example", "grant-types": "client_credentials", "empty": ""},
		},
		{
			name: "scalars become strings",
			yaml: "json: true\nport: 8080\nratio: 1.5\nprepublish: 0\n",
			want: map[string]string{"json": "true", "port": "8080", "ratio": "1.5", "prepublish": "0"},
		},
		{
			name: "null is empty",
			yaml: "issuer:\nadmin-listen: ~\n",
			want: map[string]string{"issuer": "", "admin-listen": ""},
		},
		{
			name: "quoted strings stay as written",
			yaml: "scopes: \"read write\"\nissuer: 'https://sts.example.com'\n",
			want: map[string]string{"scopes": "read write", "issuer": "https://sts.example.com"},
		},
		{
			name: "empty file",
			yaml: "",
			want: map[string]string{},
		},
		{
			name: "comments only",
			yaml: "# nothing set\n",
			want: map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := File(writeFile(t, tc.yaml))
			if err != nil {
				t.Fatalf("File: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("File (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"two spellings of one setting", "keys:\n  prepublish: 0s\nkeys-prepublish: 1m\n", []string{"keys.prepublish", "keys-prepublish", "both set keys-prepublish"}},
		{"dotted and underscored", "data_dir: a\ndata.dir: b\n", []string{"both set data-dir"}},
		{"list of mappings", "audiences:\n  - url: https://a.example\n", []string{"key audiences", "plain values"}},
		{"nested list", "audiences: [[a, b]]\n", []string{"key audiences"}},
		{"non-string keys", "keys:\n  1: x\n", []string{"key keys", "mapping keys must be strings"}},
		{"not YAML", "data-dir: [unclosed\n", []string{"sigil.yaml"}},
		{"not a mapping", "- a\n- b\n", []string{"sigil.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := File(writeFile(t, tc.yaml))
			if err == nil {
				t.Fatalf("File = %v, want an error", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestFileMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "absent.yaml")
	if _, err := File(p); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Errorf("File(missing) = %v, want an error naming the file", err)
	}
}
