package issuer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// specialUse are the special-use address blocks (RFC 6890 and the IANA
// special-purpose address registries that replaced its tables) that a
// client metadata document is never fetched from, as the draft's SSRF
// section requires: a client_id must not make the server reach its own
// host, the cloud metadata service (169.254.169.254), the private network
// or anything else not on the public internet. IPv6 blocks that embed or
// translate to IPv4 addresses (NAT64, 6to4, Teredo) are refused whole,
// since the IPv4 address inside could be any of the others.
var specialUse = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // shared address space (carrier-grade NAT)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata services
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation (TEST-NET-1)
		"192.88.99.0/24",  // 6to4 relay anycast
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation (TEST-NET-2)
		"203.0.113.0/24",  // documentation (TEST-NET-3)
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, and the limited broadcast address
		"::/96",           // unspecified, loopback, IPv4-compatible
		"::ffff:0:0/96",   // IPv4-mapped (checked unmapped first)
		"64:ff9b::/96",    // NAT64
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard-only
		"2001::/23",       // IETF protocol assignments, Teredo
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4
		"3fff::/20",       // documentation
		"5f00::/16",       // segment routing SIDs
		"fc00::/7",        // unique local
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// checkFetchAddr reports why the server must not connect to a to fetch a
// client metadata document, or nil when it may. With allowLoopback,
// loopback addresses are allowed (tests only); every other special-use
// block stays refused.
func checkFetchAddr(a netip.Addr, allowLoopback bool) error {
	if !a.IsValid() {
		return errors.New("not an IP address")
	}
	if a.Zone() != "" {
		return fmt.Errorf("%s is a scoped address", a)
	}
	a = a.Unmap()
	if allowLoopback && a.IsLoopback() {
		return nil
	}
	for _, p := range specialUse {
		if p.Contains(a) {
			return fmt.Errorf("%s is a special-use address (%s)", a, p)
		}
	}
	return nil
}

// errRefusedAddress is wrapped by the errors of guardDial: a fetch
// refused for its address, which no retry will change.
var errRefusedAddress = errors.New("refused address")

// guardDial is a net.Dialer Control function that refuses to connect to
// an address checkFetchAddr refuses. It runs on the address actually
// dialed, after name resolution, for every address tried: a name that
// resolves to an internal address, or resolves to a public one for a
// check and to an internal one for the connection (DNS rebinding), is
// refused all the same.
func guardDial(allowLoopback bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if !strings.HasPrefix(network, "tcp") {
			return fmt.Errorf("issuer: refusing to dial %s over %s", address, network)
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("issuer: refusing to dial %s: %w", address, err)
		}
		if err := checkFetchAddr(ap.Addr(), allowLoopback); err != nil {
			return fmt.Errorf("issuer: refusing to dial %s: %w: %w", address, errRefusedAddress, err)
		}
		return nil
	}
}

// maxDocumentHeaderBytes bounds a document response's headers.
const maxDocumentHeaderBytes = 16 << 10

// newFetchClient returns the HTTP client that fetches client metadata
// documents: every connection guarded by guardDial, no proxy (the guard
// would see the proxy's address, not the document server's), TLS 1.2 or
// later verified against roots (nil: the system's), no redirects
// followed (the draft forbids it: a redirect answers as an error), and
// the whole exchange bounded by timeout.
func newFetchClient(roots *x509.CertPool, allowLoopback bool, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, Control: guardDial(allowLoopback)}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: maxDocumentHeaderBytes,
			MaxIdleConns:           16,
			IdleConnTimeout:        30 * time.Second,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
}

// Bounds on fetches at once.
const (
	// maxFetches bounds the fetches in flight at once, so that requests
	// naming many URLs cannot make the server open unbounded connections.
	maxFetches = 16
	// maxFetchesPerHost bounds those from one host, so that a slow host
	// (a tarpit answering nothing until the timeout) holds at most this
	// many: other hosts' documents are still fetched.
	maxFetchesPerHost = 2
)

// errBusy is a fetch that found no free slot in time.
var errBusy = errors.New("issuer: no free fetch slot")

// slots bounds concurrent fetches, per host and in all. Safe for
// concurrent use.
type slots struct {
	all     chan struct{}
	perHost int

	mu    sync.Mutex
	hosts map[string]*hostSlots // hosts with fetches held or waited for
}

// hostSlots are one host's slots and how many fetches hold or wait for
// one; the host's entry goes when none do.
type hostSlots struct {
	ch    chan struct{}
	users int
}

func newSlots(all, perHost int) *slots {
	return &slots{all: make(chan struct{}, all), perHost: perHost, hosts: map[string]*hostSlots{}}
}

// acquire waits at most wait for one of host's slots and then one of all,
// and returns the function that gives both back; errBusy when they stay
// taken, ctx's error when it ends first. The host's slot comes first, so
// fetches for a busy host wait there without holding one of all.
func (s *slots) acquire(ctx context.Context, host string, wait time.Duration) (release func(), err error) {
	s.mu.Lock()
	h := s.hosts[host]
	if h == nil {
		h = &hostSlots{ch: make(chan struct{}, s.perHost)}
		s.hosts[host] = h
	}
	h.users++
	s.mu.Unlock()
	leave := func() {
		s.mu.Lock()
		if h.users--; h.users == 0 {
			delete(s.hosts, host)
		}
		s.mu.Unlock()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case h.ch <- struct{}{}:
	case <-timer.C:
		leave()
		return nil, errBusy
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
	select {
	case s.all <- struct{}{}:
	case <-timer.C:
		<-h.ch
		leave()
		return nil, errBusy
	case <-ctx.Done():
		<-h.ch
		leave()
		return nil, ctx.Err()
	}
	return func() {
		<-s.all
		<-h.ch
		leave()
	}, nil
}
