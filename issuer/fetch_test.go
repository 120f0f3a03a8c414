package issuer

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
)

// TestCheckFetchAddr: the special-use blocks are refused, with loopback
// let through only when asked, and public addresses are allowed.
func TestCheckFetchAddr(t *testing.T) {
	for _, tc := range []struct {
		addr                string
		allowed, loopbackOK bool // allowed without and with the loopback allowance
	}{
		{"127.0.0.1", false, true},
		{"127.1.2.3", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"10.1.2.3", false, false},
		{"::ffff:10.0.0.1", false, false},
		{"172.16.0.1", false, false},
		{"172.31.255.255", false, false},
		{"192.168.1.1", false, false},
		{"169.254.169.254", false, false},
		{"100.64.0.1", false, false},
		{"0.0.0.0", false, false},
		{"0.1.2.3", false, false},
		{"::", false, false},
		{"224.0.0.1", false, false},
		{"255.255.255.255", false, false},
		{"192.0.2.1", false, false},
		{"198.18.0.1", false, false},
		{"fe80::1", false, false},
		{"fe80::1%eth0", false, false},
		{"fc00::1", false, false},
		{"fd12:3456::1", false, false},
		{"ff02::1", false, false},
		{"64:ff9b::a00:1", false, false},      // NAT64 of 10.0.0.1
		{"2002:a00:1::1", false, false},       // 6to4 of 10.0.0.1
		{"2001:0:4136:e378::1", false, false}, // Teredo
		{"2001:db8::1", false, false},
		{"8.8.8.8", true, true},
		{"93.184.215.14", true, true},
		{"172.32.0.1", true, true},
		{"2606:4700:4700::1111", true, true},
		{"2a00:1450:4001:82b::200e", true, true},
	} {
		a := netip.MustParseAddr(tc.addr)
		if err := checkFetchAddr(a, false); (err == nil) != tc.allowed {
			t.Errorf("checkFetchAddr(%s) = %v, want allowed %v", tc.addr, err, tc.allowed)
		}
		if err := checkFetchAddr(a, true); (err == nil) != tc.loopbackOK {
			t.Errorf("checkFetchAddr(%s, loopback allowed) = %v, want allowed %v", tc.addr, err, tc.loopbackOK)
		}
	}
	if checkFetchAddr(netip.Addr{}, true) == nil {
		t.Error("the zero Addr is allowed")
	}
}

// TestGuardDial: the dialer's guard sees the address actually dialed, so
// a loopback listener is unreachable by IP and by a name that resolves to
// it, and a private address is refused before any packet is sent.
func TestGuardDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	guarded := &net.Dialer{Timeout: 2 * time.Second, Control: guardDial(false)}
	for _, addr := range []string{ln.Addr().String(), "localhost:" + port, "10.0.0.1:443", "169.254.169.254:80", "[::1]:" + port} {
		start := time.Now()
		c, err := guarded.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			t.Errorf("dial %s: connected", addr)
			continue
		}
		// Without IPv6 on the host, ::1 fails before the guard runs.
		if !strings.Contains(err.Error(), "refusing to dial") && !strings.HasPrefix(addr, "[") {
			t.Errorf("dial %s: %v, want the guard's refusal", addr, err)
		}
		if time.Since(start) > time.Second {
			t.Errorf("dial %s took %s: the guard should refuse before connecting", addr, time.Since(start))
		}
	}
	if _, err := guarded.DialContext(ctx, "udp", "8.8.8.8:53"); err == nil {
		t.Error("udp dial allowed")
	}
	allowed := &net.Dialer{Timeout: 2 * time.Second, Control: guardDial(true)}
	c, err := allowed.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with loopback allowed: %v", err)
	}
	c.Close()
}

// TestFetchClientRefusesLoopback: the document client does not reach a
// loopback server, through a name or an IP; with the allowance it does.
func TestFetchClientRefusesLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	hc := newFetchClient(roots, false, 2*time.Second)
	for _, u := range []string{"https://localhost:" + port + "/doc", srv.URL + "/doc"} {
		resp, err := hc.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s: fetched", u)
		} else if !strings.Contains(err.Error(), "refusing to dial") || !errors.Is(err, errRefusedAddress) {
			t.Errorf("GET %s: %v, want the guard's refusal", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server got %d requests", n)
	}
	resp, err := newFetchClient(roots, true, 2*time.Second).Get(srv.URL + "/doc")
	if err != nil {
		t.Fatalf("with loopback allowed: %v", err)
	}
	resp.Body.Close()
}

