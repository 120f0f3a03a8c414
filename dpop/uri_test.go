package dpop_test

import (
	"strings"
	"testing"

	"github.com/sigil-sts/sigil/dpop"
)

var normalizeTests = []struct {
	name, in, want string
}{
	{"already normal", "https://as.example.com/token", "https://as.example.com/token"},
	{"upper-case scheme and host", "HTTPS://AS.Example.COM/token", "https://as.example.com/token"},
	{"path case kept", "https://as.example.com/Token", "https://as.example.com/Token"},
	{"https default port", "https://as.example.com:443/token", "https://as.example.com/token"},
	{"http default port", "http://as.example.com:80/token", "http://as.example.com/token"},
	{"empty port", "https://as.example.com:/token", "https://as.example.com/token"},
	{"other port kept", "https://as.example.com:8443/token", "https://as.example.com:8443/token"},
	{"443 kept for http", "http://as.example.com:443/token", "http://as.example.com:443/token"},
	{"80 kept for https", "https://as.example.com:80/token", "https://as.example.com:80/token"},
	{"empty path", "https://as.example.com", "https://as.example.com/"},
	{"empty path with port", "https://as.example.com:443", "https://as.example.com/"},
	{"query dropped", "https://as.example.com/token?a=b&c", "https://as.example.com/token"},
	{"fragment dropped", "https://as.example.com/token#f", "https://as.example.com/token"},
	{"query on empty path", "https://as.example.com?a", "https://as.example.com/"},
	{"%7E", "https://as.example.com/%7Euser", "https://as.example.com/~user"},
	{"%7e", "https://as.example.com/%7euser", "https://as.example.com/~user"},
	{"unreserved decoded", "https://as.example.com/%41%5A%61%7A%30%39%2D%2E%5F%7E", "https://as.example.com/AZaz09-._~"},
	{"reserved kept, upper-cased", "https://as.example.com/a%2fb%3f%23", "https://as.example.com/a%2Fb%3F%23"},
	{"non-ASCII upper-cased", "https://as.example.com/%c3%a9", "https://as.example.com/%C3%A9"},
	{"raw non-ASCII encoded", "https://as.example.com/é", "https://as.example.com/%C3%A9"},
	{"space encoded", "https://as.example.com/a%20b", "https://as.example.com/a%20b"},
	{"RFC 3986 5.2.4 example 1", "https://h/a/b/c/./../../g", "https://h/a/g"},
	{"RFC 3986 5.2.4 example 2", "https://h/mid/content=5/../6", "https://h/mid/6"},
	{"dot segment", "https://h/./token", "https://h/token"},
	{"trailing dot", "https://h/a/.", "https://h/a/"},
	{"trailing dot-dot", "https://h/a/b/..", "https://h/a/"},
	{"dot-dot above root", "https://h/../../token", "https://h/token"},
	{"only dot-dot", "https://h/..", "https://h/"},
	{"encoded dot segments", "https://h/a/%2E%2e/token", "https://h/token"},
	{"dots inside names kept", "https://h/a..b/.c/d.", "https://h/a..b/.c/d."},
	{"empty segments kept", "https://h/a//b", "https://h/a//b"},
	{"IPv4", "http://127.0.0.1:8080/token", "http://127.0.0.1:8080/token"},
	{"IPv6", "https://[2001:DB8::1]/token", "https://[2001:db8::1]/token"},
	{"IPv6 default port", "https://[::1]:443/token", "https://[::1]/token"},
	{"IPv6 other port, empty path", "https://[::1]:8443", "https://[::1]:8443/"},
	{"IPv4-mapped IPv6", "https://[::FFFF:192.0.2.1]/", "https://[::ffff:192.0.2.1]/"},
}

func TestNormalizeURI(t *testing.T) {
	for _, tc := range normalizeTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dpop.NormalizeURI(tc.in)
			if err != nil {
				t.Fatalf("NormalizeURI(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("NormalizeURI(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again, err := dpop.NormalizeURI(got); err != nil || again != got {
				t.Errorf("NormalizeURI(%q) = %q, %v; want it unchanged", got, again, err)
			}
		})
	}
}

func TestNormalizeURIRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"ftp", "ftp://as.example.com/token"},
		{"wss", "wss://as.example.com/token"},
		{"file", "file:///etc/passwd"},
		{"urn", "urn:ietf:params:oauth:token"},
		{"javascript", "javascript:alert(1)"},
		{"opaque https", "https:as.example.com/token"},
		{"relative path", "/token"},
		{"relative name", "token"},
		{"scheme-relative", "//as.example.com/token"},
		{"no host", "https:///token"},
		{"no authority", "https:/token"},
		{"userinfo", "https://user@as.example.com/token"},
		{"userinfo with password", "https://user:pass@as.example.com/token"},
		{"empty userinfo", "https://@as.example.com/token"},
		{"bad escape", "https://as.example.com/%zz"},
		{"truncated escape", "https://as.example.com/a%2"},
		{"lone percent", "https://as.example.com/a%"},
		{"escape with one hex digit", "https://as.example.com/%g0"},
		{"ASCII escape in host", "https://as.example%2Ecom/token"},
		{"bad port", "https://as.example.com:https/token"},
		{"space in host", "https://as example.com/token"},
		{"control character", "https://as.example.com/to\nken"},
		{"too long", "https://as.example.com/" + strings.Repeat("a", 4096)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := dpop.NormalizeURI(tc.in); err == nil {
				t.Errorf("NormalizeURI(%q) = %q, want an error", tc.in, got)
			}
		})
	}
}

// FuzzNormalizeURI checks that NormalizeURI never panics, that what it
// returns is an http or https URI without query or fragment, and that it
// is idempotent.
func FuzzNormalizeURI(f *testing.F) {
	for _, tc := range normalizeTests {
		f.Add(tc.in)
	}
	for _, s := range []string{"", "https://", "https://h/%", "https://[::1", "https://[::1]:", "http://h:80",
		"https://h/a/./b/../../../c/%2E/%2e%2E/", "https://h?#", "https://h/%25", "https://[fe80::1]/",
		"https://[fe80::1%25en0]/", "https://:443/token"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := dpop.NormalizeURI(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "https://") && !strings.HasPrefix(out, "http://") {
			t.Fatalf("NormalizeURI(%q) = %q, not http or https", in, out)
		}
		if strings.ContainsAny(out, "?#") {
			t.Fatalf("NormalizeURI(%q) = %q, with a query or fragment", in, out)
		}
		again, err := dpop.NormalizeURI(out)
		if err != nil {
			t.Fatalf("NormalizeURI(%q) = %q, which it then refuses: %v", in, out, err)
		}
		if again != out {
			t.Fatalf("NormalizeURI(%q) = %q, but NormalizeURI(%q) = %q", in, out, out, again)
		}
	})
}
