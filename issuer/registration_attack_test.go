package issuer_test

// Attack tests of dynamic client registration (RFC 7591, RFC 7592), from
// the second security review and after. Each test states the attack.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/issuer"
	"github.com/sigil-sts/sigil/secret"
)

// TestAttackRegistrationTokenRace: RFC 7592 reads rotate the
// registration access token. Sent by many requests at once (a client and
// a leaked-token holder racing it), the token must work once: with a
// read-then-write that does not check the old hash is still stored, each
// would be answered with a "new" token of which only the last written
// works. (Found by the second review.)
func TestAttackRegistrationTokenRace(t *testing.T) {
	n := startNode(t, withRegistrationToken)
	worst := 0
	for round := 0; round < 30 && worst <= 1; round++ {
		got := n.register(t, webApp(), initialToken)
		id, rat := got["client_id"].(string), got["registration_access_token"].(string)
		var ok atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if r := n.sendJSON(t, http.MethodGet, "/register/"+id, nil, rat); r.status == http.StatusOK {
					ok.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		worst = max(worst, int(ok.Load()))
	}
	if worst > 1 {
		t.Errorf("one registration access token was accepted by %d concurrent requests, each answered with a new token of which only one works", worst)
	}
}

// TestAttackOpenClientGainsClientCredentials: a client registered while
// registration was open cannot have client_credentials. Once the operator
// closes registration (initial access token only), the same client tries
// to add client_credentials with nothing but its own registration access
// token: whether it was vetted must be recorded at registration, not
// inferred from the current setting. (Found by the second review.)
func TestAttackOpenClientGainsClientCredentials(t *testing.T) {
	n := startNode(t, withOpenRegistration)
	md := map[string]any{
		"client_name": "Unvetted", "redirect_uris": []string{"https://rp.example/cb"},
		"grant_types": []string{"authorization_code"},
	}
	got := n.register(t, md, "")
	id, sec, rat := got["client_id"].(string), got["client_secret"].(string), got["registration_access_token"].(string)

	n.cfg.RegistrationOpen = false
	n.cfg.RegistrationToken = initialToken
	n.restart()

	upd := map[string]any{
		"client_id": id, "client_name": "Unvetted", "redirect_uris": []string{"https://rp.example/cb"},
		"grant_types": []string{"authorization_code", "client_credentials"},
	}
	r := n.sendJSON(t, http.MethodPut, "/register/"+id, upd, rat)
	if r.status == http.StatusOK {
		tr := n.postForm(t, "/token", url.Values{"grant_type": {"client_credentials"}}, auth{id: id, secret: sec})
		t.Errorf("an openly registered client gave itself client_credentials after registration was closed (update %d; token %d %.120s)", r.status, tr.status, tr.body)
	}
}

// TestAttackRegisteredClientImpersonation: with open registration anyone
// registers any client_name. The consent page must not show it as it
// shows an operator-created client's name: it names where the user is
// sent (the redirect URI's host) and says the application is unverified.
// Names with bidirectional overrides, control or zero-width characters
// are refused. (Found by the second review.)
func TestAttackRegisteredClientImpersonation(t *testing.T) {
	n := startNode(t, withOpenRegistration)
	t.Run("consent-shows-nothing-but-the-name", func(t *testing.T) {
		got := n.register(t, map[string]any{
			"client_name":                "Sigil Account Security",
			"redirect_uris":              []string{"https://attacker.example/cb"},
			"grant_types":                []string{"authorization_code"},
			"token_endpoint_auth_method": "none",
		}, "")
		c := rp{info: &admin.ClientInfo{ClientID: got["client_id"].(string)}, redirectURI: "https://attacker.example/cb"}
		newUser(t, n, "alice", alicePassword, nil)
		b := newBrowser(t, n)
		page := b.signIn(b.authorize(c.authParams(newPKCE(), "openid")), "alice", alicePassword)
		if !page.isConsent() {
			t.Fatalf("no consent page: %d %.300s", page.status, page.body)
		}
		if !strings.Contains(page.body, "attacker.example") {
			t.Errorf("the consent page for a self-registered client shows only its chosen name, not where it sends the user (attacker.example)")
		}
		if !strings.Contains(page.body, "Unverified application") || !strings.Contains(page.body, "Sigil Account Security (unverified)") {
			t.Errorf("the consent page does not say the self-registered client is unverified: %.600s", page.body)
		}
	})
	t.Run("bidi-and-control-characters", func(t *testing.T) {
		for _, name := range []string{"Acme\u202egnp.exe", "Acme\nSigil says: allow", "Acme\u200b\u200bBank"} {
			r := n.sendJSON(t, http.MethodPost, "/register", map[string]any{
				"client_name": name, "redirect_uris": []string{"https://rp.example/cb"}, "token_endpoint_auth_method": "none",
			}, "")
			if r.status == http.StatusCreated {
				t.Errorf("client_name %q registered", name)
			}
		}
	})
}

// TestAttackRegistrationReadUndoesRotation: the operator rotates a
// registered client's secret (a leak) while the client reads its
// registration. The read must not write back the secret it read, and the
// rotation must not revive the registration access token the read spent:
// both are compare-and-swaps, so the loser reads again.
func TestAttackRegistrationReadUndoesRotation(t *testing.T) {
	n := startNode(t, withRegistrationToken)
	for round := 0; round < 10; round++ {
		got := n.register(t, webApp(), initialToken)
		id, rat := got["client_id"].(string), got["registration_access_token"].(string)
		var wg sync.WaitGroup
		var read atomic.Value
		start := make(chan struct{})
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if r := n.sendJSON(t, http.MethodGet, "/register/"+id, nil, rat); r.status == http.StatusOK {
					read.Store(r.str(t, "registration_access_token"))
				}
			}()
		}
		var rotated *admin.ClientInfo
		var rotErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rotated, rotErr = n.admin().RotateSecret(context.Background(), id)
		}()
		close(start)
		wg.Wait()
		if rotErr != nil {
			t.Fatalf("round %d: rotate: %v", round, rotErr)
		}
		info := &admin.ClientInfo{ClientID: id, ClientSecret: rotated.ClientSecret}
		if r := n.postForm(t, "/token", url.Values{"grant_type": {"client_credentials"}}, basic(info)); r.status != http.StatusOK {
			t.Fatalf("round %d: the rotated secret was undone by a concurrent read: %d %s", round, r.status, r.body)
		}
		newRAT, _ := read.Load().(string)
		if newRAT == "" {
			t.Fatalf("round %d: no read succeeded", round)
		}
		if r := n.sendJSON(t, http.MethodGet, "/register/"+id, nil, newRAT); r.status != http.StatusOK {
			t.Fatalf("round %d: the token the read handed out does not work: %d %s", round, r.status, r.body)
		}
		wantBearerChallenge(t, n.sendJSON(t, http.MethodGet, "/register/"+id, nil, rat), true)
	}
}

