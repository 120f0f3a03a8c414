package sigil

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// ValidScope reports whether s is one scope token (RFC 6749 §3.3):
// 1*( %x21 / %x23-5B / %x5D-7E ).
func ValidScope(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
			return false
		}
	}
	return s != ""
}

// ValidResource reports whether s can be a resource indicator (RFC 8707
// §2) or a redirect URI: an absolute URI without a fragment.
func ValidResource(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && !strings.Contains(s, "#")
}

// CheckRedirectURI reports why s cannot be a registered redirect URI
// (RFC 9700 §2.1, RFC 8252 §7): it must be absolute, without a fragment,
// userinfo or wildcard, and https, http on a loopback IP address only
// (native apps), or a private-use scheme with a dot in it (reverse domain
// name).
func CheckRedirectURI(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs():
		return errors.New("must be an absolute URI")
	case strings.Contains(s, "#"):
		return errors.New("must not have a fragment")
	case u.User != nil:
		return errors.New("must not carry a user name or password")
	case strings.Contains(s, "*"):
		return errors.New("must not contain wildcards: redirect URIs are matched exactly")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return errors.New("needs a host")
		}
	case "http":
		// Loopback IP literals only: "localhost" may resolve elsewhere
		// (RFC 8252 §8.3).
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			return errors.New("http is only allowed for loopback IP addresses (127.0.0.1, [::1]); use https")
		}
	case "javascript", "data", "vbscript", "file":
		return errors.New("scheme " + u.Scheme + " is not allowed")
	default:
		if !strings.Contains(u.Scheme, ".") {
			return errors.New("a private-use scheme must be a reverse domain name, such as com.example.app")
		}
	}
	return nil
}
