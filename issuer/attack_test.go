package issuer_test

// Attack tests from the security review of the authorization code flow.
// Each test states the behaviour a secure OP must show; each fails on
// issue6 at the time of the review.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/server"
)

// hookStore lets a test run code inside CreateRefreshFamily, before the
// family is written: the window between a code's redemption and its
// refresh family's creation.
type hookStore struct {
	sigil.Store
	mu     sync.Mutex
	before func(*sigil.RefreshFamily)
}

func (s *hookStore) CreateRefreshFamily(ctx context.Context, t *sigil.RefreshFamily, access sigil.IssuedToken) error {
	s.mu.Lock()
	f := s.before
	s.before = nil
	s.mu.Unlock()
	if f != nil {
		f(t)
	}
	return s.Store.CreateRefreshFamily(ctx, t, access)
}

// startHookedNode is startNode with the issuer's store wrapped in a
// hookStore.
func startHookedNode(t *testing.T) (*testNode, *hookStore) {
	t.Helper()
	n := startNode(t)
	n.stop()
	core, err := server.OpenCore(context.Background(), n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := &hookStore{Store: core.Store}
	core.Store = hs
	deadline := time.Now().Add(5 * time.Second)
	for {
		n.srv, err = server.Start(context.Background(), core, quietLog())
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n, hs
}

// TestAttackCodeReplayRaceRefreshSurvives: a replay of a code that lands
// between the first redemption's RedeemCode and its CreateRefreshFamily
// revokes an empty family; the refresh token created a moment later is
// not revoked and keeps working (the README promises the race "cannot
// lose them").
func TestAttackCodeReplayRaceRefreshSurvives(t *testing.T) {
	n, hs := startHookedNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()
	resp := b.codeFor(c, c.authParams(p, "openid offline_access"), "alice", alicePassword)
	code := resp.Get("code")

	replayed := false
	hs.mu.Lock()
	hs.before = func(*sigil.RefreshFamily) {
		r := n.redeem(t, c, code, p.verifier)
		replayed = r.status == http.StatusBadRequest && strings.Contains(string(r.body), "already used")
	}
	hs.mu.Unlock()

	first := n.redeem(t, c, code, p.verifier)
	if !replayed {
		t.Fatal("the replay did not run inside the window")
	}
	if first.status != http.StatusOK {
		// The family was revoked before its first token: the redemption
		// itself fails, and hands out nothing.
		wantError(t, first, http.StatusBadRequest, "invalid_grant")
		return
	}
	if n.active(t, c.auth(), first.str(t, "access_token")) {
		t.Error("access token of a replayed code is active")
	}
	if r := n.refresh(t, c, first.str(t, "refresh_token"), nil); r.status == http.StatusOK {
		t.Errorf("refresh token of a replayed code still works: %s", r.body)
	}
}

// postAs posts a flow form from b with extra headers.
func postAs(b *browser, path string, form url.Values, hdr map[string]string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.n.url(path), strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return b.do(req)
}

// TestAttackSignInLimitSharedAddress: behind the TLS-terminating proxy an
// https issuer needs (serve has no TLS), every browser has the proxy's
// address. One attacker's 20 failed sign-ins then lock every user out.
// With the loopback proxy trusted, its X-Forwarded-For tells them apart.
func TestAttackSignInLimitSharedAddress(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	p := newPKCE()

	attacker := newBrowser(t, n)
	form := attacker.authorize(c.authParams(p, "openid")).hidden()
	for i := range 21 {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("username", "nobody"+strings.Repeat("x", i))
		f.Set("password", "guess")
		postAs(attacker, "/login", f, map[string]string{"X-Forwarded-For": "203.0.113.7"})
	}
	victim := newBrowser(t, n)
	vf := victim.authorize(c.authParams(p, "openid")).hidden()
	vf.Set("username", "alice")
	vf.Set("password", alicePassword)
	got := postAs(victim, "/login", vf, map[string]string{"X-Forwarded-For": "198.51.100.1"})
	if got.status == http.StatusTooManyRequests {
		t.Errorf("another user's right password is refused with 429 after an attacker's failures")
	}
}

// TestAttackUserinfoDisabledUser: a disabled user's live access token
// still reads their claims at UserInfo (every other path checks Disabled).
func TestAttackUserinfoDisabledUser(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	alice := newUser(t, n, "alice", alicePassword, map[string]any{"email": "alice@example.com"})
	b := newBrowser(t, n)
	p := newPKCE()
	resp := b.codeFor(c, c.authParams(p, "openid email"), "alice", alicePassword)
	at := n.redeem(t, c, resp.Get("code"), p.verifier).str(t, "access_token")

	// Straight in the store: the admin layer would revoke the token too.
	u, err := n.srv.Core.Store.User(context.Background(), alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	u.Disabled = true
	if err := n.srv.Core.Store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, n.url("/userinfo"), nil)
	req.Header.Set("Authorization", "Bearer "+at)
	if ui := n.do(t, req); ui.status == http.StatusOK {
		t.Errorf("userinfo for a disabled user: %d %s", ui.status, ui.body)
	}
}

// TestAttackLogoutCrossSitePost: RP-initiated logout by POST (allowed by
// the spec) comes from the RP's site, so the SameSite=Lax session cookie
// is not sent. The OP redirects back as if it had signed the user out;
// the session lives on.
func TestAttackLogoutCrossSitePost(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	p := newPKCE()
	b := newBrowser(t, n)
	resp := b.codeFor(c, c.authParams(p, "openid"), "alice", alicePassword)
	idt := n.redeem(t, c, resp.Get("code"), p.verifier).str(t, "id_token")

	// The browser's cross-site POST: no Lax cookies.
	cookieless := crossSitePoster(t, n)
	f := url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {c.redirectURI}, "state": {"bye"}}
	got := postAs(cookieless, "/logout", f, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://rp.example"})
	// A browser follows a redirect within the issuer as a top-level GET,
	// with its cookies.
	for i := 0; i < 5 && got.status/100 == 3 && strings.HasPrefix(got.location, n.issuer); i++ {
		got = b.get(strings.Replace(got.location, n.issuer, n.base, 1))
	}
	if again := b.authorize(c.authParams(p, "openid")); !again.isSignIn() {
		t.Errorf("after a POST logout answered %d -> %q, the session lives on", got.status, got.location)
	}
}

// TestAttackPublicClientSilentCode: a public client's id is anyone's. Once
// a user consented, any app that registers the same private-use scheme or
// listens on the loopback port gets codes silently with prompt=none (RFC
// 8252 §8.6: no automatic approval, even after an earlier one, when the
// client's identity cannot be assured; Doorkeeper's CVE-2023-34246).
func TestAttackPublicClientSilentCode(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "none")
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	b.codeFor(c, c.authParams(newPKCE(), "openid offline_access"), "alice", alicePassword)

	evil := newPKCE()
	params := c.authParams(evil, "openid offline_access")
	params.Set("redirect_uri", "http://127.0.0.1:9/cb")
	params.Set("prompt", "none")
	got := b.authorize(params)
	if got.status == http.StatusSeeOther && strings.Contains(got.location, "code=") {
		t.Errorf("a public client got a code with no user interaction: %q", got.location)
	}
}

// TestAttackCodeBurnedByOtherClient: any client (a public one costs
// nothing to impersonate) that presents another client's code marks it
// redeemed before the client check, so the rightful client's redemption
// then fails as a replay.
func TestAttackCodeBurnedByOtherClient(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	other := newRP(t, n, "none")
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()
	resp := b.codeFor(c, c.authParams(p, "openid"), "alice", alicePassword)
	wantError(t, n.redeem(t, other, resp.Get("code"), newPKCE().verifier), http.StatusBadRequest, "invalid_grant")
	if r := n.redeem(t, c, resp.Get("code"), p.verifier); r.status != http.StatusOK {
		t.Errorf("the rightful client's redemption after another client tried the code: %d %s", r.status, r.body)
	}
}

// TestAttackPARBurnedByOtherClient: the same for a request_uri.
func TestAttackPARBurnedByOtherClient(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	other := newRP(t, n, "none")
	p := newPKCE()
	b := newBrowser(t, n)
	ru := n.postForm(t, "/par", c.authParams(p, "openid"), c.auth()).str(t, "request_uri")
	b.authorize(url.Values{"client_id": {other.info.ClientID}, "request_uri": {ru}})
	if got := b.authorize(url.Values{"client_id": {c.info.ClientID}, "request_uri": {ru}}); !got.isSignIn() {
		t.Errorf("request_uri after another client presented it: %d", got.status)
	}
}

// TestAttackFormPostPrivateScheme: html/template rewrites a non-http(s)
// form action to #ZgotmplZ, so form_post to a native app's redirect URI
// posts the code back to the issuer's own page instead.
func TestAttackFormPostPrivateScheme(t *testing.T) {
	n := startNode(t)
	ru := "com.example.app:/cb"
	c := newRP(t, n, "none", func(s *admin.ClientSpec) { s.RedirectURIs = []string{ru} })
	c.redirectURI = ru
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	params := c.authParams(newPKCE(), "openid")
	params.Set("response_mode", "form_post")
	// Refused up front: a page cannot post to a private-use scheme.
	got := b.authorize(params)
	if strings.Contains(got.body, "ZgotmplZ") {
		t.Errorf("form_post page posts to #ZgotmplZ (the issuer itself), not to %s", ru)
	}
	if resp := got.response(t, ru); resp.Get("error") != "invalid_request" {
		t.Errorf("form_post to %s: %v, want invalid_request", ru, resp)
	}
}

// TestAttackSubjectRevocationSparesRefresh: `sigil revoke --subject`
// revokes the user's access tokens, but their refresh tokens (and browser
// sessions) live on, and the next refresh mints a token the revocation
// does not cover.
func TestAttackSubjectRevocationSparesRefresh(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	alice := newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()
	resp := b.codeFor(c, c.authParams(p, "openid offline_access"), "alice", alicePassword)
	rt := n.redeem(t, c, resp.Get("code"), p.verifier).str(t, "refresh_token")

	if _, err := n.admin().Revoke(context.Background(), "", "", alice.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the cutoff's second
	r := n.refresh(t, c, rt, nil)
	if r.status == http.StatusOK && n.active(t, c.auth(), r.str(t, "access_token")) {
		t.Errorf("after revoking the subject, a refresh mints an active access token")
	}
}

// TestAttackConsentWithAccountTicket: the account page's sign-in ticket
// (no client) is accepted by the consent endpoint: a consent for client
// "" is stored and a code issued to a relative redirect.
func TestAttackConsentWithAccountTicket(t *testing.T) {
	n := startNode(t)
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	signin := b.get(n.url("/account"))
	f := signin.hidden()
	f.Set("username", "alice")
	f.Set("password", alicePassword)
	b.post("/login", f)
	f = signin.hidden()
	f.Set("decision", "allow")
	b.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if got := b.post("/consent", f); got.status/100 == 3 {
		t.Errorf("consent with a client-less ticket: %d Location %q", got.status, got.location)
	}
}

// TestAttackAuthorizePostCrossSite: OpenID Connect Core §3.1.2.1 makes
// POST to the authorization endpoint mandatory to support. A client's
// page that posts it is cross-site, so the SameSite=Lax session cookie is
// not sent: a signed-in user with consent gets login_required for
// prompt=none (and the sign-in page otherwise). A 303 to GET (the sealed
// ticket) would let the cookie through.
func TestAttackAuthorizePostCrossSite(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	b.codeFor(c, c.authParams(newPKCE(), "openid"), "alice", alicePassword)

	params := c.authParams(newPKCE(), "openid")
	params.Set("prompt", "none")
	got := postAs(crossSitePoster(t, n), "/authorize", params, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://rp.example"})
	for i := 0; i < 5 && got.status/100 == 3 && strings.HasPrefix(got.location, n.issuer); i++ {
		got = b.get(strings.Replace(got.location, n.issuer, n.base, 1))
	}
	if !strings.Contains(got.location, "code=") {
		t.Errorf("POSTed authorization request of a signed-in user: %d %q", got.status, got.location)
	}
}

// crossSitePoster is the browser as another site's form post finds it:
// without the issuer's SameSite=Lax cookies, and it hands back every
// redirect so the test follows it with the browser that has them (a
// top-level GET carries Lax cookies).
func crossSitePoster(t *testing.T, n *testNode) *browser {
	b := newBrowser(t, n)
	b.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return b
}

// TestAttackRevocationDuringRedemption: a user revocation (sigil revoke
// --subject) or a withdrawn consent that lands between a code's
// redemption and the creation of its refresh token finds no family to
// revoke; the redemption must notice and hand out nothing that works.
func TestAttackRevocationDuringRedemption(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revoke func(n *testNode, userID, clientID string) error
	}{
		{"subject revoked", func(n *testNode, userID, _ string) error {
			_, err := n.admin().Revoke(context.Background(), "", "", userID)
			return err
		}},
		{"consent withdrawn", func(n *testNode, userID, clientID string) error {
			ctx := context.Background()
			if err := n.srv.Core.Store.DeleteConsent(ctx, userID, clientID); err != nil {
				return err
			}
			_, err := n.srv.Core.Store.RevokeRefreshTokens(ctx, userID, clientID)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, hs := startHookedNode(t)
			c := newRP(t, n, "client_secret_basic")
			alice := newUser(t, n, "alice", alicePassword, nil)
			b := newBrowser(t, n)
			p := newPKCE()
			resp := b.codeFor(c, c.authParams(p, "openid offline_access"), "alice", alicePassword)
			var hookErr error
			hs.mu.Lock()
			hs.before = func(*sigil.RefreshFamily) { hookErr = tc.revoke(n, alice.ID, c.info.ClientID) }
			hs.mu.Unlock()
			first := n.redeem(t, c, resp.Get("code"), p.verifier)
			if hookErr != nil {
				t.Fatal(hookErr)
			}
			if first.status == http.StatusOK {
				if r := n.refresh(t, c, first.str(t, "refresh_token"), nil); r.status == http.StatusOK {
					t.Errorf("the refresh token of a revoked grant works: %s", r.body)
				}
				if n.active(t, c.auth(), first.str(t, "access_token")) {
					t.Error("the access token of a revoked grant is active")
				}
				return
			}
			wantError(t, first, http.StatusBadRequest, "invalid_grant")
		})
	}
}

// TestAttackNonceControlCharacters: a nonce is stored with the code and
// returned in the ID token; one with control characters or invalid UTF-8
// is refused up front, not sent to the store (where PostgreSQL refuses
// NUL) to come back as a server error.
func TestAttackNonceControlCharacters(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	b := newBrowser(t, n)
	for _, nonce := range []string{"a\x00b", "\xff", "line\nbreak"} {
		params := c.authParams(newPKCE(), "openid")
		params.Set("nonce", nonce)
		if resp := b.authorize(params).response(t, c.redirectURI); resp.Get("error") != "invalid_request" {
			t.Errorf("nonce %q: %v, want invalid_request", nonce, resp)
		}
	}
}
