package sigil

import (
	"fmt"
	"net/url"
	"strings"
)

// CheckIssuer reports whether s is a usable issuer identifier (RFC 8414
// §2, OpenID Connect Discovery §3): an http or https URL with a host, no
// user information, query or fragment, no trailing slash, and a path of
// plain characters only (it becomes part of every endpoint's route).
func CheckIssuer(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("issuer %q is not a URL: %v", s, err)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("issuer %q must use https (or http for local use)", s)
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("issuer %q has no host", s)
	case u.User != nil:
		return fmt.Errorf("issuer %q must not carry user information", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(s, "?#"):
		return fmt.Errorf("issuer %q must not have a query or fragment", s)
	case strings.HasSuffix(s, "/"):
		return fmt.Errorf("issuer %q must not end with a slash", s)
	case u.RawPath != "" || strings.ContainsFunc(u.Path, func(r rune) bool {
		return !(r == '/' || r == '-' || r == '_' || r == '.' || r == '~' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}):
		return fmt.Errorf("issuer %q: the path may hold only letters, digits, '/', '-', '_', '.' and '~'", s)
	}
	return nil
}
