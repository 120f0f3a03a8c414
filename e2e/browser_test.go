package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// alice is the user the browser signs in as.
var alice = struct {
	username, password string
	claims             map[string]any
}{
	username: "alice",
	password: "correct horse battery staple",
	claims:   map[string]any{"email": "alice@example.com", "email_verified": true, "name": "Alice"},
}

// TestBrowserSignIn drives headless Chromium through the authorization
// code flow in front of the Go relying party: the sign-in page (reached
// and filled in with the keyboard, labels checked), a wrong password, the
// right one, the consent page and Deny; then, in the same browser, the
// consent page again without signing in (the session) and Allow; then a
// third authorization that shows no page of Sigil's at all (session and
// remembered consent). Each page is saved as a screenshot.
func TestBrowserSignIn(t *testing.T) {
	s := newSigil(t)
	rp := startRelyingParty(t)
	s.createUser(t, alice.username, alice.password, alice.claims)
	client := s.createClient(t, "browser relying party", rp.URL+"/callback", "client_secret_basic")
	srv := s.start(t)
	rp.serve(t, srv.issuer, client)
	b := newBrowser(t)

	// 1. The sign-in page, and the keyboard: focus starts on the username
	// field or Tab reaches it, and both fields have labels.
	b.do(t, "open the relying party's login", chromedp.Navigate(rp.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#username")))
	b.screenshot(t, "1-sign-in")
	if !strings.HasPrefix(b.url(t), srv.issuer+"/authorize") {
		t.Errorf("sign-in page at %s, want under %s/authorize", b.url(t), srv.issuer)
	}
	b.checkSignInPage(t)
	tabs := b.tabTo(t, "username")
	t.Logf("focus reached #username after %d Tab presses", tabs)

	// 2. A wrong password, typed and submitted with the keyboard.
	b.do(t, "sign in with a wrong password",
		chromedp.KeyEvent(alice.username),
		chromedp.Focus(chromedp.CSS("#password")),
		chromedp.KeyEvent("not the password"),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`[role="alert"]`)))
	b.screenshot(t, "2-wrong-password")
	alert := get(t, b, "read the alert", chromedp.Text(chromedp.CSS(`[role="alert"]`)))
	t.Logf("alert after a wrong password: %q", strings.TrimSpace(alert))
	if strings.TrimSpace(alert) == "" {
		t.Errorf("the alert after a wrong password is empty")
	}
	if !b.exists(t, "#username") || !b.exists(t, "#password") {
		t.Fatalf("after a wrong password the alert is not on the sign-in page (%s)", b.url(t))
	}

	// 3. The right password, submitted with the button; then Deny.
	b.do(t, "sign in with the right password",
		clearInput("username"),
		chromedp.SendKeys(chromedp.CSS("#username"), alice.username),
		clearInput("password"),
		chromedp.SendKeys(chromedp.CSS("#password"), alice.password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[name="decision"][value="allow"]`)))
	b.screenshot(t, "3-consent")
	b.checkConsentPage(t)
	b.do(t, "deny consent", chromedp.Click(chromedp.CSS(`button[name="decision"][value="deny"]`)))
	if res := b.result(t); res.Error != "access_denied" {
		t.Errorf("after Deny the relying party got %+v, want error access_denied", res)
	}
	b.screenshot(t, "4-denied")

	// 4. Again in the same browser: the session skips sign-in, and
	// consent is asked again (it was denied); Allow.
	b.do(t, "authorize again", chromedp.Navigate(rp.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`#username, button[name="decision"][value="allow"], #result`)))
	b.screenshot(t, "5-consent-again")
	if b.exists(t, "#username") {
		t.Fatalf("the sign-in page came again: the session was not kept (page %s)", b.url(t))
	}
	if !b.exists(t, `button[name="decision"][value="allow"]`) {
		t.Fatalf("no consent page after a denial, at %s", b.url(t))
	}
	b.do(t, "allow", chromedp.Click(chromedp.CSS(`button[name="decision"][value="allow"]`)))
	first := b.result(t)
	b.screenshot(t, "6-signed-in")
	checkSignedIn(t, first)

	// 5. A third authorization shows no page of Sigil's: the session and
	// the remembered consent take the browser straight back.
	b.forgetNavigations()
	b.do(t, "authorize a third time", chromedp.Navigate(rp.URL+"/login"))
	second := b.result(t)
	b.screenshot(t, "7-no-prompt")
	for _, u := range b.navigations() {
		if strings.HasPrefix(u, srv.issuer) {
			t.Errorf("the browser showed %s; with a session and remembered consent it should go straight back", u)
		}
	}
	checkSignedIn(t, second)
	if second.Subject != first.Subject {
		t.Errorf("subject %q on the third authorization, %q on the second", second.Subject, first.Subject)
	}
}

// checkSignedIn checks what the relying party got for alice.
func checkSignedIn(t *testing.T, res rpResult) {
	t.Helper()
	if res.Error != "" {
		t.Fatalf("the relying party failed: %s", res.Error)
	}
	if res.Subject == "" || res.Email != "alice@example.com" || !res.EmailVerified || res.Name != "Alice" {
		t.Errorf("relying party got sub %q, email %q (verified %v), name %q; want alice's", res.Subject, res.Email, res.EmailVerified, res.Name)
	}
	if res.IDTokenAlg != "RS256" || res.IDTokenTyp != "JWT" {
		t.Errorf("ID token header alg %q typ %q, want RS256 and JWT", res.IDTokenAlg, res.IDTokenTyp)
	}
	if !strings.Contains(" "+res.Scope+" ", " offline_access ") {
		t.Errorf("granted scope %q lacks offline_access", res.Scope)
	}
	if !res.Refreshed || !res.Rotated {
		t.Errorf("refresh: new access token %v, new refresh token %v; want both", res.Refreshed, res.Rotated)
	}
}

// browser is one headless Chromium with one tab.
type browser struct {
	ctx context.Context

	mu  sync.Mutex
	nav []string // main-frame URLs shown, in order
}

// chromium returns the Chromium to run: $SIGIL_CHROMIUM, or chromium on
// PATH. It fails the test when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SIGIL_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("these tests need Chromium: install Debian's chromium package (.ci/run does) or set SIGIL_CHROMIUM: %v", err)
	}
	return p
}