// TestAttackRegistrationOperatorName: a client registering itself under
// the name of one of the operator's clients (in any case or spacing) is
// refused, at registration and on update; the operator's own client
// keeps its name.
func TestAttackRegistrationOperatorName(t *testing.T) {
	n := startNode(t, withOpenRegistration)
	n.newClient(t, admin.ClientSpec{Name: "Payroll Portal", GrantTypes: []string{sigil.GrantAuthorizationCode},
		RedirectURIs: []string{"https://payroll.example/cb"}})
	md := func(name string) map[string]any {
		return map[string]any{"client_name": name, "redirect_uris": []string{"https://rp.example/cb"}, "token_endpoint_auth_method": "none"}
	}
	for _, name := range []string{"Payroll Portal", "payroll portal", "  PAYROLL   Portal "} {
		wantError(t, n.sendJSON(t, http.MethodPost, "/register", md(name), ""), http.StatusBadRequest, "invalid_client_metadata")
	}
	got := n.register(t, md("Payroll Portal Helper"), "")
	id, rat := got["client_id"].(string), got["registration_access_token"].(string)
	upd := md("PAYROLL PORTAL")
	upd["client_id"] = id
	wantError(t, n.sendJSON(t, http.MethodPut, "/register/"+id, upd, rat), http.StatusBadRequest, "invalid_client_metadata")
}

// TestAttackRegistrationRedirectURIs: a self-registered client's redirect
// URIs are few (a registration is not a store for thousands of URLs) and
// their hosts ASCII: the consent page shows the host, and a lookalike
// letter from another script must not pass for a Latin one.
func TestAttackRegistrationRedirectURIs(t *testing.T) {
	n := startNode(t, withOpenRegistration)
	var many []string
	for i := 0; i < 11; i++ {
		many = append(many, fmt.Sprintf("https://rp.example/cb%d", i))
	}
	for name, uris := range map[string][]string{
		"eleven":            many,
		"cyrillic-host":     {"https://\u0430pple.com/cb"},
		"percent-cyrillic":  {"https://%D0%B0pple.com/cb"},
		"one-good-one-idna": {"https://rp.example/cb", "https://b\u00fccher.example/cb"},
	} {
		r := n.sendJSON(t, http.MethodPost, "/register", map[string]any{"redirect_uris": uris, "token_endpoint_auth_method": "none"}, "")
		if r.status != http.StatusBadRequest || r.str(t, "error") != "invalid_redirect_uri" {
			t.Errorf("%s: %d %s, want 400 invalid_redirect_uri", name, r.status, r.body)
		}
	}
	n.register(t, map[string]any{"redirect_uris": many[:10], "token_endpoint_auth_method": "none"}, "")
	n.register(t, map[string]any{"redirect_uris": []string{"https://xn--pple-43d.com/cb"}, "token_endpoint_auth_method": "none"}, "")
}

