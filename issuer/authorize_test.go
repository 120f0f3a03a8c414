package issuer_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/password"
)

const alicePassword = "correct horse battery staple"

// TestCodeFlow walks the whole flow as a confidential client: sign-in,
// consent, code, tokens checked with a second JOSE library, UserInfo,
// refresh with rotation; then a second authorization reuses the session
// and the remembered consent.
func TestCodeFlow(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	alice := newUser(t, n, "alice", alicePassword, map[string]any{
		"email": "alice@example.com", "email_verified": true, "name": "Alice", "department": "engineering",
	})
	b := newBrowser(t, n)
	p := newPKCE()
	params := c.authParams(p, "openid profile email offline_access")

	first := b.authorize(params)
	if !first.isSignIn() {
		t.Fatalf("first page is not the sign-in page: %d %.300s", first.status, first.body)
	}
	for _, h := range []string{"X-Frame-Options", "Content-Security-Policy", "Cache-Control"} {
		if first.header.Get(h) == "" {
			t.Errorf("sign-in page lacks %s", h)
		}
	}
	if csp := first.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "form-action 'self' https://rp.example") {
		t.Errorf("CSP = %q", csp)
	}
	consent := b.signIn(first, "alice", alicePassword)
	if !consent.isConsent() || !strings.Contains(consent.body, "See your email address") {
		t.Fatalf("after sign-in: %d %.500s", consent.status, consent.body)
	}
	if strings.Contains(consent.body, "Unverified") {
		t.Errorf("the consent page calls the operator's client unverified")
	}
	resp := b.decide(consent, "allow").response(t, c.redirectURI)
	tr := n.redeem(t, c, resp.Get("code"), p.verifier)
	if tr.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", tr.status, tr.body)
	}
	m := tr.json(t)
	at, idt, rt := m["access_token"].(string), m["id_token"].(string), m["refresh_token"].(string)
	if at == "" || idt == "" || rt == "" {
		t.Fatalf("want access, ID and refresh tokens: %s", tr.body)
	}

	// The ID token, checked with jwx against the served JWKS.
	msg, err := jws.Parse([]byte(idt))
	if err != nil {
		t.Fatal(err)
	}
	idTok, err := jwt.Parse([]byte(idt), jwt.WithKeySet(n.jwks(t)), jwt.WithIssuer(n.issuer), jwt.WithAudience(c.info.ClientID), jwt.WithValidate(true))
	if err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	claim := func(name string) any {
		var v any
		if err := idTok.Get(name, &v); err != nil {
			return nil
		}
		return v
	}
	if sub, _ := idTok.Subject(); sub != alice.ID {
		t.Errorf("sub = %q, want %q", sub, alice.ID)
	}
	if claim("nonce") != params.Get("nonce") {
		t.Errorf("nonce = %v, want %q", claim("nonce"), params.Get("nonce"))
	}
	sum := sha256.Sum256([]byte(at))
	if claim("at_hash") != base64.RawURLEncoding.EncodeToString(sum[:16]) {
		t.Errorf("at_hash = %v", claim("at_hash"))
	}
	if claim("azp") != c.info.ClientID || claim("email") != "alice@example.com" || claim("auth_time") == nil {
		t.Errorf("azp, email or auth_time wrong in %s", idt)
	}
	if amr, _ := claim("amr").([]any); len(amr) != 1 || amr[0] != "pwd" {
		t.Errorf("amr = %v", claim("amr"))
	}
	if claim("department") != nil {
		t.Errorf("an entitlement leaked into the ID token")
	}
	alg := msg.Signatures()[0].ProtectedHeaders()
	if a, _ := alg.Algorithm(); a != jwa.RS256() {
		t.Errorf("ID token alg = %v, want RS256", a)
	}
	if typ, _ := alg.Type(); typ != "JWT" {
		t.Errorf("ID token typ = %q, want JWT", typ)
	}

	// The access token carries the user's entitlements for resource servers.
	atTok, err := jwt.Parse([]byte(at), jwt.WithKeySet(n.jwks(t)), jwt.WithValidate(true))
	if err != nil {
		t.Fatal(err)
	}
	var dept string
	if err := atTok.Get("department", &dept); err != nil || dept != "engineering" {
		t.Errorf("access token department = %q (%v)", dept, err)
	}

	// UserInfo.
	req, _ := http.NewRequest(http.MethodGet, n.url("/userinfo"), nil)
	req.Header.Set("Authorization", "Bearer "+at)
	ui := n.do(t, req)
	if ui.status != http.StatusOK || ui.str(t, "sub") != alice.ID || ui.str(t, "email") != "alice@example.com" || ui.str(t, "name") != "Alice" {
		t.Errorf("userinfo: %d %s", ui.status, ui.body)
	}

	// Refresh rotates.
	r1 := n.refresh(t, c, rt, nil)
	if r1.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r1.status, r1.body)
	}
	rt2 := r1.str(t, "refresh_token")
	if rt2 == "" || rt2 == rt {
		t.Fatalf("refresh did not rotate: %s", r1.body)
	}

	// A second authorization: session and consent remembered, no page.
	p2 := newPKCE()
	params2 := c.authParams(p2, "openid email")
	resp2 := b.authorize(params2).response(t, c.redirectURI)
	if resp2.Get("code") == "" {
		t.Fatalf("no code on the second authorization: %v", resp2)
	}
	if r := n.redeem(t, c, resp2.Get("code"), p2.verifier); r.status != http.StatusOK {
		t.Fatalf("second redeem: %d %s", r.status, r.body)
	}
}