// TestFetchFailureKinds: a fetch refused for its address or its
// certificate is the document's fault and remembered like a missing
// document (sigil.ErrNotFound); a connection refused is one that may pass
// (sigil.ErrUnavailable) and never remembered.
func TestFetchFailureKinds(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	closed := httptest.NewTLSServer(http.NotFoundHandler())
	closed.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	guarded := &ClientDocuments{RootCAs: roots}
	loopback := &ClientDocuments{RootCAs: roots, UnsafeAllowLoopback: true}
	otherRoots := &ClientDocuments{UnsafeAllowLoopback: true} // the system's roots: srv's certificate is unknown
	for _, tc := range []struct {
		name string
		d    *ClientDocuments
		url  string
		want error
	}{
		{"loopback-name", guarded, "https://localhost:" + port + "/doc", sigil.ErrNotFound},
		{"unknown-certificate", otherRoots, srv.URL + "/doc", sigil.ErrNotFound},
		{"connection-refused", loopback, closed.URL + "/doc", sigil.ErrUnavailable},
	} {
		tc.d.once.Do(tc.d.init)
		_, _, err := tc.d.fetch(context.Background(), tc.url, fetchHost(tc.url))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestCheckDocumentURL: the draft's rules for a client identifier URL.
func TestCheckDocumentURL(t *testing.T) {
	d := &ClientDocuments{}
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"https://app.example.com/oauth/client.json", true},
		{"https://app.example.com:8443/client", true},
		{"https://app.example.com/", true},
		{"https://93.184.215.14/client", true},
		{"https://app.example.com", false},
		{"http://app.example.com/client", false},
		{"https:///client", false},
		{"https:app.example.com/client", false},
		{"https://user:pw@app.example.com/client", false},
		{"https://app.example.com/client#x", false},
		{"https://app.example.com/client?v=1", false},
		{"https://app.example.com/client?", false},
		{"https://app.example.com/a/../client", false},
		{"https://app.example.com/./client", false},
		{"https://app.example.com/a/%2e%2E/client", false},
		{"https://app.example.com/a/.", false},
		{"https://10.0.0.1/client", false},
		{"https://[fd00::1]/client", false},
		{"https://169.254.169.254/latest/meta-data", false},
		{"https://app.example.com/" + strings.Repeat("a", maxDocumentURL), false},
		{"https://xn--pple-43d.com/app", true},
		{"https://\u0430pple.com/app", false},         // Cyrillic а
		{"https://%D0%B0pple.com/app", false},         // the same, percent-encoded
		{"https://b\u00fccher.example/client", false}, // write it as xn--bcher-kva.example
	} {
		if err := d.checkDocumentURL(tc.id); (err == nil) != tc.ok {
			t.Errorf("checkDocumentURL(%q) = %v, want ok %v", tc.id, err, tc.ok)
		}
	}
}

// TestDocumentTTL: Cache-Control max-age, within the bounds.
func TestDocumentTTL(t *testing.T) {
	lo, hi := time.Minute, time.Hour
	for _, tc := range []struct {
		cc   []string
		want time.Duration
	}{
		{nil, lo},
		{[]string{"max-age=300"}, 5 * time.Minute},
		{[]string{"public, max-age=600, must-revalidate"}, 10 * time.Minute},
		{[]string{"public", "MAX-AGE=120"}, 2 * time.Minute},
		{[]string{`max-age="900"`}, 15 * time.Minute},
		{[]string{"max-age=5"}, lo},
		{[]string{"max-age=999999999999999"}, hi},
		{[]string{"max-age=-1"}, lo},
		{[]string{"max-age=300, no-store"}, lo},
		{[]string{"no-cache"}, lo},
		{[]string{"max-age=junk"}, lo},
	} {
		h := http.Header{}
		for _, v := range tc.cc {
			h.Add("Cache-Control", v)
		}
		if got := documentTTL(h, lo, hi); got != tc.want {
			t.Errorf("documentTTL(%q) = %s, want %s", tc.cc, got, tc.want)
		}
	}
}

// TestDocumentsShareFetch: concurrent lookups of one URL make one fetch,
// and the result is served from the cache afterwards.
func TestDocumentsShareFetch(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(100 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	d := &ClientDocuments{RootCAs: roots, UnsafeAllowLoopback: true}
	convert := func([]byte) (*cachedClient, error) { return &cachedClient{}, nil }
	done := make(chan error)
	for range 10 {
		go func() {
			_, err := d.get(context.Background(), srv.URL+"/doc", time.Now, convert)
			done <- err
		}()
	}
	for range 10 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.get(context.Background(), srv.URL+"/doc", time.Now, convert); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}