// TestAttackRegistrationRateLimitPrefix: open registrations are limited
// per /48 for IPv6, so an attacker holding a /48 (or many /64s in it)
// cannot register without bound by moving between addresses; another /48
// has its own allowance.
func TestAttackRegistrationRateLimitPrefix(t *testing.T) {
	n := startNode(t, withOpenRegistration, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} })
	md := map[string]any{"redirect_uris": []string{"https://rp.example/cb"}, "token_endpoint_auth_method": "none"}
	from := func(addr string) reply {
		b, _ := json.Marshal(md)
		req, _ := http.NewRequest(http.MethodPost, n.url("/register"), bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", addr)
		return n.do(t, req)
	}
	limited := false
	for i := 0; i < 15 && !limited; i++ {
		// A new /64 (and a new address) each time, in one /48.
		switch r := from(fmt.Sprintf("2001:db8:1:%x::1", i)); r.status {
		case http.StatusCreated:
		case http.StatusTooManyRequests:
			limited = true
		default:
			t.Fatalf("registration %d: %d %s", i, r.status, r.body)
		}
	}
	if !limited {
		t.Error("15 open registrations from distinct /64s of one /48 were all accepted")
	}
	if r := from("2001:db8:2::1"); r.status != http.StatusCreated {
		t.Errorf("another /48 was limited too: %d %s", r.status, r.body)
	}
}

// TestAttackRegistrationUnaudited: registrations and changes are recorded
// durably before they are answered. When the trail cannot take the
// record, a registration answers 503 and leaves no client behind, and a
// read answers 503 and leaves the registration access token it would
// have spent working.
func TestAttackRegistrationUnaudited(t *testing.T) {
	n := startNode(t, withRegistrationToken)
	trail := &stubTrail{err: audit.ErrBackpressure}
	base := issuerOn(t, n, trail, func(h *issuer.Handler) {
		h.Registration = &issuer.Registration{InitialAccessTokens: [][]byte{n.srv.Core.Secrets.Hash(secret.New(initialToken))}}
	})
	send := func(method, path string, body any, tok string) reply {
		var rd *bytes.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		return n.do(t, req)
	}
	before, err := n.admin().Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, send(http.MethodPost, "/register", webApp(), initialToken))
	after, err := n.admin().Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("an unrecorded registration left a client behind: %d clients, want %d", len(after), len(before))
	}

	got := n.register(t, webApp(), initialToken)
	id, rat := got["client_id"].(string), got["registration_access_token"].(string)
	wantUnavailable(t, send(http.MethodGet, "/register/"+id, nil, rat))
	wantUnavailable(t, send(http.MethodDelete, "/register/"+id, nil, rat))
	if r := n.sendJSON(t, http.MethodGet, "/register/"+id, nil, rat); r.status != http.StatusOK {
		t.Errorf("after unrecorded changes were undone, the registration access token fails: %d %s", r.status, r.body)
	}
	if _, err := n.admin().Client(context.Background(), id); errors.Is(err, sigil.ErrNotFound) {
		t.Error("an unrecorded deletion was made")
	}
}

// TestAttackRegistrationShownToOperator: the operator tells clients that
// registered themselves from its own, and open registrations from vetted
// ones, in the admin API and CLI.
func TestAttackRegistrationShownToOperator(t *testing.T) {
	n := startNode(t, withRegistrationToken, withOpenRegistration)
	vetted := n.register(t, webApp(), initialToken)["client_id"].(string)
	open := n.register(t, map[string]any{"redirect_uris": []string{"https://rp.example/cb"}, "token_endpoint_auth_method": "none"}, "")["client_id"].(string)
	own := n.newClient(t, admin.ClientSpec{Scope: "read"}).ClientID
	for id, want := range map[string][2]bool{vetted: {true, false}, open: {true, true}, own: {false, false}} {
		c, err := n.admin().Client(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.RegisteredDynamically != want[0] || c.RegisteredOpen != want[1] {
			t.Errorf("client %s: registered_dynamically %v, registered_open %v; want %v", id, c.RegisteredDynamically, c.RegisteredOpen, want)
		}
	}
}