// TestPKCEAttacks: PKCE is required with S256 for every client, and the
// verifier must match.
func TestPKCEAttacks(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()

	for _, tc := range []struct {
		name string
		mod  func(url.Values)
	}{
		{"missing", func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }},
		{"plain", func(v url.Values) { v.Set("code_challenge_method", "plain") }},
		{"method missing (defaults to plain)", func(v url.Values) { v.Del("code_challenge_method") }},
		{"malformed challenge", func(v url.Values) { v.Set("code_challenge", "short") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := c.authParams(p, "openid")
			tc.mod(params)
			resp := b.authorize(params).response(t, c.redirectURI)
			if resp.Get("error") != "invalid_request" || resp.Get("code") != "" || resp.Get("state") != params.Get("state") {
				t.Errorf("response = %v, want invalid_request with state", resp)
			}
		})
	}

	resp := b.codeFor(c, c.authParams(p, "openid"), "alice", alicePassword)
	wrong := newPKCE()
	wantError(t, n.redeem(t, c, resp.Get("code"), wrong.verifier), http.StatusBadRequest, "invalid_grant")

	resp = b.codeFor(c, c.authParams(p, "openid"), "alice", alicePassword)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {resp.Get("code")}, "redirect_uri": {c.redirectURI}}
	wantError(t, n.postForm(t, "/token", form, c.auth()), http.StatusBadRequest, "invalid_request")
}

// TestCodeReplay: a code redeemed twice fails the second time and
// revokes the tokens of the first (RFC 6749 §4.1.2).
func TestCodeReplay(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()
	resp := b.codeFor(c, c.authParams(p, "openid offline_access"), "alice", alicePassword)
	first := n.redeem(t, c, resp.Get("code"), p.verifier)
	if first.status != http.StatusOK {
		t.Fatalf("first redemption: %d %s", first.status, first.body)
	}
	at, rt := first.str(t, "access_token"), first.str(t, "refresh_token")
	if !n.active(t, c.auth(), at) {
		t.Fatal("fresh access token inactive")
	}
	wantError(t, n.redeem(t, c, resp.Get("code"), p.verifier), http.StatusBadRequest, "invalid_grant")
	if n.active(t, c.auth(), at) {
		t.Error("access token from a replayed code still active")
	}
	wantError(t, n.refresh(t, c, rt, nil), http.StatusBadRequest, "invalid_grant")
}