// newBrowser starts headless Chromium on a fresh profile, with the flags
// this machine needs (no sandbox as root, and nothing that would reach out
// to the network by itself), and closes it when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1000, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser, on a context without a deadline
	// (one with a deadline would end the browser with it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	b := &browser{ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*page.EventFrameNavigated); ok && e.Frame.ParentID == "" {
			b.mu.Lock()
			b.nav = append(b.nav, e.Frame.URL)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("listen to Chromium's events: %v", err)
	}
	return b
}

// do runs actions in order, within 20 seconds.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, b, what, chromedp.Steps(actions...))
}

// get runs an action that reads a value, within 20 seconds; on failure it
// saves a screenshot, logs the page and fails the test.
func get[T any](t *testing.T, b *browser, what string, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		b.screenshot(t, "failed")
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		u, _ := chromedp.Run(ctx, chromedp.Location())
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		t.Fatalf("%s: %v\npage %s:\n%s", what, err, u, html)
	}
	return v
}

// url returns the current page's URL.
func (b *browser) url(t *testing.T) string {
	t.Helper()
	return get(t, b, "read the location", chromedp.Location())
}

// exists reports whether the page has an element matching selector.
func (b *browser) exists(t *testing.T, selector string) bool {
	t.Helper()
	return get(t, b, "query "+selector, chromedp.Evaluate[bool](`document.querySelector(`+jsString(selector)+`) !== null`))
}

// result waits for the relying party's callback page and decodes it.
func (b *browser) result(t *testing.T) rpResult {
	t.Helper()
	b.do(t, "wait for the relying party's result", chromedp.WaitVisible(chromedp.CSS("#result")))
	text := get(t, b, "read the relying party's result", chromedp.Text(chromedp.CSS("#result")))
	var res rpResult
	if err := json.Unmarshal([]byte(text), &res); err != nil {
		t.Fatalf("relying party result: %v\n%s", err, text)
	}
	return res
}

// checkSignInPage checks the sign-in form against the contract: it posts
// to …/login, carries csrf_token and ticket, and each field has a label.
func (b *browser) checkSignInPage(t *testing.T) {
	t.Helper()
	for _, sel := range []string{
		`form[method="post" i][action$="/login"]`,
		`form input[type="hidden"][name="csrf_token"]`,
		`form input[type="hidden"][name="ticket"]`,
		`input#username[name="username"]`,
		`input#password[name="password"][type="password"]`,
		`label[for="username"]`,
		`label[for="password"]`,
		`button[type="submit"]`,
	} {
		if !b.exists(t, sel) {
			t.Errorf("the sign-in page has no %s", sel)
		}
	}
}

// checkConsentPage checks the consent form against the contract.
func (b *browser) checkConsentPage(t *testing.T) {
	t.Helper()
	for _, sel := range []string{
		`form[method="post" i][action$="/consent"]`,
		`form input[type="hidden"][name="csrf_token"]`,
		`form input[type="hidden"][name="ticket"]`,
		`button[type="submit"][name="decision"][value="allow"]`,
		`button[type="submit"][name="decision"][value="deny"]`,
	} {
		if !b.exists(t, sel) {
			t.Errorf("the consent page has no %s", sel)
		}
	}
}

// tabTo returns how many Tab presses (none when the page gives it focus
// at once) bring the focus to the element with the given id; it fails
// the test when ten do not.
func (b *browser) tabTo(t *testing.T, id string) int {
	t.Helper()
	for n := 0; n <= 10; n++ {
		focused := get(t, b, "read the focus", chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`))
		if focused == id {
			return n
		}
		b.do(t, "press Tab", chromedp.KeyEvent(kb.Tab))
	}
	t.Fatalf("ten Tab presses did not reach #%s", id)
	return 0
}

// forgetNavigations clears the record of pages shown.
func (b *browser) forgetNavigations() {
	b.mu.Lock()
	b.nav = nil
	b.mu.Unlock()
}

// navigations returns the main-frame URLs shown since the last
// forgetNavigations. Redirects are not shown, so they are not in it.
func (b *browser) navigations() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.nav...)
}

// screenshot saves the page as PNG under screenshotDir and logs its path.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir := screenshotDir(t)
	path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// screenshotDir returns $SIGIL_SCREENSHOTS, or sigil-screenshots under
// the system's temporary directory (outside the repository), creating it.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SIGIL_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sigil-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// clearInput empties the value of the input with the given id.
func clearInput(id string) chromedp.Action[chromedp.Void] {
	clear := chromedp.Evaluate[bool](`(el => { el.value = ""; return true })(document.getElementById(` + jsString(id) + `))`)
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := clear(ctx, tg)
		return err
	})
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
