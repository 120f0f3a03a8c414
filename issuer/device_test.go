package issuer_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
)

// The device authorization grant (RFC 8628) end to end: a CLI-like
// client on one side, a browser on the other, a real node between.

// fastDevice polls every second (the least the configuration allows),
// so the tests wait seconds, not minutes.
func fastDevice(c *config.Config) { c.DevicePollInterval = time.Second }

// device is a client of the device flow: public (client_id only) unless
// it has a secret.
type device struct {
	n    *testNode
	info *admin.ClientInfo
}

func newDevice(t *testing.T, n *testNode, method string) device {
	t.Helper()
	return device{n: n, info: n.newClient(t, admin.ClientSpec{
		GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
		Scope:      "openid profile offline_access read:files",
		AuthMethod: method,
	})}
}

func (d device) post(t *testing.T, path string, form url.Values) reply {
	t.Helper()
	a := auth{}
	if d.info.ClientSecret != "" {
		a = basic(d.info)
	} else {
		form.Set("client_id", d.info.ClientID)
	}
	return d.n.postForm(t, path, form, a)
}

// deviceStart is the device authorization response.
type deviceStart struct{ deviceCode, userCode, uri, uriComplete string }

func (d device) start(t *testing.T, scope string) deviceStart {
	t.Helper()
	r := d.post(t, "/device_authorization", url.Values{"scope": {scope}})
	if r.status != http.StatusOK {
		t.Fatalf("device authorization: status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	if m["expires_in"] == nil || m["interval"] == nil {
		t.Errorf("response lacks expires_in or interval: %s", r.body)
	}
	return deviceStart{r.str(t, "device_code"), r.str(t, "user_code"), r.str(t, "verification_uri"), r.str(t, "verification_uri_complete")}
}

// poll asks the token endpoint once and returns the reply.
func (d device) poll(t *testing.T, deviceCode string) reply {
	t.Helper()
	return d.post(t, "/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}})
}

// wantError checks an RFC 6749 §5.2 error of the token endpoint.
func wantDeviceError(t *testing.T, what string, r reply, code string) {
	t.Helper()
	if r.status != http.StatusBadRequest || r.str(t, "error") != code {
		t.Fatalf("%s: status %d %s, want 400 %s", what, r.status, r.body, code)
	}
}

// enterCode opens the verification page, submits code and returns the
// page that follows.
func (b *browser) enterCode(code string) page {
	b.t.Helper()
	p := b.get(b.n.url("/device"))
	f := p.hidden()
	f.Set("user_code", code)
	return b.post("/device", f)
}

// deviceDecide submits the device consent form of p.
func (b *browser) deviceDecide(p page, decision string) page {
	b.t.Helper()
	if !strings.Contains(p.body, `action="`+b.n.url("/device/consent")+`"`) {
		b.t.Fatalf("not the device consent page (status %d): %.400s", p.status, p.body)
	}
	f := p.hidden()
	f.Set("decision", decision)
	return b.post("/device/consent", f)
}

func TestDeviceFlow(t *testing.T) {
	n := startNode(t, fastDevice)
	user := newUser(t, n, "dana", "correct horse battery", map[string]any{"name": "Dana"})
	d := newDevice(t, n, "none")

	s := d.start(t, "openid profile offline_access read:files")
	if s.uri != n.url("/device") || !strings.HasPrefix(s.uriComplete, s.uri+"?user_code=") {
		t.Errorf("verification_uri %q, verification_uri_complete %q", s.uri, s.uriComplete)
	}
	if len(s.userCode) != 9 || s.userCode[4] != '-' || strings.ContainsAny(s.userCode, "AEIOUY0123456789") {
		t.Errorf("user_code %q is not XXXX-XXXX of the consonant alphabet", s.userCode)
	}
	wantDeviceError(t, "first poll", d.poll(t, s.deviceCode), "authorization_pending")
	wantDeviceError(t, "immediate second poll", d.poll(t, s.deviceCode), "slow_down")

	// The user arrives by verification_uri_complete: the code is filled
	// in, and nothing is approved until the user confirms.
	b := newBrowser(t, n)
	p := b.get(s.uriComplete)
	if p.status != http.StatusOK || !strings.Contains(p.body, `value="`+s.userCode+`"`) || strings.Contains(p.body, `value="allow"`) {
		t.Fatalf("verification_uri_complete: status %d, want the code form prefilled with %s: %.400s", p.status, s.userCode, p.body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
		if p.header.Get(h) == "" {
			t.Errorf("verification page lacks %s", h)
		}
	}
	if !strings.Contains(p.body, `<label for="user_code">`) {
		t.Error("the code field has no label")
	}
	// Case and dashes do not matter.
	f := p.hidden()
	f.Set("user_code", strings.ToLower(strings.ReplaceAll(s.userCode, "-", " ")))
	p = b.post("/device", f)
	p = b.signIn(p, "dana", "correct horse battery")
	if !strings.Contains(p.body, s.userCode) || !strings.Contains(p.body, t.Name()) {
		t.Errorf("the device consent page names neither the code %s nor the client: %.600s", s.userCode, p.body)
	}
	// Still pending while the user looks at the page.
	time.Sleep(1100 * time.Millisecond)
	wantDeviceError(t, "poll before the decision", d.poll(t, s.deviceCode), "slow_down") // the interval is 6 s now
	p = b.deviceDecide(p, "allow")
	if p.status != http.StatusOK || !strings.Contains(p.body, "Device connected") {
		t.Fatalf("after allow: status %d: %.300s", p.status, p.body)
	}

	// Polls honouring the grown interval get the tokens.
	time.Sleep(6 * time.Second)
	r := d.poll(t, s.deviceCode)
	if r.status != http.StatusOK {
		t.Fatalf("poll after approval: status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	if m["refresh_token"] == nil || m["access_token"] == nil {
		t.Errorf("want access and refresh tokens: %s", r.body)
	}
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, n.issuer)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: d.info.ClientID}).Verify(ctx, r.str(t, "id_token"))
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idt.Subject != user.ID {
		t.Errorf("ID token sub = %q, want %q", idt.Subject, user.ID)
	}
	var claims struct {
		Name string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Name != "Dana" {
		t.Errorf("ID token name = %q (%v), want Dana (profile)", claims.Name, err)
	}
	// The refresh token works.
	rr := d.post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str(t, "refresh_token")}})
	if rr.status != http.StatusOK {
		t.Errorf("refresh: status %d: %s", rr.status, rr.body)
	}

	// Once only; and the replay revokes what the first redemption issued.
	wantDeviceError(t, "second redemption", d.poll(t, s.deviceCode), "invalid_grant")
	intro := n.postForm(t, "/introspect", url.Values{"token": {r.str(t, "access_token")}}, basic(introspector(t, n)))
	if active, _ := intro.json(t)["active"].(bool); active {
		t.Error("the access token is still active after the device code was replayed")
	}
	// The code is spent: the page refuses it like any other.
	p = b.enterCode(s.userCode)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "That code is not valid") {
		t.Errorf("used code: status %d: %.300s", p.status, p.body)
	}
}