// TestRedirectURITricks: only exactly registered redirect URIs are used,
// and no error is ever redirected to any other.
func TestRedirectURITricks(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	b := newBrowser(t, n)
	p := newPKCE()
	for _, ru := range []string{
		"https://rp.example/callback/", "https://rp.example/callbackx", "https://rp.example/callback?x=1",
		"https://rp.example/callback#f", "https://RP.example/callback", "https://rp.example/other/../callback",
		"https://rp.example.evil.example/callback", "https://evil.example/?https://rp.example/callback",
		"http://rp.example/callback", "https://rp.example:443/callback", "https://rp.example/Callback",
		"https://rp.example/callback%2F..", "//evil.example/callback", "https://evil.example",
	} {
		params := c.authParams(p, "openid")
		params.Set("redirect_uri", ru)
		params.Set("response_type", "token") // an error that would be redirected, were the URI good
		got := b.authorize(params)
		if got.status != http.StatusBadRequest || got.location != "" {
			t.Errorf("redirect_uri %q: status %d Location %q, want a 400 page and no redirect", ru, got.status, got.location)
		}
	}
	// Unknown client: an error page too, whatever the redirect URI.
	params := c.authParams(p, "openid")
	params.Set("client_id", "nobody")
	if got := b.authorize(params); got.status != http.StatusBadRequest || got.location != "" {
		t.Errorf("unknown client: status %d Location %q", got.status, got.location)
	}
	// Two registered URIs and none given: which one is ambiguous.
	params = c.authParams(p, "openid")
	params.Del("redirect_uri")
	if got := b.authorize(params); got.status != http.StatusBadRequest || got.location != "" {
		t.Errorf("no redirect_uri: status %d Location %q", got.status, got.location)
	}
	// A good URI with a bad request: the error goes back, with state and iss.
	params = c.authParams(p, "openid")
	params.Set("response_type", "token")
	resp := b.authorize(params).response(t, c.redirectURI)
	if resp.Get("error") != "unsupported_response_type" || resp.Get("state") != params.Get("state") || resp.Get("iss") != n.issuer {
		t.Errorf("error response = %v", resp)
	}
}

// TestRefreshAttacks: scope only narrows, a spent token revokes its
// family, and a token works only for its own client.
func TestRefreshAttacks(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	other := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()
	resp := b.codeFor(c, c.authParams(p, "openid offline_access"), "alice", alicePassword)
	tr := n.redeem(t, c, resp.Get("code"), p.verifier)
	rt := tr.str(t, "refresh_token")

	wantError(t, n.refresh(t, c, rt, url.Values{"scope": {"openid offline_access read:files"}}), http.StatusBadRequest, "invalid_scope")
	wantError(t, n.refresh(t, other, rt, nil), http.StatusBadRequest, "invalid_grant")

	narrow := n.refresh(t, c, rt, url.Values{"scope": {"openid"}})
	if narrow.status != http.StatusOK || narrow.str(t, "scope") != "openid" {
		t.Fatalf("narrowing refresh: %d %s", narrow.status, narrow.body)
	}
	rt2 := narrow.str(t, "refresh_token")
	if rt2 == "" {
		t.Fatal("the narrowed refresh returned no refresh token")
	}
	// The new refresh token keeps the original scope (RFC 6749 §6).
	wide := n.refresh(t, c, rt2, nil)
	if wide.status != http.StatusOK || !slices.Contains(strings.Fields(wide.str(t, "scope")), "offline_access") {
		t.Fatalf("refresh after narrowing: %d %s", wide.status, wide.body)
	}
	rt3 := wide.str(t, "refresh_token")

	// Tokens that must not revoke the family: rt3 with its generation
	// set back to 0 (its tag no longer matches), and rt, authentic and
	// spent, presented by another client, to the token and revocation
	// endpoints.
	raw, err := base64.RawURLEncoding.DecodeString(rt3)
	if err != nil {
		t.Fatal(err)
	}
	copy(raw[17:25], make([]byte, 8))
	forged := base64.RawURLEncoding.EncodeToString(raw)
	wantError(t, n.refresh(t, c, forged, nil), http.StatusBadRequest, "invalid_grant")
	if r := n.postForm(t, "/revoke", url.Values{"token": {forged}}, c.auth()); r.status != http.StatusOK {
		t.Errorf("revoking a forged token: %d %s", r.status, r.body)
	}
	wantError(t, n.refresh(t, other, rt, nil), http.StatusBadRequest, "invalid_grant")
	wantError(t, n.postForm(t, "/revoke", url.Values{"token": {rt}}, other.auth()), http.StatusBadRequest, "unauthorized_client")
	last := n.refresh(t, c, rt3, nil)
	if last.status != http.StatusOK {
		t.Fatalf("refresh after the forged and foreign tokens: %d %s; they revoked the family", last.status, last.body)
	}
	rt4 := last.str(t, "refresh_token")

	// Reuse of a spent token revokes the family: the newest token dies,
	// and every access token issued from the family.
	wantError(t, n.refresh(t, c, rt, nil), http.StatusBadRequest, "invalid_grant")
	wantError(t, n.refresh(t, c, rt4, nil), http.StatusBadRequest, "invalid_grant")
	for i, r := range []reply{tr, narrow, wide, last} {
		if n.active(t, c.auth(), r.str(t, "access_token")) {
			t.Errorf("access token %d of a revoked family still active", i)
		}
	}
}

