package issuer_test

// Attack tests of client metadata documents
// (draft-ietf-oauth-client-id-metadata-document), from the second security
// review and after. Each test states the attack.

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

// TestAttackDocumentFetchStarvation: an unauthenticated attacker sends
// many client_ids on its own tarpit host, which accepts each fetch and
// never answers, to hold every fetch slot and make an honest client's
// document fail; were that failure (Sigil's own, its deadline spent
// waiting for a slot) remembered like a broken document, the honest
// client would get invalid_client after the attack too (a refresh failing
// so drops its tokens) and its access tokens would introspect as
// inactive. The tarpit's host holds at most its own two slots, the honest
// client on another host is found during the attack, and nothing Sigil
// caused is remembered after it. (Found by the second review.)
func TestAttackDocumentFetchStarvation(t *testing.T) {
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
	attack(0, 16) // every slot the tarpit's host can have, held until the fetch deadline
	eventually(t, 3*time.Second, "2 fetches held by the tarpit", func() bool { return tp.inflight.Load() == 2 })
	attack(16, 32) // waiting for the host's slots
	time.Sleep(200 * time.Millisecond)
	if got := tp.inflight.Load(); got > 2 {
		t.Errorf("%d fetches from the tarpit's host at once, want at most 2", got)
	}

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

// TestAttackDocumentCacheFlush: an unauthenticated attacker sends 10 000
// made-up client_id URLs (each answered 404 at once), as many as the
// document cache holds. Were failures kept with the documents, and the
// cache dropped whole when full, every honest client's document would be
// fetched again; kept up, this would multiply outbound fetches and feed
// the starvation above. Failures are kept apart, in a bounded map that
// evicts one at a time. (Found by the second review.)
func TestAttackDocumentCacheFlush(t *testing.T) {
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

// TestAttackDocumentUnreachable: when a document client's document
// cannot be fetched for a reason that may pass (its server answering 5xx,
// or Sigil busy), it is not an unknown client: the token endpoint answers
// 503 temporarily_unavailable, not invalid_client (on which a client
// drops its refresh token), and introspection answers 503, not inactive
// (on which a resource server ends the user's session). Nothing is
// remembered: once the document is back it is used at once. A document
// that is gone (404) makes its tokens inactive.
func TestAttackDocumentUnreachable(t *testing.T) {
	d := newDocServer(t)
	id := d.setDoc(t, "/app", appDoc(), http.Header{"Cache-Control": {"max-age=300"}})
	n := startDocNode(t, d)
	c := rp{info: &admin.ClientInfo{ClientID: id}, redirectURI: "https://rp.example/callback"}
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()
	tr := n.redeem(t, c, b.codeFor(c, c.authParams(p, "openid"), "alice", alicePassword).Get("code"), p.verifier)
	if tr.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", tr.status, tr.body)
	}
	at := tr.str(t, "access_token")
	rs := basic(n.newClient(t, admin.ClientSpec{Scope: "read", Introspect: true, Audience: []string{n.issuer}}))
	if !n.active(t, rs, at) {
		t.Fatal("the access token is not active")
	}

	n.restart() // the document is no longer cached
	d.mu.Lock()
	saved := d.docs["/app"]
	d.mu.Unlock()
	d.set("/app", docResponse{status: http.StatusBadGateway})
	wantError(t, n.introspect(t, rs, at), http.StatusServiceUnavailable, "temporarily_unavailable")
	wantError(t, tokenWithDocClient(t, n, id), http.StatusServiceUnavailable, "temporarily_unavailable")

	d.set("/app", saved)
	if !n.active(t, rs, at) {
		t.Error("the document is back, but its client's token is not active")
	}

	n.restart()
	d.set("/app", docResponse{status: http.StatusNotFound})
	if n.active(t, rs, at) {
		t.Error("the document is gone, but its client's token is still active")
	}
}
