package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// deviceCodeGrant is the grant type of the device flow (RFC 8628 §3.4).
const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// TestBrowserDeviceFlow runs the device authorization grant (RFC 8628)
// with a device client on plain net/http and headless Chromium as the
// user. First: polls before the decision (authorization_pending, an
// early poll's slow_down, and a poll after the grown interval that is
// pending again), the verification page reached and filled in with the
// keyboard, a wrong code and its alert beside the field, the right code,
// the sign-in page, the consent page naming the client, the scopes and
// the code, Allow, and the tokens, verified with jwx against the JWKS.
// Second: Deny, in the same browser (the session skips the sign-in), and
// access_denied on the device. Third: verification_uri_complete, whose
// code is filled in but approves nothing before the user confirms.
func TestBrowserDeviceFlow(t *testing.T) {
	s := newSigil(t)
	s.createUser(t, alice.username, alice.password, alice.claims)
	aliceID := s.userID(t, alice.username)
	client := s.createDeviceClient(t, "Sigil CLI")
	// One second, the least the server allows, keeps the test short; a
	// slow_down still adds 5 s (RFC 8628 §3.5).
	srv := s.start(t, "--device-poll-interval", "1s")
	dev := deviceClient{issuer: srv.issuer, clientID: client.ClientID, hc: &http.Client{Timeout: 10 * time.Second}}
	b := newBrowser(t)

	// 1. The device starts; the user has not decided, and a poll sooner
	// than the interval is told to slow down.
	scopes := []string{"openid", "profile", "offline_access", "read:files"}
	first := dev.authorize(t, strings.Join(scopes, " "))
	if first.VerificationURI != srv.issuer+"/device" || first.VerificationURIComplete != first.VerificationURI+"?user_code="+first.UserCode {
		t.Errorf("verification_uri %q, verification_uri_complete %q; want %s/device and the code in its query", first.VerificationURI, first.VerificationURIComplete, srv.issuer)
	}
	if first.Interval != 1 || first.ExpiresIn <= 0 {
		t.Errorf("interval %d, expires_in %d; want 1 and a positive lifetime", first.Interval, first.ExpiresIn)
	}
	wantPollError(t, "first poll", first.poll(t), "authorization_pending")
	wantPollError(t, "an immediate second poll", first.pollNow(t), "slow_down")
	if first.interval != 6*time.Second {
		t.Fatalf("the device's interval is %s after slow_down, want 6s", first.interval)
	}

	// 2. The verification page, with the keyboard: the code field has a
	// label and gets the focus; a wrong code, typed and submitted with
	// Enter, gets an alert tied to the field, which keeps what was typed.
	b.do(t, "open verification_uri", chromedp.Navigate(first.VerificationURI), chromedp.WaitVisible(chromedp.CSS("#user_code")))
	b.screenshot(t, "1-code")
	b.checkCodePage(t)
	t.Logf("focus reached #user_code after %d Tab presses", b.tabTo(t, "user_code"))
	wrong := wrongUserCode(first.UserCode)
	b.do(t, "enter a wrong code",
		chromedp.KeyEvent(wrong),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`[role="alert"]`)))
	b.screenshot(t, "2-wrong-code")
	b.checkCodeAlert(t, wrong)

	// 3. The right code, submitted with the button, leads to the sign-in
	// page; signing in leads to the consent page.
	b.do(t, "enter the right code",
		clearInput("user_code"),
		chromedp.SendKeys(chromedp.CSS("#user_code"), first.UserCode),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#username")))
	b.screenshot(t, "3-sign-in")
	b.checkSignInPage(t)
	b.do(t, "sign in",
		chromedp.SendKeys(chromedp.CSS("#username"), alice.username),
		chromedp.SendKeys(chromedp.CSS("#password"), alice.password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[name="decision"][value="allow"]`)))
	b.screenshot(t, "4-consent")
	b.checkDeviceConsentPage(t, "Sigil CLI", first.UserCode, scopes)

	// 4. While the user reads the page, a poll that waited out the grown
	// interval is pending, not slowed down again.
	wantPollError(t, "a poll after the grown interval", first.poll(t), "authorization_pending")

	// 5. Allow; the device's next poll gets the tokens.
	b.do(t, "allow", chromedp.Click(chromedp.CSS(`button[name="decision"][value="allow"]`)), chromedp.WaitVisible(chromedp.CSS(`[role="status"]`)))
	b.screenshot(t, "5-connected")
	if h := get(t, b, "read the heading", chromedp.Text(chromedp.CSS("h1"))); strings.TrimSpace(h) != "Device connected" {
		t.Errorf("after Allow the page says %q, want Device connected", h)
	}
	tokens := first.poll(t)
	checkDeviceTokens(t, srv.issuer, tokens, aliceID, client.ClientID, scopes)
	if tokens.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}
	if r := dev.refresh(t, tokens.RefreshToken); r.Status != http.StatusOK || r.AccessToken == "" {
		t.Errorf("refresh: status %d, error %q", r.Status, r.Error)
	}

	// 6. A second device, in the same browser: the session skips the
	// sign-in, the user denies, and the device is told so.
	second := dev.authorize(t, "openid")
	b.do(t, "enter the second code",
		chromedp.Navigate(second.VerificationURI),
		chromedp.WaitVisible(chromedp.CSS("#user_code")),
		chromedp.SendKeys(chromedp.CSS("#user_code"), second.UserCode),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#username, button[name="decision"][value="deny"]`)))
	b.screenshot(t, "6-consent-again")
	if b.exists(t, "#username") {
		t.Fatalf("the sign-in page came again: the session was not kept (page %s)", b.url(t))
	}
	b.checkDeviceConsentPage(t, "Sigil CLI", second.UserCode, []string{"openid"})
	b.do(t, "deny", chromedp.Click(chromedp.CSS(`button[name="decision"][value="deny"]`)), chromedp.WaitVisible(chromedp.CSS(`[role="status"]`)))
	b.screenshot(t, "7-denied")
	if h := get(t, b, "read the heading", chromedp.Text(chromedp.CSS("h1"))); strings.TrimSpace(h) != "Access denied" {
		t.Errorf("after Deny the page says %q, want Access denied", h)
	}
	wantPollError(t, "a poll after Deny", second.poll(t), "access_denied")

	// 7. verification_uri_complete fills the code in and approves nothing
	// until the user continues and allows.
	third := dev.authorize(t, "openid profile")
	b.do(t, "open verification_uri_complete", chromedp.Navigate(third.VerificationURIComplete), chromedp.WaitVisible(chromedp.CSS("#user_code")))
	b.screenshot(t, "8-prefilled")
	if v := get(t, b, "read the code field", chromedp.Value(chromedp.CSS("#user_code"))); v != third.UserCode {
		t.Errorf("verification_uri_complete shows %q in the code field, want %q", v, third.UserCode)
	}
	if b.exists(t, `button[name="decision"]`) {
		t.Errorf("verification_uri_complete went past the code page")
	}
	wantPollError(t, "a poll with the code only filled in", third.poll(t), "authorization_pending")
	b.do(t, "continue with the filled-in code",
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[name="decision"][value="allow"]`)))
	b.screenshot(t, "9-consent-complete")
	b.checkDeviceConsentPage(t, "Sigil CLI", third.UserCode, []string{"openid", "profile"})
	b.do(t, "allow", chromedp.Click(chromedp.CSS(`button[name="decision"][value="allow"]`)), chromedp.WaitVisible(chromedp.CSS(`[role="status"]`)))
	b.screenshot(t, "10-connected")
	checkDeviceTokens(t, srv.issuer, third.poll(t), aliceID, client.ClientID, []string{"openid", "profile"})
}

// userID returns the id of the user with the given username, the sub of
// their tokens.
func (s *sigil) userID(t *testing.T, username string) string {
	t.Helper()
	out := s.run(t, "", "user", "get", username, "--json")
	var u struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &u); err != nil || u.ID == "" {
		t.Fatalf("sigil user get --json: no id (%v):\n%s", err, out)
	}
	return u.ID
}

// createDeviceClient registers a public client of the device flow, with
// refresh tokens, as the README shows.
func (s *sigil) createDeviceClient(t *testing.T, name string) registeredClient {
	t.Helper()
	out := s.run(t, "", "client", "create", "--name", name, "--auth-method", "none",
		"--grant-types", deviceCodeGrant+",refresh_token",
		"--scopes", "openid profile offline_access read:files", "--json")
	var c registeredClient
	if err := json.Unmarshal(out, &c); err != nil || c.ClientID == "" {
		t.Fatalf("sigil client create --json: no client_id (%v):\n%s", err, out)
	}
	return c
}

// deviceClient is the device's side of RFC 8628 on plain net/http: a
// public client that starts authorizations and polls the token endpoint.
type deviceClient struct {
	issuer, clientID string
	hc               *http.Client
}

// deviceAuthorization is one authorization the device started: the
// device authorization response (RFC 8628 §3.2) and the polling state.
type deviceAuthorization struct {
	dev                     deviceClient
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`

	// interval is the least time between polls: the server's, plus 5 s
	// for each slow_down (§3.5). last is when the last poll's answer
	// came, zero before the first poll.
	interval time.Duration
	last     time.Time
}