// TestPublicClient: a client without a secret completes the flow with
// PKCE, and cannot introspect.
func TestPublicClient(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "none")
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()
	resp := b.codeFor(c, c.authParams(p, "openid offline_access"), "alice", alicePassword)
	tr := n.redeem(t, c, resp.Get("code"), p.verifier)
	if tr.status != http.StatusOK || tr.str(t, "refresh_token") == "" {
		t.Fatalf("public redeem: %d %s", tr.status, tr.body)
	}
	if r := n.refresh(t, c, tr.str(t, "refresh_token"), nil); r.status != http.StatusOK {
		t.Fatalf("public refresh: %d %s", r.status, r.body)
	}
	r := n.postForm(t, "/introspect", url.Values{"token": {tr.str(t, "access_token")}, "client_id": {c.info.ClientID}}, auth{})
	wantError(t, r, http.StatusUnauthorized, "invalid_client")
	// A confidential client cannot pass as public by leaving out its secret.
	conf := newRP(t, n, "client_secret_basic")
	r = n.postForm(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {conf.info.ClientID}}, auth{})
	wantError(t, r, http.StatusUnauthorized, "invalid_client")
}

// TestFormCSRF: the sign-in and consent forms refuse posts without the
// CSRF cookie's token, or from another site.
func TestFormCSRF(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	p := newPKCE()

	b := newBrowser(t, n)
	page := b.authorize(c.authParams(p, "openid"))
	f := page.hidden()
	f.Set("username", "alice")
	f.Set("password", alicePassword)

	// The attacker's page posts the victim's browser, which has no CSRF
	// cookie of this flow (or the attacker's own form token).
	victim := newBrowser(t, n)
	if got := victim.post("/login", f); got.status != http.StatusForbidden {
		t.Errorf("login without the CSRF cookie: %d", got.status)
	}
	forged := url.Values{}
	for k, v := range f {
		forged[k] = v
	}
	forged.Set("csrf_token", "AAAA")
	if got := b.post("/login", forged); got.status != http.StatusForbidden {
		t.Errorf("login with a wrong CSRF token: %d", got.status)
	}
	b.secFetchSite = "cross-site"
	if got := b.post("/login", f); got.status != http.StatusForbidden {
		t.Errorf("cross-site login post: %d", got.status)
	}
	b.secFetchSite = ""
	consent := b.post("/login", f)
	cf := consent.hidden()
	cf.Set("decision", "allow")
	if got := victim.post("/consent", cf); got.status != http.StatusForbidden {
		t.Errorf("consent without the CSRF cookie: %d", got.status)
	}
	b.secFetchSite = "same-site"
	if got := b.post("/consent", cf); got.status != http.StatusForbidden {
		t.Errorf("same-site (not same-origin) consent post: %d", got.status)
	}
	// A tampered ticket (the request widened by the browser) never opens.
	b.secFetchSite = ""
	tampered := url.Values{}
	for k, v := range cf {
		tampered[k] = v
	}
	tk := []byte(tampered.Get("ticket"))
	tk[10] ^= 1
	tampered.Set("ticket", string(tk))
	if got := b.post("/consent", tampered); got.status != http.StatusBadRequest {
		t.Errorf("tampered ticket: %d", got.status)
	}
}

