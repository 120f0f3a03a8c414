package issuer

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/internal/httpx"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are the server-rendered HTML pages of the browser flow. They load
// nothing from elsewhere: styles and the one script are inline, allowed
// by a per-response CSP nonce.
var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// httpNoStorePage keeps a page or redirect out of every cache.
func httpNoStorePage(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// render writes a page with the headers every page of the flow carries:
// no framing (clickjacking), no caching, a strict CSP, and no referrer
// to other sites. Not no-referrer: under it browsers send "Origin: null"
// with the page's own form posts (Fetch §3.2.5), which checkCSRF must
// refuse.
// formTargets are the extra origins the page's forms (and the redirects
// that follow them) may go to: the client's redirect URI.
func (h *Handler) render(w http.ResponseWriter, status int, name string, data map[string]any, formTargets ...string) {
	var n [16]byte
	rand.Read(n[:])
	nonce := base64.RawStdEncoding.EncodeToString(n[:])
	data["Nonce"] = nonce
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		h.Log.Error("page: render failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	formAction := "'self'"
	for _, t := range formTargets {
		if src := cspSource(t); src != "" {
			formAction += " " + src
		}
	}
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; script-src 'nonce-"+nonce+
		"'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	httpNoStorePage(w)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// cspSource is the CSP source expression for a redirect URI: its origin,
// or its scheme for a private-use scheme (native apps, RFC 8252 §7.1).
func cspSource(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return ""
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		if strings.ContainsAny(u.Host, "; '\"") {
			return ""
		}
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + ":"
}

func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, e *authError) {
	h.render(w, status, "error.html", map[string]any{
		"Title": "Error", "Message": e.Description, "RequestID": httpx.RequestID(r.Context()),
	})
}

func (h *Handler) renderSignIn(w http.ResponseWriter, r *http.Request, req *authRequest, msg string, status int) {
	name := ""
	if req.ClientID != "" {
		if c, err := h.client(r.Context(), req.ClientID); err == nil {
			name = displayName(c.client)
		}
	}
	username := req.LoginHint
	if r.Method == http.MethodPost {
		username = r.PostForm.Get("username")
	}
	if len(username) > 256 {
		username = ""
	}
	h.render(w, status, "signin.html", map[string]any{
		"Title": "Sign in", "ClientName": name, "Action": h.endpoint(PathSignIn), "CSRF": h.csrfFor(w, r),
		"Ticket": h.ticket(req), "Username": username, "Error": msg,
	}, req.RedirectURI)
}

// scopeText says in plain words what a scope lets a client do.
var scopeText = map[string]string{
	ScopeOpenID:        "Know who you are",
	ScopeProfile:       "See your name and profile details",
	ScopeEmail:         "See your email address",
	ScopeOfflineAccess: "Keep access while you are away (until you withdraw it)",
}

type scopeLine struct{ Text, Name string }

func scopeLines(scopes []string) []scopeLine {
	var out []scopeLine
	for _, s := range scopes {
		if t, ok := scopeText[s]; ok {
			out = append(out, scopeLine{Text: t})
			continue
		}
		out = append(out, scopeLine{Text: "Use the permission", Name: s})
	}
	if len(out) == 0 {
		out = append(out, scopeLine{Text: "Know who you are"})
	}
	return out
}

// displayName is how the pages name a client: its name, or its id. A
// client no operator approved chose its own name, so the pages say so:
// the host of its client_id URL follows the name of a client described
// by a metadata document (the draft's "OAuth Phishing Attacks"), and
// "(unverified)" that of a client that registered itself.
func displayName(c *sigil.Client) string {
	switch {
	case c.Name == "":
		return c.ID
	case documentHost(c.ID) != "":
		return c.Name + " (" + documentHost(c.ID) + ")"
	case selfRegistered(c):
		return c.Name + " (unverified)"
	}
	return c.Name
}

// selfRegistered reports whether c registered itself (RFC 7591) or is
// described by a metadata document: its name and metadata are its own
// claims, which no operator checked.
func selfRegistered(c *sigil.Client) bool {
	return len(c.RegistrationTokenHash) > 0 || documentHost(c.ID) != ""
}

// uriHost is the host (and port) of a URI, "" when it has none (a
// private-use scheme's, RFC 8252 §7.1) or does not parse. Go decodes a
// percent-encoded host, so a non-ASCII host shows here however written.
func uriHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// shownDestination is where a redirect URI sends the user, as the
// consent page names it: its host, or its scheme for a private-use
// scheme. Always ASCII: a byte past it shows percent-encoded, so a
// lookalike letter from another script (a homograph) cannot pass for
// the one it imitates. Self-registered clients' hosts are ASCII already
// (clientFromMetadata).
func shownDestination(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.Host == "" {
		return u.Scheme + ":"
	}
	var b strings.Builder
	for i := 0; i < len(u.Host); i++ {
		if c := u.Host[i]; c < 0x80 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// renderConsent asks the user to allow a client. For a client no
// operator approved, the page says the application is unverified and
// names where the user is sent next, the one thing about the client that
// Sigil checks (the redirect URI is registered and exactly matched).
func (h *Handler) renderConsent(w http.ResponseWriter, r *http.Request, req *authRequest, c *sigil.Client, u *sigil.User) {
	// Only the audiences the user would not guess from the client's name.
	aud := slices.DeleteFunc(slices.Clone(req.Audience), func(a string) bool { return a == h.Issuer })
	h.render(w, http.StatusOK, "consent.html", map[string]any{
		"Title": "Allow access", "ClientName": displayName(c), "ClientHost": documentHost(c.ID), "Username": u.Username,
		"Unverified": selfRegistered(c), "Destination": shownDestination(req.RedirectURI),
		"Scopes": scopeLines(req.Scopes), "Tools": req.AuthorizationDetails, "Audience": aud, "Action": h.endpoint(PathConsent),
		"CSRF": h.csrfFor(w, r), "Ticket": h.ticket(req), "AccountURL": h.endpoint(PathAccount),
	}, req.RedirectURI)
}

type formField struct{ Name, Value string }

// renderFormPost delivers an authorization response by form post (OAuth
// 2.0 Form Post Response Mode): a page that posts itself to the client.
func (h *Handler) renderFormPost(w http.ResponseWriter, r *http.Request, action string, v url.Values) {
	var fields []formField
	for _, k := range slices.Sorted(maps.Keys(v)) {
		fields = append(fields, formField{k, v.Get(k)})
	}
	h.render(w, http.StatusOK, "formpost.html", map[string]any{"Title": "Continue", "Action": action, "Fields": fields}, action)
}
