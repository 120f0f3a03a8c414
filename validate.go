package sigil

import (
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