// TestNoUserEnumeration: an unknown username, a wrong password and a
// disabled user get the same page, in about the same time.
func TestNoUserEnumeration(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	p := newPKCE()
	b := newBrowser(t, n)

	attempt := func(username, password string) (page, time.Duration) {
		form := b.authorize(c.authParams(p, "openid"))
		start := time.Now()
		got := b.signIn(form, username, password)
		return got, time.Since(start)
	}
	blank := regexp.MustCompile(`(value|nonce)="[^"]*"`)
	strip := func(s string) string { return blank.ReplaceAllString(s, `$1=""`) }
	unknown, _ := attempt("mallory", "whatever-password")
	wrong, _ := attempt("alice", "wrong-password")
	if unknown.status != http.StatusUnauthorized || wrong.status != unknown.status {
		t.Errorf("statuses: unknown %d, wrong password %d", unknown.status, wrong.status)
	}
	// The pages differ only in the echoed username and the fresh hidden values.
	u := strip(strings.ReplaceAll(unknown.body, "mallory", "NAME"))
	w := strip(strings.ReplaceAll(wrong.body, "alice", "NAME"))
	if u != w {
		t.Errorf("pages differ:\n%s\n---\n%s", u, w)
	}
	if !strings.Contains(u, "Incorrect username or password.") || !strings.Contains(u, `role="alert"`) {
		t.Errorf("no error message next to the fields: %s", u)
	}

	// Timing: medians of a few attempts each. Both paths run one argon2id
	// verification (tens of milliseconds); a store lookup is well under
	// one, so the medians stay within a factor of two on a loaded machine
	// and an early return for unknown users (well under 1 ms) does not.
	var tu, tw []time.Duration
	for range 4 {
		_, d := attempt("mallory", "whatever-password")
		tu = append(tu, d)
		_, d = attempt("alice", "wrong-password")
		tw = append(tw, d)
	}
	mu, mw := median(tu), median(tw)
	if mu < mw/2 || mu > mw*2 {
		t.Errorf("median sign-in time: unknown user %v, wrong password %v: the difference tells them apart", mu, mw)
	}
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// TestSignInRateLimit: repeated failures for one username are refused
// with 429 and Retry-After before the password is even checked.
func TestSignInRateLimit(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	p := newPKCE()
	b := newBrowser(t, n)
	var last page
	for range 12 {
		last = b.signIn(b.authorize(c.authParams(p, "openid")), "alice", "wrong-password")
		if last.status == http.StatusTooManyRequests {
			break
		}
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("after repeated failures: status %d Retry-After %q", last.status, last.header.Get("Retry-After"))
	}
	// Even the right password waits.
	if got := b.signIn(b.authorize(c.authParams(p, "openid")), "alice", alicePassword); got.status != http.StatusTooManyRequests {
		t.Errorf("right password while limited: %d", got.status)
	}
}

// TestPrompts: prompt=none, login and consent, and max_age.
func TestPrompts(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	p := newPKCE()
	b := newBrowser(t, n)

	params := c.authParams(p, "openid")
	params.Set("prompt", "none")
	if resp := b.authorize(params).response(t, c.redirectURI); resp.Get("error") != "login_required" {
		t.Errorf("prompt=none without a session: %v", resp)
	}
	// Signed in, but no consent yet.
	consent := b.signIn(b.authorize(c.authParams(p, "openid")), "alice", alicePassword)
	if !consent.isConsent() {
		t.Fatal("no consent page")
	}
	if resp := b.authorize(params).response(t, c.redirectURI); resp.Get("error") != "consent_required" {
		t.Errorf("prompt=none without consent: %v", resp)
	}
	b.decide(consent, "allow").response(t, c.redirectURI)
	if resp := b.authorize(params).response(t, c.redirectURI); resp.Get("code") == "" {
		t.Errorf("prompt=none with session and consent: %v", resp)
	}
	for _, mod := range []url.Values{{"prompt": {"login"}}, {"max_age": {"0"}}} {
		params := c.authParams(p, "openid")
		for k, v := range mod {
			params[k] = v
		}
		got := b.authorize(params)
		if !got.isSignIn() {
			t.Fatalf("%v: no sign-in page: %d", mod, got.status)
		}
		// Signing in satisfies it, once: no loop back to the sign-in page.
		if resp := b.signIn(got, "alice", alicePassword).response(t, c.redirectURI); resp.Get("code") == "" {
			t.Errorf("%v: after sign-in: %v", mod, resp)
		}
	}
	params = c.authParams(p, "openid")
	params.Set("prompt", "consent")
	if got := b.authorize(params); !got.isConsent() {
		t.Errorf("prompt=consent: no consent page (%d)", got.status)
	}
	params.Set("prompt", "none login")
	if resp := b.authorize(params).response(t, c.redirectURI); resp.Get("error") != "invalid_request" {
		t.Errorf("prompt=none login: %v", resp)
	}
	// Deny.
	params = c.authParams(p, "openid email")
	if resp := b.decide(b.authorize(params), "deny").response(t, c.redirectURI); resp.Get("error") != "access_denied" {
		t.Errorf("deny: %v", resp)
	}
}

// TestFormPost: response_mode=form_post answers with a page that posts
// the response to the client, allowed by its CSP.
func TestFormPost(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	p := newPKCE()
	b := newBrowser(t, n)
	params := c.authParams(p, "openid")
	params.Set("response_mode", "form_post")
	got := b.decide(b.signIn(b.authorize(params), "alice", alicePassword), "allow")
	if got.status != http.StatusOK || !strings.Contains(got.body, `action="https://rp.example/callback"`) {
		t.Fatalf("form_post page: %d %.400s", got.status, got.body)
	}
	f := got.hidden()
	if f.Get("code") == "" || f.Get("state") != params.Get("state") || f.Get("iss") != n.issuer {
		t.Errorf("form fields = %v", f)
	}
	if csp := got.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://rp.example") {
		t.Errorf("CSP = %q", csp)
	}
}