// introspector registers a confidential client that may introspect.
func introspector(t *testing.T, n *testNode) *admin.ClientInfo {
	return n.newClient(t, admin.ClientSpec{Name: "rs", GrantTypes: []string{"client_credentials"}})
}

func TestDeviceSlowDownInterval(t *testing.T) {
	n := startNode(t, fastDevice)
	d := newDevice(t, n, "")
	s := d.start(t, "read:files")
	wantDeviceError(t, "first poll", d.poll(t, s.deviceCode), "authorization_pending")
	time.Sleep(1100 * time.Millisecond)
	wantDeviceError(t, "poll after the interval", d.poll(t, s.deviceCode), "authorization_pending")
	wantDeviceError(t, "early poll", d.poll(t, s.deviceCode), "slow_down")
	// The interval is 6 s now: a poll a second later is still too early.
	time.Sleep(1100 * time.Millisecond)
	wantDeviceError(t, "poll after the old interval", d.poll(t, s.deviceCode), "slow_down")
}

func TestDeviceDeny(t *testing.T) {
	n := startNode(t, fastDevice)
	newUser(t, n, "dana", "correct horse battery", nil)
	d := newDevice(t, n, "none")
	s := d.start(t, "openid")
	b := newBrowser(t, n)
	p := b.signIn(b.enterCode(s.userCode), "dana", "correct horse battery")
	p = b.deviceDecide(p, "deny")
	if p.status != http.StatusOK || !strings.Contains(p.body, "Access denied") {
		t.Fatalf("after deny: status %d: %.300s", p.status, p.body)
	}
	wantDeviceError(t, "poll after deny", d.poll(t, s.deviceCode), "access_denied")
	// The decision stands: the code cannot be entered again to allow it.
	p = b.enterCode(s.userCode)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "That code is not valid") {
		t.Errorf("denied code entered again: status %d: %.300s", p.status, p.body)
	}
}

func TestDeviceExpired(t *testing.T) {
	n := startNode(t, fastDevice, func(c *config.Config) { c.DeviceCodeTTL = time.Second })
	newUser(t, n, "dana", "correct horse battery", nil)
	d := newDevice(t, n, "none")
	s := d.start(t, "openid")
	time.Sleep(1200 * time.Millisecond)
	wantDeviceError(t, "poll after expiry", d.poll(t, s.deviceCode), "expired_token")
	p := newBrowser(t, n).enterCode(s.userCode)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "That code is not valid") {
		t.Errorf("expired code: status %d: %.300s", p.status, p.body)
	}
}

