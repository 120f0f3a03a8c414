package issuer_test

// Attack tests from the second security review (dynamic registration and
// client metadata documents). Each test states the attack; a failure is a
// finding.

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
)

// tarpit is a TLS server on loopback with two kinds of paths: /slow/...
// accepts the request and never answers (until released), /good serves a
// valid public client's document after goodDelay (a document server some
// way off on the internet).
type tarpit struct {
	*httptest.Server
	release   chan struct{}
	inflight  atomic.Int64
	goodHits  atomic.Int64
	goodDelay time.Duration
	goodID    string
}

func newTarpit(t *testing.T, goodDelay time.Duration) *tarpit {
	tp := &tarpit{release: make(chan struct{}), goodDelay: goodDelay}
	tp.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/slow/"):
			tp.inflight.Add(1)
			defer tp.inflight.Add(-1)
			select {
			case <-tp.release:
			case <-r.Context().Done():
			}
			http.NotFound(w, r)
		case r.URL.Path == "/good":
			tp.goodHits.Add(1)
			time.Sleep(tp.goodDelay)
			doc := appDoc()
			doc["client_id"] = tp.goodID
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "max-age=3600")
			json.NewEncoder(w).Encode(doc)
		default:
			http.NotFound(w, r)
		}
	}))
	tp.TLS = &tls.Config{Certificates: []tls.Certificate{loopbackCert(t)}}
	tp.StartTLS()
	t.Cleanup(func() {
		select {
		case <-tp.release:
		default:
			close(tp.release)
		}
		tp.Close()
	})
	// The good client lives on 127.0.0.1, the attacker's URLs on
	// localhost: two hosts, so a per-host bound would keep them apart.
	tp.goodID = tp.URL + "/good"
	return tp
}

func (tp *tarpit) attackerURL(i int) string {
	u, _ := url.Parse(tp.URL)
	return "https://localhost:" + u.Port() + fmt.Sprintf("/slow/%d", i)
}

func (tp *tarpit) caFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "tarpit-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tp.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenWithDocClient sends a code redemption from the public client id
// (no such code exists): invalid_grant means the client was found,
// invalid_client that its document could not be had.
func tokenWithDocClient(t *testing.T, n *testNode, id string) reply {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"no-such-code"},
		"code_verifier": {strings.Repeat("v", 43)}, "redirect_uri": {"https://rp.example/callback"}, "client_id": {id}}
	return n.postForm(t, "/token", form, auth{})
}

// TestReview2DocumentFetchStarvation: the 16 fetch slots are shared by
// every host, and a failure Sigil causes itself (its own deadline spent
// waiting for a slot) is remembered like a broken document. An
// unauthenticated attacker who keeps the slots busy with URLs on its own
// tarpit host makes an honest client's document fail, and the failure
// stays for FailureTTL after the attacker stops: the honest client gets
// invalid_client at the token endpoint (a refresh failing so drops its
// tokens) and its access tokens introspect as inactive.
func TestReview2DocumentFetchStarvation(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~6s")
	}
	tp := newTarpit(t, 300*time.Millisecond)
	n := startNode(t, func(c *config.Config) {
		c.ClientMetadataDocuments = true
		c.ClientMetadataCAFile = tp.caFile(t)
		c.ClientMetadataUnsafeAllowLoopback = true
	})
	var wg sync.WaitGroup
	attack := func(from, to int) {
		for i := from; i < to; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tokenWithDocClient(t, n, tp.attackerURL(i))
			}()
		}
	}
	attack(0, 16) // every slot held until the fetch deadline
	eventually(t, 3*time.Second, "16 fetches held by the tarpit", func() bool { return tp.inflight.Load() == 16 })
	attack(16, 32) // queued for the next slots
	time.Sleep(200 * time.Millisecond)

	during := tokenWithDocClient(t, n, tp.goodID)
	close(tp.release)
	wg.Wait()
	after := tokenWithDocClient(t, n, tp.goodID)

	if e := during.json(t)["error"]; e != "invalid_grant" {
		t.Errorf("during the attack, another host's URLs kept the honest client from being found: %d %s", during.status, during.body)
	}
	if e := after.json(t)["error"]; e != "invalid_grant" {
		t.Errorf("after the attack stopped, the honest client is still refused (failure remembered; %d fetches of its document): %d %s",
			tp.goodHits.Load(), after.status, after.body)
	}
}

// TestReview2DocumentCacheFlush: every distinct client_id URL takes a
// cache entry (failures too), and at 10 000 entries the whole cache is
// dropped. An unauthenticated attacker sending made-up URLs on its own
// host (each answered 404 at once) evicts every honest client's document,
// which is then fetched again; kept up, this multiplies outbound fetches
// and feeds the starvation above.
func TestReview2DocumentCacheFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("10 000 requests")
	}
	d := newDocServer(t)
	id := d.setDoc(t, "/honest", appDoc(), http.Header{"Cache-Control": {"max-age=3600"}})
	n := startDocNode(t, d)
	if r := tokenWithDocClient(t, n, id); r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("honest client: %d %s", r.status, r.body)
	}
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > 10_000 {
					return
				}
				tokenWithDocClient(t, n, d.URL+fmt.Sprintf("/junk/%d", i))
			}
		}()
	}
	wg.Wait()
	tokenWithDocClient(t, n, id)
	if got := d.fetches("/honest"); got != 1 {
		t.Errorf("the honest document (max-age 3600) was fetched %d times: made-up URLs evicted it", got)
	}
}

// TestReview2RegistrationTokenRace: RFC 7592 reads rotate the
// registration access token with a read-then-write that does not check
// the old hash is still stored. Concurrent uses of one token all succeed,
// each answering with a "new" token, though only the last one written
// works: the token is not single-use, and a client (or a leaked-token
// holder racing it) is handed dead tokens. The same lost update lets a
// GET racing a PUT (or the operator's secret rotation) silently undo it.
func TestReview2RegistrationTokenRace(t *testing.T) {
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

// TestReview2OpenClientGainsClientCredentials: a client registered while
// registration was open cannot have client_credentials. Once the operator
// closes registration (initial access token only), the same client adds
// client_credentials with nothing but its own registration access token:
// whether it was vetted is not recorded, only inferred from the current
// setting.
func TestReview2OpenClientGainsClientCredentials(t *testing.T) {
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

// TestReview2RegisteredClientImpersonation: with open registration anyone
// registers any client_name, and the consent page shows it exactly as an
// operator-created client's name: no host, no sign that the name is the
// client's own claim (which the page does say for metadata documents).
// Bidirectional-override and control characters are accepted too.
func TestReview2RegisteredClientImpersonation(t *testing.T) {
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