// TestPAR: a pushed request works once; a client that must push cannot
// skip it.
func TestPAR(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	strict := newRP(t, n, "client_secret_basic", func(s *admin.ClientSpec) { s.RequirePAR = true })
	newUser(t, n, "alice", alicePassword, nil)
	p := newPKCE()
	b := newBrowser(t, n)

	pushed := n.postForm(t, "/par", c.authParams(p, "openid"), c.auth())
	if pushed.status != http.StatusCreated || !strings.HasPrefix(pushed.str(t, "request_uri"), "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("PAR: %d %s", pushed.status, pushed.body)
	}
	ref := url.Values{"client_id": {c.info.ClientID}, "request_uri": {pushed.str(t, "request_uri")}}
	got := b.authorize(ref)
	if !got.isSignIn() {
		t.Fatalf("authorize with request_uri: %d %.300s", got.status, got.body)
	}
	if again := b.authorize(ref); again.status != http.StatusBadRequest {
		t.Errorf("request_uri used twice: %d", again.status)
	}
	// A bad pushed request is refused at the PAR endpoint in JSON.
	bad := c.authParams(p, "openid")
	bad.Set("code_challenge_method", "plain")
	wantError(t, n.postForm(t, "/par", bad, c.auth()), http.StatusBadRequest, "invalid_request")

	resp := b.authorize(strict.authParams(p, "openid")).response(t, strict.redirectURI)
	if resp.Get("error") != "invalid_request" {
		t.Errorf("unpushed request of a PAR client: %v", resp)
	}
}

