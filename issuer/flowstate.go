package issuer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// flowKeys are the keys of the browser flow, derived from Handler.StateKey:
// one per purpose, so that no value made for one purpose is accepted for
// another.
type flowKeys struct {
	ticket cipher.AEAD // seals authorization requests between pages
	csrf   []byte      // MACs the CSRF cookie into the form token
	hash   []byte      // hashes stored secrets (codes, sessions, refresh tokens)
	// refresh tags refresh tokens (refreshtoken.go).
	refresh []byte
}

func deriveKey(root []byte, purpose string) []byte {
	m := hmac.New(sha256.New, root)
	m.Write([]byte("sigil issuer " + purpose))
	return m.Sum(nil)
}

func newFlowKeys(root []byte) (*flowKeys, error) {
	if len(root) < 32 {
		return nil, errors.New("issuer: StateKey must be at least 32 bytes")
	}
	block, err := aes.NewCipher(deriveKey(root, "ticket"))
	if err != nil {
		return nil, fmt.Errorf("issuer: ticket key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("issuer: ticket key: %w", err)
	}
	return &flowKeys{ticket: aead, csrf: deriveKey(root, "csrf"), hash: deriveKey(root, "stored secrets"),
		refresh: deriveKey(root, "refresh token tag")}, nil
}

// randomValue returns 256 random bits, base64url: codes, session cookies
// and request URIs.
func randomValue() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// storedHash is the keyed hash under which a secret value is stored. The
// purpose keeps a code from being looked up as a refresh token.
func (k *flowKeys) storedHash(purpose, value string) string {
	m := hmac.New(sha256.New, k.hash)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// seal encrypts v into a URL-safe ticket; the purpose is authenticated
// with it, so a ticket of one kind never opens as another.
func (k *flowKeys) seal(purpose string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("issuer: seal %s: %w", purpose, err)
	}
	nonce := make([]byte, k.ticket.NonceSize())
	rand.Read(nonce)
	out := k.ticket.Seal(nonce, nonce, plain, []byte(purpose))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// maxTicket bounds a ticket before it is decoded.
const maxTicket = 16 << 10

// open decrypts a ticket made by seal for the same purpose.
func (k *flowKeys) open(purpose, ticket string, v any) error {
	if len(ticket) > maxTicket {
		return errors.New("ticket too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(ticket)
	n := k.ticket.NonceSize()
	if err != nil || len(raw) < n {
		return errors.New("malformed ticket")
	}
	plain, err := k.ticket.Open(nil, raw[:n], raw[n:], []byte(purpose))
	if err != nil {
		return errors.New("ticket does not open")
	}
	return json.Unmarshal(plain, v)
}

// csrfToken is the form token for a CSRF cookie value: a MAC of it (the
// signed double-submit cookie pattern). It stops forms posted from other
// sites, which cannot read the cookie; an attacker who can plant cookies
// (a sibling subdomain, without the __Host- prefix) can also get a form
// token for the planted value from our own page, so against that the
// Origin and Sec-Fetch-Site checks are what hold.
func (k *flowKeys) csrfToken(cookie string) string {
	m := hmac.New(sha256.New, k.csrf)
	m.Write([]byte(cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// cookies names and scopes the browser flow's cookies for an issuer URL:
// Secure when it is https, and the __Host- prefix when it is also at the
// root, so no other origin can set them.
type cookies struct {
	session, csrf, device string
	path                  string
	secure                bool
}

func newCookies(issuer string) cookies {
	u, _ := url.Parse(issuer)
	c := cookies{session: "sigil_session", csrf: "sigil_csrf", device: "sigil_device", path: u.Path, secure: u.Scheme == "https"}
	if c.path == "" {
		c.path = "/"
	}
	prefix := ""
	switch {
	case c.secure && c.path == "/":
		prefix = "__Host-" // https, this host only, the whole site
	case c.secure:
		prefix = "__Secure-" // https only (__Host- needs the root path)
	}
	c.session, c.csrf, c.device = prefix+c.session, prefix+c.csrf, prefix+c.device
	return c
}

// set writes a cookie; a zero expiry makes a browser-session cookie and a
// negative max age deletes it.
func (c cookies) set(w http.ResponseWriter, name, value string, sameSite http.SameSite, expires time.Time, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: c.path, Expires: expires, MaxAge: maxAge,
		Secure: c.secure, HttpOnly: true, SameSite: sameSite,
	})
}

// csrfFor returns the request's CSRF cookie value, setting a new one when
// it has none, and the form token that goes with it.
func (h *Handler) csrfFor(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if ck, err := r.Cookie(h.cookies.csrf); err == nil && len(ck.Value) == 43 {
		v = ck.Value
	} else {
		v = randomValue()
		// Lax, not Strict: a Strict cookie is not sent when another site
		// links to the authorization endpoint, so each such visit would
		// replace it and break the forms of other open tabs. Lax cookies
		// never travel with another site's POST, and the form token is a
		// MAC an attacker cannot make anyway.
		h.cookies.set(w, h.cookies.csrf, v, http.SameSiteLaxMode, time.Time{}, 0)
	}
	return h.keys.csrfToken(v)
}

// checkCSRF verifies a form POST from one of the flow's pages: the form
// token matches the CSRF cookie and, when the browser says where the
// request came from, it came from this origin.
func (h *Handler) checkCSRF(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("cross-site form post (Sec-Fetch-Site: %s)", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" && originOf(origin) != h.origin {
		return fmt.Errorf("form post from origin %q", origin)
	}
	ck, err := r.Cookie(h.cookies.csrf)
	if err != nil || ck.Value == "" {
		return errors.New("no CSRF cookie")
	}
	want := h.keys.csrfToken(ck.Value)
	if subtle.ConstantTimeCompare([]byte(want), []byte(r.PostForm.Get("csrf_token"))) != 1 {
		return errors.New("CSRF token does not match")
	}
	return nil
}

// originOf returns the origin of an absolute URL in the form browsers
// send in Origin: scheme://host[:port], lower case, without the scheme's
// default port.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "null"
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}
