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