// TestLogout: RP-initiated logout with an id_token_hint ends the session
// and returns to the client; without one it asks first.
func TestLogout(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	p := newPKCE()
	b := newBrowser(t, n)
	resp := b.codeFor(c, c.authParams(p, "openid"), "alice", alicePassword)
	idt := n.redeem(t, c, resp.Get("code"), p.verifier).str(t, "id_token")

	// Without a hint, a page asks (a link elsewhere cannot sign anyone out).
	if got := b.get(n.url("/logout")); got.status != http.StatusOK || !strings.Contains(got.body, "Sign out?") {
		t.Errorf("logout without hint: %d %.200s", got.status, got.body)
	}
	// An unregistered post-logout URI is refused.
	q := url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://evil.example/"}}
	if got := b.get(n.url("/logout") + "?" + q.Encode()); got.status != http.StatusBadRequest || got.location != "" {
		t.Errorf("unregistered post_logout_redirect_uri: %d %q", got.status, got.location)
	}
	q = url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {c.redirectURI}, "state": {"bye"}}
	got := b.get(n.url("/logout") + "?" + q.Encode())
	if got.status != http.StatusSeeOther || got.location != c.redirectURI+"?state=bye" {
		t.Fatalf("logout: %d %q", got.status, got.location)
	}
	if again := b.authorize(c.authParams(p, "openid")); !again.isSignIn() {
		t.Errorf("after logout the session lives on: %d", again.status)
	}
}

// TestWithdrawConsent: the account page withdraws a consent, and the
// client's refresh tokens die with it.
func TestWithdrawConsent(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	p := newPKCE()
	b := newBrowser(t, n)
	resp := b.codeFor(c, c.authParams(p, "openid offline_access"), "alice", alicePassword)
	tr := n.redeem(t, c, resp.Get("code"), p.verifier)
	rt, at := tr.str(t, "refresh_token"), tr.str(t, "access_token")

	account := b.get(n.url("/account"))
	if account.status != http.StatusOK || !strings.Contains(account.body, "Withdraw") {
		t.Fatalf("account page: %d %.300s", account.status, account.body)
	}
	f := url.Values{"csrf_token": {account.hidden().Get("csrf_token")}, "client_id": {c.info.ClientID}}
	if got := b.post("/account/consents/revoke", f); got.status != http.StatusOK || strings.Contains(got.body, "Withdraw") {
		t.Errorf("after withdrawing: %d %.300s", got.status, got.body)
	}
	wantError(t, n.refresh(t, c, rt, nil), http.StatusBadRequest, "invalid_grant")
	if n.active(t, c.auth(), at) {
		t.Error("access token active after its consent was withdrawn")
	}
	if got := b.authorize(c.authParams(p, "openid")); !got.isConsent() {
		t.Errorf("consent still remembered: %d", got.status)
	}
}

// TestSignInUsernameCase: usernames match without regard to ASCII case,
// and only ASCII case: the Kelvin sign (U+212A) is not a K, so it cannot
// open an account or get a rate limit of its own for one.
func TestSignInUsernameCase(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "kate", alicePassword, nil)
	p := newPKCE()
	b := newBrowser(t, n)
	if got := b.signIn(b.authorize(c.authParams(p, "openid")), "\u212Aate", alicePassword); got.status != http.StatusUnauthorized {
		t.Errorf("Kelvin-sign username: status %d, want 401", got.status)
	}
	if got := b.signIn(b.authorize(c.authParams(p, "openid")), "  KATE ", alicePassword); !got.isConsent() {
		t.Errorf("upper-case username: status %d, want the consent page", got.status)
	}
}