func TestDeviceOtherClient(t *testing.T) {
	n := startNode(t, fastDevice)
	newUser(t, n, "dana", "correct horse battery", nil)
	d, other := newDevice(t, n, "none"), newDevice(t, n, "")
	s := d.start(t, "openid")
	b := newBrowser(t, n)
	b.deviceDecide(b.signIn(b.enterCode(s.userCode), "dana", "correct horse battery"), "allow")
	wantDeviceError(t, "another client's device_code", other.poll(t, s.deviceCode), "invalid_grant")
	wantDeviceError(t, "an unknown device_code", d.poll(t, "not-a-device-code"), "invalid_grant")
	// Untouched by the other client: its own client gets the tokens.
	if r := d.poll(t, s.deviceCode); r.status != http.StatusOK {
		t.Errorf("own client after another's attempt: status %d: %s", r.status, r.body)
	}
	// A client without the grant may not start one.
	rp := newRP(t, n, "none")
	r := n.postForm(t, "/device_authorization", url.Values{"client_id": {rp.info.ClientID}}, auth{})
	if r.status != http.StatusBadRequest || r.str(t, "error") != "unauthorized_client" {
		t.Errorf("client without the grant: status %d: %s", r.status, r.body)
	}
	// A confidential client must authenticate.
	r = n.postForm(t, "/device_authorization", url.Values{"client_id": {other.info.ClientID}}, auth{})
	if r.status != http.StatusUnauthorized || r.str(t, "error") != "invalid_client" {
		t.Errorf("confidential client without its secret: status %d: %s", r.status, r.body)
	}
}

func TestDeviceUserCodeErrors(t *testing.T) {
	n := startNode(t, fastDevice)
	newUser(t, n, "dana", "correct horse battery", nil)
	d := newDevice(t, n, "none")
	s := d.start(t, "openid")
	b := newBrowser(t, n)
	// Unknown, malformed: the same message, next to the field.
	var bodies []string
	for _, code := range []string{"BCDF-GHJK", "hello", "AAAA-AAAA"} {
		p := b.enterCode(code)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, `aria-describedby="user-code-error"`) {
			t.Fatalf("code %q: status %d: %.400s", code, p.status, p.body)
		}
		i := strings.Index(p.body, `id="user-code-error"`)
		bodies = append(bodies, p.body[i:i+200])
	}
	if bodies[0] != bodies[1] || bodies[0] != bodies[2] {
		t.Errorf("the messages differ, telling codes apart:\n%s", strings.Join(bodies, "\n"))
	}

	// CSRF: no token, a wrong token, or a cross-site post are refused,
	// and the authorization stays pending.
	p := b.get(n.url("/device"))
	good := p.hidden()
	for name, f := range map[string]url.Values{
		"no token":    {"user_code": {s.userCode}},
		"wrong token": {"user_code": {s.userCode}, "csrf_token": {"x" + good.Get("csrf_token")[1:]}},
	} {
		if p := b.post("/device", f); p.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, p.status)
		}
	}
	b.secFetchSite = "cross-site"
	good.Set("user_code", s.userCode)
	if p := b.post("/device", good); p.status != http.StatusForbidden {
		t.Errorf("cross-site post: status %d, want 403", p.status)
	}
	b.secFetchSite = ""
	consent := b.signIn(b.enterCode(s.userCode), "dana", "correct horse battery")
	f := consent.hidden()
	f.Set("decision", "allow")
	f.Set("csrf_token", "forged")
	if p := b.post("/device/consent", f); p.status != http.StatusForbidden {
		t.Errorf("consent with a forged token: status %d, want 403", p.status)
	}
	wantDeviceError(t, "poll after the forged consent", d.poll(t, s.deviceCode), "authorization_pending")
	// A device ticket does not pass the authorization code flow's consent.
	f.Set("csrf_token", consent.hidden().Get("csrf_token"))
	if p := b.post("/consent", f); p.status == http.StatusOK || p.status == http.StatusSeeOther {
		t.Errorf("device ticket at /consent: status %d", p.status)
	}
}

func TestDeviceUserCodeBruteForce(t *testing.T) {
	n := startNode(t, fastDevice)
	d := newDevice(t, n, "none")
	s := d.start(t, "openid")
	b := newBrowser(t, n)
	limited := 0
	for range 12 {
		if p := b.enterCode("BCDF-GHJK"); p.status == http.StatusTooManyRequests {
			limited++
			if p.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		}
	}
	if limited == 0 {
		t.Fatal("12 wrong codes in a row were never limited")
	}
	// While limited, even the right code is not looked up.
	if p := b.enterCode(s.userCode); p.status != http.StatusTooManyRequests {
		t.Errorf("right code while limited: status %d, want 429", p.status)
	}
}

func TestDeviceDiscovery(t *testing.T) {
	n := startNode(t)
	m := n.get(t, "/.well-known/openid-configuration").json(t)
	if m["device_authorization_endpoint"] != n.url("/device_authorization") {
		t.Errorf("device_authorization_endpoint = %v", m["device_authorization_endpoint"])
	}
	if !slices.Contains(strList(m["grant_types_supported"]), "urn:ietf:params:oauth:grant-type:device_code") {
		t.Errorf("grant_types_supported = %v", m["grant_types_supported"])
	}
}