// tokenReply is the token endpoint's answer: a token response (RFC 6749
// §5.1) or an error (§5.2).
type tokenReply struct {
	Status       int    `json:"-"`
	CacheControl string `json:"-"`

	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	RefreshToken     string `json:"refresh_token"`
	IDToken          string `json:"id_token"`
	Scope            string `json:"scope"`
}

// authorize asks the device authorization endpoint (RFC 8628 §3.1).
func (d deviceClient) authorize(t *testing.T, scope string) *deviceAuthorization {
	t.Helper()
	resp, err := d.hc.PostForm(d.issuer+"/device_authorization", url.Values{"client_id": {d.clientID}, "scope": {scope}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := &deviceAuthorization{dev: d}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("device authorization: status %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, a); err != nil || a.DeviceCode == "" || a.UserCode == "" || a.VerificationURI == "" {
		t.Fatalf("device authorization response (%v): %s", err, body)
	}
	a.interval = time.Duration(a.Interval) * time.Second
	return a
}

// poll waits until the interval has passed since the last poll's answer,
// then polls. The server takes the poll's time when the request reaches
// it, which is after the wait, so a poll that waits is never early.
func (a *deviceAuthorization) poll(t *testing.T) tokenReply {
	t.Helper()
	if !a.last.IsZero() {
		time.Sleep(time.Until(a.last.Add(a.interval)))
	}
	return a.pollNow(t)
}

// pollNow polls the token endpoint at once (RFC 8628 §3.4) and, on
// slow_down, grows the interval by 5 s as §3.5 asks of the client.
func (a *deviceAuthorization) pollNow(t *testing.T) tokenReply {
	t.Helper()
	r := a.dev.token(t, url.Values{"grant_type": {deviceCodeGrant}, "device_code": {a.DeviceCode}})
	a.last = time.Now()
	if r.Error == "slow_down" {
		a.interval += 5 * time.Second
	}
	return r
}

// refresh redeems a refresh token (RFC 6749 §6).
func (d deviceClient) refresh(t *testing.T, refreshToken string) tokenReply {
	t.Helper()
	return d.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// token posts form with the client's client_id to the token endpoint.
func (d deviceClient) token(t *testing.T, form url.Values) tokenReply {
	t.Helper()
	form.Set("client_id", d.clientID)
	resp, err := d.hc.PostForm(d.issuer+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := tokenReply{Status: resp.StatusCode, CacheControl: resp.Header.Get("Cache-Control")}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("token endpoint: status %d, not JSON (%v): %s", resp.StatusCode, err, body)
	}
	return r
}

// wantPollError checks that a poll got the RFC 8628 §3.5 error code.
func wantPollError(t *testing.T, what string, r tokenReply, code string) {
	t.Helper()
	if r.Status != http.StatusBadRequest || r.Error != code {
		t.Fatalf("%s: status %d, error %q (%s); want 400 %s", what, r.Status, r.Error, r.ErrorDescription, code)
	}
	t.Logf("%s: %s (%s)", what, r.Error, r.ErrorDescription)
}

// wrongUserCode returns a user code of the right form that is not code.
func wrongUserCode(code string) string {
	if code[0] == 'B' {
		return "C" + code[1:]
	}
	return "B" + code[1:]
}

// checkCodePage checks the code entry form: it posts to /device, carries
// csrf_token, and the field has a label.
func (b *browser) checkCodePage(t *testing.T) {
	t.Helper()
	for _, sel := range []string{
		`form[method="post" i][action$="/device"]`,
		`form input[type="hidden"][name="csrf_token"]`,
		`input#user_code[name="user_code"][type="text"]`,
		`label[for="user_code"]`,
		`button[type="submit"]`,
	} {
		if !b.exists(t, sel) {
			t.Errorf("the code page has no %s", sel)
		}
	}
	if l := get(t, b, "read the label", chromedp.Text(chromedp.CSS(`label[for="user_code"]`))); strings.TrimSpace(l) == "" {
		t.Errorf("the code field's label is empty")
	}
}

// checkCodeAlert checks the code page after a refused code: the field
// is still there with what was typed, marked invalid, and described by
// an alert in the same form that says something.
func (b *browser) checkCodeAlert(t *testing.T, typed string) {
	t.Helper()
	if !b.exists(t, "#user_code") {
		t.Fatalf("after a wrong code the alert is not on the code page (%s)", b.url(t))
	}
	alert := get(t, b, "read the alert", chromedp.Text(chromedp.CSS(`[role="alert"]`)))
	t.Logf("alert after a wrong code: %q", strings.TrimSpace(alert))
	if strings.TrimSpace(alert) == "" {
		t.Errorf("the alert after a wrong code is empty")
	}
	tied := get(t, b, "check the alert is tied to the field", chromedp.Evaluate[bool](`(() => {
		const f = document.getElementById("user_code"), a = document.querySelector('[role="alert"]');
		return f.getAttribute("aria-invalid") === "true" && a.id !== "" &&
			(f.getAttribute("aria-describedby") || "").split(/\s+/).includes(a.id) && f.form.contains(a);
	})()`))
	if !tied {
		t.Errorf("the code field is not aria-invalid, or not described by the alert in its form")
	}
	if v := get(t, b, "read the code field", chromedp.Value(chromedp.CSS("#user_code"))); v != typed {
		t.Errorf("after a wrong code the field holds %q, want what was typed, %q", v, typed)
	}
}

// checkDeviceConsentPage checks the device consent form and that it names
// the client, the user code (on one line) and one line per scope, a scope
// without a description by its name.
func (b *browser) checkDeviceConsentPage(t *testing.T, clientName, userCode string, scopes []string) {
	t.Helper()
	for _, sel := range []string{
		`form[method="post" i][action$="/device/consent"]`,
		`form input[type="hidden"][name="csrf_token"]`,
		`form input[type="hidden"][name="ticket"]`,
		`button[type="submit"][name="decision"][value="allow"]`,
		`button[type="submit"][name="decision"][value="deny"]`,
	} {
		if !b.exists(t, sel) {
			t.Errorf("the device consent page has no %s", sel)
		}
	}
	text := get(t, b, "read the page", chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(text, clientName) || !strings.Contains(text, userCode) {
		t.Errorf("the device consent page names neither the client %q nor the code %s:\n%s", clientName, userCode, text)
	}
	// The user compares the code with the device's (RFC 8628 §5.4): it is
	// shown whole, on one line.
	if n := get(t, b, "count the code's lines", chromedp.Evaluate[int](`document.getElementById("user-code").getClientRects().length`)); n != 1 {
		t.Errorf("the device consent page shows the code %s broken over %d lines", userCode, n)
	}
	lines := get(t, b, "read the scopes", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("ul.scopes li"), li => li.textContent.trim())`))
	t.Logf("the consent page lists %q", lines)
	if len(lines) != len(scopes) {
		t.Errorf("the device consent page lists %d scopes %q, want %d for %q", len(lines), lines, len(scopes), scopes)
	}
	if slices.Contains(scopes, "read:files") && !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "read:files") }) {
		t.Errorf("the device consent page does not name read:files: %q", lines)
	}
}

// checkDeviceTokens checks a successful poll: the access token verifies
// with jwx (not go-jose, which Sigil signs with) against the published
// JWKS, names the user and the client, and carries the scopes; the ID
// token is for the client and the same user.
func checkDeviceTokens(t *testing.T, issuer string, r tokenReply, sub, clientID string, scopes []string) {
	t.Helper()
	if r.Status != http.StatusOK || r.AccessToken == "" {
		t.Fatalf("poll after Allow: status %d, error %q (%s); want tokens", r.Status, r.Error, r.ErrorDescription)
	}
	if r.CacheControl != "no-store" || !strings.EqualFold(r.TokenType, "Bearer") {
		t.Errorf("token response: Cache-Control %q, token_type %q; want no-store and Bearer", r.CacheControl, r.TokenType)
	}
	set := fetchJWKS(t, issuer)
	msg, err := jws.ParseString(r.AccessToken)
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	if typ, _ := msg.Signatures()[0].ProtectedHeaders().Type(); typ != "at+jwt" {
		t.Errorf("access token typ %q, want at+jwt (RFC 9068)", typ)
	}
	at, err := jwt.ParseString(r.AccessToken, jwt.WithKeySet(set), jwt.WithValidate(true), jwt.WithIssuer(issuer))
	if err != nil {
		t.Fatalf("the access token does not verify against the JWKS: %v", err)
	}
	var gotClient, gotScope string
	at.Get("client_id", &gotClient)
	at.Get("scope", &gotScope)
	if got, _ := at.Subject(); got != sub || gotClient != clientID {
		t.Errorf("access token sub %q, client_id %q; want %q and %q", got, gotClient, sub, clientID)
	}
	if !sameSet(strings.Fields(gotScope), scopes) || !sameSet(strings.Fields(r.Scope), scopes) {
		t.Errorf("scope %q in the access token, %q in the response; want %q", gotScope, r.Scope, scopes)
	}
	if r.IDToken == "" {
		t.Fatal("no ID token with openid")
	}
	idt, err := jwt.ParseString(r.IDToken, jwt.WithKeySet(set), jwt.WithValidate(true), jwt.WithIssuer(issuer), jwt.WithAudience(clientID))
	if err != nil {
		t.Fatalf("the ID token does not verify against the JWKS: %v", err)
	}
	if got, _ := idt.Subject(); got != sub {
		t.Errorf("ID token sub %q, want %q", got, sub)
	}
}

// fetchJWKS reads the issuer's JWKS from the jwks_uri of its metadata.
func fetchJWKS(t *testing.T, issuer string) jwk.Set {
	t.Helper()
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(httpGet(t, issuer+"/.well-known/openid-configuration"), &meta); err != nil || meta.JWKSURI == "" {
		t.Fatalf("discovery: no jwks_uri (%v)", err)
	}
	set, err := jwk.Parse(httpGet(t, meta.JWKSURI))
	if err != nil {
		t.Fatalf("jwx cannot parse the JWKS: %v", err)
	}
	return set
}

// httpGet returns the body of a 200 answer to GET u.
func httpGet(t *testing.T, u string) []byte {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", u, resp.StatusCode, body)
	}
	return body
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}
