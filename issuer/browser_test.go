package issuer_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sigil-sts/sigil/admin"
)

// browser is a user agent for the sign-in flow: a cookie jar, and
// redirects followed only within the issuer, so the test sees the
// authorization response the client would get.
type browser struct {
	t  testing.TB
	n  *testNode
	hc *http.Client
	// secFetchSite, when set, is sent as Sec-Fetch-Site on form posts.
	secFetchSite string
}

func newBrowser(t testing.TB, n *testNode) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, n: n}
	b.hc = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), n.base) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is a response the browser got: an HTML page or a redirect.
type page struct {
	status   int
	header   http.Header
	body     string
	location string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(body), location: resp.Header.Get("Location")}
}

func (b *browser) get(rawURL string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// authorize opens the authorization endpoint with params.
func (b *browser) authorize(params url.Values) page {
	b.t.Helper()
	return b.get(b.n.url("/authorize") + "?" + params.Encode())
}

// post submits a form of the issuer's pages.
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.n.url(path), strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.secFetchSite != "" {
		req.Header.Set("Sec-Fetch-Site", b.secFetchSite)
	}
	return b.do(req)
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// hidden returns the hidden form fields of a page.
func (p page) hidden() url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

func (p page) isSignIn() bool  { return strings.Contains(p.body, `name="password"`) }
func (p page) isConsent() bool { return strings.Contains(p.body, `value="allow"`) }

// signIn submits the sign-in form of p.
func (b *browser) signIn(p page, username, password string) page {
	b.t.Helper()
	if !p.isSignIn() {
		b.t.Fatalf("not the sign-in page (status %d): %.300s", p.status, p.body)
	}
	f := p.hidden()
	f.Set("username", username)
	f.Set("password", password)
	return b.post("/login", f)
}

// decide submits the consent form of p.
func (b *browser) decide(p page, decision string) page {
	b.t.Helper()
	if !p.isConsent() {
		b.t.Fatalf("not the consent page (status %d): %.300s", p.status, p.body)
	}
	f := p.hidden()
	f.Set("decision", decision)
	return b.post("/consent", f)
}

// response parses the authorization response a redirect carries to the
// client.
func (p page) response(t testing.TB, redirectURI string) url.Values {
	t.Helper()
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, redirectURI) {
		t.Fatalf("want a redirect to %s, got status %d Location %q: %.300s", redirectURI, p.status, p.location, p.body)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// pkce is a code verifier and its S256 challenge.
type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := strings.Repeat("v", 10) + base64.RawURLEncoding.EncodeToString([]byte(randomString()))
	sum := sha256.Sum256([]byte(v))
	return pkce{verifier: v, challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

func randomString() string {
	var b [24]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// rp is a registered client of the browser flow with its redirect URI.
type rp struct {
	info        *admin.ClientInfo
	redirectURI string
}

func (c rp) auth() auth {
	if c.info.ClientSecret == "" {
		return auth{}
	}
	return basic(c.info)
}

// newRP registers a confidential (or, with method none, public) client
// for the code flow.
func newRP(t testing.TB, n *testNode, method string, mods ...func(*admin.ClientSpec)) rp {
	t.Helper()
	ru := "https://rp.example/callback"
	spec := admin.ClientSpec{
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Scope:        "openid profile email offline_access read:files",
		RedirectURIs: []string{ru, "http://127.0.0.1:9/cb"},
		AuthMethod:   method,
	}
	for _, m := range mods {
		m(&spec)
	}
	return rp{info: n.newClient(t, spec), redirectURI: ru}
}

// authParams are the parameters of a good authorization request.
func (c rp) authParams(p pkce, scope string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {c.info.ClientID}, "redirect_uri": {c.redirectURI},
		"scope": {scope}, "state": {"st-" + randomString()}, "nonce": {"n-" + randomString()},
		"code_challenge": {p.challenge}, "code_challenge_method": {"S256"},
	}
}

// newUser creates a user through the admin service (argon2id hash and all).
func newUser(t testing.TB, n *testNode, username, pw string, claims map[string]any) *admin.UserInfo {
	t.Helper()
	u, err := n.admin().CreateUser(context.Background(), admin.UserSpec{Username: username, Claims: claims}, pw)
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
}

// codeFor runs the whole browser flow for params (sign-in if asked,
// consent if asked) and returns the authorization response.
func (b *browser) codeFor(c rp, params url.Values, username, password string) url.Values {
	b.t.Helper()
	p := b.authorize(params)
	if p.isSignIn() {
		p = b.signIn(p, username, password)
	}
	if p.isConsent() {
		p = b.decide(p, "allow")
	}
	resp := p.response(b.t, c.redirectURI)
	if resp.Get("code") == "" {
		b.t.Fatalf("no code in the response: %v", resp)
	}
	if resp.Get("state") != params.Get("state") {
		b.t.Errorf("state = %q, want %q", resp.Get("state"), params.Get("state"))
	}
	if resp.Get("iss") != b.n.issuer {
		b.t.Errorf("iss = %q, want %q (RFC 9207)", resp.Get("iss"), b.n.issuer)
	}
	return resp
}

// redeem exchanges a code at the token endpoint.
func (n *testNode) redeem(t testing.TB, c rp, code, verifier string) reply {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {c.redirectURI}}
	if c.info.ClientSecret == "" {
		form.Set("client_id", c.info.ClientID)
	}
	return n.postForm(t, "/token", form, c.auth())
}

// refresh uses a refresh token.
func (n *testNode) refresh(t testing.TB, c rp, rt string, extra url.Values) reply {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if c.info.ClientSecret == "" {
		form.Set("client_id", c.info.ClientID)
	}
	for k, v := range extra {
		form[k] = v
	}
	return n.postForm(t, "/token", form, c.auth())
}