// TestSignInRehash: a password hash made with older parameters still
// signs the user in, and is replaced by one with today's.
func TestSignInRehash(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	alice := newUser(t, n, "alice", alicePassword, nil)
	ctx := context.Background()
	old, err := password.Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}.Hash(alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	u, err := n.srv.Core.Store.User(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	u.PasswordHash = old
	if err := n.srv.Core.Store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, n)
	if got := b.signIn(b.authorize(c.authParams(newPKCE(), "openid")), "alice", alicePassword); !got.isConsent() {
		t.Fatalf("sign-in with an old-parameter hash: %d", got.status)
	}
	u, err = n.srv.Core.Store.User(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash == old {
		t.Fatal("the old-parameter hash was kept")
	}
	if ok, rehash, err := password.Verify(u.PasswordHash, alicePassword); !ok || rehash || err != nil {
		t.Errorf("new hash %q: ok %v, rehash %v, err %v", u.PasswordHash, ok, rehash, err)
	}
}

// TestRefreshAcrossNodes: two nodes on one store, each caching the
// families it rotated. A stale cache never lets a token through: a spent
// token replayed where the cache still calls it current is reuse, and a
// family revoked through the other node is refused as revoked.
func TestRefreshAcrossNodes(t *testing.T) {
	a := startNode(t)
	b := startNode(t, func(cfg *config.Config) { cfg.Issuer, cfg.DataDir = a.issuer, a.cfg.DataDir })
	c := newRP(t, a, "client_secret_basic")
	newUser(t, a, "alice", alicePassword, nil)
	family := func() reply { return codeFamily(t, a, c) }

	// Rotations alternate between the nodes: each finds the other's
	// generation newer than its cache and reads the store.
	rt := family().str(t, "refresh_token")
	for i, n := range []*testNode{b, a, b, a} {
		r := n.refresh(t, c, rt, nil)
		if r.status != http.StatusOK {
			t.Fatalf("rotation %d: %d %s", i, r.status, r.body)
		}
		rt = r.str(t, "refresh_token")
	}

	// Node a rotated last and caches that generation as current; b
	// rotates it on. Replaying the spent token at a is reuse.
	spent := rt
	moved := b.refresh(t, c, spent, nil)
	if moved.status != http.StatusOK {
		t.Fatalf("rotation at b: %d %s", moved.status, moved.body)
	}
	r := a.refresh(t, c, spent, nil)
	wantError(t, r, http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(r.str(t, "error_description"), "already used") {
		t.Errorf("replay against a stale cache: %s, want reuse", r.body)
	}
	wantError(t, b.refresh(t, c, moved.str(t, "refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
	if a.active(t, c.auth(), moved.str(t, "access_token")) {
		t.Error("the access token issued with the newest token survived the reuse")
	}

	// A family revoked through b while a caches it as live.
	tr := family()
	cached := a.refresh(t, c, tr.str(t, "refresh_token"), nil)
	if cached.status != http.StatusOK {
		t.Fatalf("rotation at a: %d %s", cached.status, cached.body)
	}
	if r := b.postForm(t, "/revoke", url.Values{"token": {cached.str(t, "refresh_token")}}, c.auth()); r.status != http.StatusOK {
		t.Fatalf("revoke at b: %d %s", r.status, r.body)
	}
	r = a.refresh(t, c, cached.str(t, "refresh_token"), nil)
	wantError(t, r, http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(r.str(t, "error_description"), "revoked") {
		t.Errorf("refresh of a family revoked elsewhere: %s, want it refused as revoked", r.body)
	}
}

// TestRefreshCachedUser: the refresh grant reads its user from the cache.
// A user disabled through the admin layer cannot refresh the moment the
// update returns (their families are revoked with it); a change made
// straight in the store, as another process's would be, reaches the
// tokens within the cache's poll.
func TestRefreshCachedUser(t *testing.T) {
	n := startNode(t, func(cfg *config.Config) { cfg.CacheRefresh = 100 * time.Millisecond })
	c := newRP(t, n, "client_secret_basic")
	alice := newUser(t, n, "alice", alicePassword, map[string]any{"department": "eng"})
	rt := codeFamily(t, n, c).str(t, "refresh_token")
	r := n.refresh(t, c, rt, nil) // alice is cached now
	if r.status != http.StatusOK || claims(t, r.str(t, "access_token"))["department"] != "eng" {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	rt = r.str(t, "refresh_token")

	ctx := context.Background()
	u, err := n.srv.Core.Store.User(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	u.Claims = map[string]any{"department": "legal"}
	if err := n.srv.Core.Store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the new claim in a refreshed token", func() bool {
		r := n.refresh(t, c, rt, nil)
		if r.status != http.StatusOK {
			t.Fatalf("refresh after a claim change: %d %s", r.status, r.body)
		}
		rt = r.str(t, "refresh_token")
		return claims(t, r.str(t, "access_token"))["department"] == "legal"
	})

	disabled := true
	if _, err := n.admin().UpdateUser(ctx, alice.ID, admin.UserUpdate{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	wantError(t, n.refresh(t, c, rt, nil), http.StatusBadRequest, "invalid_grant")
}
