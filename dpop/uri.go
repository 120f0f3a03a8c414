package dpop

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// NormalizeURI returns the form in which htu values and request URIs are
// compared: an absolute http or https URI without query and fragment,
// normalised as RFC 3986 §6.2.2 (case, percent-encoding, dot segments)
// and §6.2.3 (default port, empty path) describe.
func NormalizeURI(s string) (string, error) {
	if len(s) > 3*maxURI {
		return "", errors.New("URI too long")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("URI: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", errors.New("URI is not http or https")
	}
	if u.Hostname() == "" || u.User != nil || u.Opaque != "" {
		return "", errors.New("URI has no host, or has user information")
	}
	if strings.Contains(u.Host, "%") {
		// An IPv6 zone or an escaped host name: neither names a server
		// that DPoP proofs are made for.
		return "", errors.New("URI host has a percent sign")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	if port != "" {
		host += ":" + port
	}
	path, err := normalizePath(u.EscapedPath())
	if err != nil {
		return "", err
	}
	// The limit is on the result, so that a normalised URI always
	// normalises to itself (escaping can lengthen a path).
	out := scheme + "://" + host + path
	if len(out) > maxURI {
		return "", errors.New("URI too long")
	}
	return out, nil
}

// maxURI bounds a normalised URI.
const maxURI = 4096

// normalizePath normalises percent-encoding (escapes of unreserved
// characters decoded, the rest upper-case) and removes dot segments
// (RFC 3986 §5.2.4); an empty path becomes "/".
func normalizePath(p string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", errors.New("URI has a bad percent-encoding")
		}
		v := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(v) {
			b.WriteByte(v)
		} else {
			b.WriteString("%" + strings.ToUpper(p[i+1:i+3]))
		}
		i += 2
	}
	return removeDotSegments(b.String()), nil
}

// removeDotSegments is RFC 3986 §5.2.4 for an absolute path.
func removeDotSegments(in string) string {
	if in == "" {
		return "/"
	}
	var out []string
	segs := strings.Split(in, "/")[1:] // in starts with "/"
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// isUnreserved reports whether c is an RFC 3986 §2.3 unreserved character.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
