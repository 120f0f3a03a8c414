package issuer

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
)

// TestAttackDocumentHostHomograph: a client_id URL may have a non-ASCII
// host. The fetch would go to its punycode (A-label) form while the
// consent page showed the host as written, so "https://аpple.com/app"
// (Cyrillic а) would read as apple.com to the user while an attacker owns
// xn--pple-43d.com. The host shown (or the URL accepted) must be ASCII.
// (Found by the second review.)
func TestAttackDocumentHostHomograph(t *testing.T) {
	id := "https://\u0430pple.com/app" // Cyrillic small a
	d := &ClientDocuments{}
	if err := d.checkDocumentURL(id); err != nil {
		return // refused: fine
	}
	host := documentHost(id)
	for _, r := range host {
		if r > 0x7e {
			t.Fatalf("client_id %q accepted and shown to the user as host %q (fetched from its punycode form)", id, host)
		}
	}
}

// docTestServer serves a document at /doc with the status in status
// (200: a document with max-age 60) and counts the requests.
type docTestServer struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int32
}

func newDocTestServer(t *testing.T) (*docTestServer, *x509.CertPool) {
	s := &docTestServer{}
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if code := int(s.status.Load()); code != http.StatusOK {
			w.WriteHeader(code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(s.Close)
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	return s, roots
}

// TestAttackDocumentStaleIfError: an attacker who can make a document's
// fetch fail for a while (keeping Sigil's slots busy, or its server's
// network down) must not make a working client unknown. A copy past its
// max-age is served while refetching fails in a way that may pass, for up
// to MaxStale, without a fetch on every request; past that the lookup
// fails as unavailable (503), never as an unknown client, and such a
// failure is not remembered. A document that is gone (404) is dropped at
// once.
func TestAttackDocumentStaleIfError(t *testing.T) {
	srv, roots := newDocTestServer(t)
	d := &ClientDocuments{RootCAs: roots, UnsafeAllowLoopback: true, FailureTTL: 10 * time.Second, MaxStale: time.Hour}
	now := time.Now()
	clock := func() time.Time { return now }
	convert := func([]byte) (*cachedClient, error) { return &cachedClient{client: &sigil.Client{}}, nil }
	id := srv.URL + "/doc"
	get := func() (*cachedClient, error) { return d.get(context.Background(), id, clock, convert) }
	wantHits := func(n int32) {
		t.Helper()
		if got := srv.hits.Load(); got != n {
			t.Errorf("%d fetches, want %d", got, n)
		}
	}

	first, err := get()
	if err != nil {
		t.Fatal(err)
	}
	srv.status.Store(http.StatusServiceUnavailable)
	now = now.Add(2 * time.Minute) // past the max-age
	if c, err := get(); err != nil || c != first {
		t.Fatalf("refetch failing with 503: %v, want the stale copy", err)
	}
	wantHits(2)
	now = now.Add(5 * time.Second)
	if c, err := get(); err != nil || c != first {
		t.Fatalf("within FailureTTL of the failed refetch: %v, want the stale copy", err)
	}
	wantHits(2)

	now = now.Add(2 * time.Hour) // past MaxStale
	_, err = get()
	if !errors.Is(err, sigil.ErrUnavailable) || errors.Is(err, sigil.ErrNotFound) {
		t.Fatalf("past MaxStale with the server failing: %v, want unavailable, not unknown", err)
	}
	if _, err := get(); !errors.Is(err, sigil.ErrUnavailable) {
		t.Fatalf("again: %v", err)
	}
	wantHits(4) // not remembered: fetched each time

	srv.status.Store(http.StatusOK)
	if _, err := get(); err != nil {
		t.Fatalf("server back: %v", err)
	}
	wantHits(5)

	srv.status.Store(http.StatusNotFound)
	now = now.Add(2 * time.Minute)
	if _, err := get(); !errors.Is(err, sigil.ErrNotFound) {
		t.Fatalf("document gone: %v, want not found", err)
	}
	if _, err := get(); !errors.Is(err, sigil.ErrNotFound) {
		t.Fatalf("document gone, again: %v, want not found", err)
	}
	wantHits(6) // remembered for FailureTTL
}

// TestAttackDocumentSlotsBusy: with every fetch slot held (slow fetches
// from other hosts), a lookup waits SlotWait, not the fetch timeout, and
// fails as unavailable; the failure is Sigil's own and is not remembered,
// so the next lookup after the slots free up fetches the document.
func TestAttackDocumentSlotsBusy(t *testing.T) {
	srv, roots := newDocTestServer(t)
	d := &ClientDocuments{RootCAs: roots, UnsafeAllowLoopback: true, SlotWait: 100 * time.Millisecond}
	d.once.Do(d.init)
	for range maxFetches {
		d.slots.all <- struct{}{}
	}
	convert := func([]byte) (*cachedClient, error) { return &cachedClient{client: &sigil.Client{}}, nil }
	id := srv.URL + "/doc"
	start := time.Now()
	_, err := d.get(context.Background(), id, time.Now, convert)
	if !errors.Is(err, sigil.ErrUnavailable) || errors.Is(err, sigil.ErrNotFound) {
		t.Fatalf("every slot busy: %v, want unavailable, not unknown", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("waited %s for a slot, past SlotWait", waited)
	}
	for range maxFetches {
		<-d.slots.all
	}
	if _, err := d.get(context.Background(), id, time.Now, convert); err != nil {
		t.Fatalf("slots free again: %v (a busy failure was remembered?)", err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}
