package verify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// listServer serves Status List Tokens at /statuslists/N, signed by the
// shared issuer under its own URL, and counts the requests.
type listServer struct {
	*httptest.Server
	iss  *issuer
	hits atomic.Int64

	mu      sync.Mutex
	revoked map[int]bool
	ttl     int64
	mod     func(*token.Claims) // changes the next tokens' claims
	status  int                 // non-zero: answer this instead
	typ     string              // the typ header
	clk     *clock
}

func newListServer(t *testing.T, clk *clock) *listServer {
	s := &listServer{iss: getIssuer(t), revoked: map[int]bool{}, ttl: 60, typ: statuslist.TokenType, clk: clk}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != 0 {
			w.WriteHeader(s.status)
			return
		}
		if r.URL.Path != "/statuslists/1" || r.Header.Get("Accept") != statuslist.MediaType {
			http.NotFound(w, r)
			return
		}
		l, _ := statuslist.New(1, 1024)
		for i := range s.revoked {
			l.Set(i, 1)
		}
		j, _ := l.Encode()
		now := s.clk.Now()
		c := &token.Claims{Issuer: s.URL, Subject: s.URL + "/statuslists/1", IssuedAt: token.NewNumericDate(now),
			Expiry: token.NewNumericDate(now.Add(time.Hour)), Extra: map[string]any{"ttl": s.ttl, "status_list": j}}
		if s.mod != nil {
			s.mod(c)
		}
		raw, err := token.Sign(s.iss.key(t, "ES256"), s.typ, c)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", statuslist.MediaType)
		w.Write([]byte(raw))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *listServer) set(f func(s *listServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *listServer) ref(idx int64) *token.StatusListRef {
	return &token.StatusListRef{Index: idx, URI: s.URL + "/statuslists/1"}
}

func (s *listServer) lists(clk *clock) *verify.StatusLists {
	return &verify.StatusLists{Keys: s.iss.set, Issuer: s.URL, Now: clk.Now}
}

// waitFor polls cond for up to five seconds: background refreshes end on
// their own goroutine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestStatusListsCheck(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := newListServer(t, clk)
	srv.set(func(s *listServer) { s.revoked[7] = true })
	sl := srv.lists(clk)
	ctx := context.Background()
	if err := sl.Check(ctx, srv.ref(6)); err != nil {
		t.Fatalf("VALID entry: %v", err)
	}
	err := sl.Check(ctx, srv.ref(7))
	if !errors.Is(err, verify.ErrRevoked) || !errors.Is(err, verify.ErrInvalid) {
		t.Fatalf("revoked entry: %v, want ErrRevoked and ErrInvalid", err)
	}
	for name, ref := range map[string]*token.StatusListRef{
		"no status claim":    nil,
		"index out of range": srv.ref(1024),
		"other origin":       {Index: 1, URI: "https://elsewhere.example/statuslists/1"},
		"issuer-like prefix": {Index: 1, URI: srv.URL + ".evil.example/statuslists/1"},
		"no such list (404)": {Index: 1, URI: srv.URL + "/statuslists/2"},
	} {
		if err := sl.Check(ctx, ref); !errors.Is(err, verify.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("%d fetches, want 2: the list once, and the unknown list once", n)
	}
}

// TestStatusListsRefresh: a list is fetched once, refreshed in the
// background once three quarters of its ttl have passed (the request not
// waiting), and a revocation is seen within the ttl.
func TestStatusListsRefresh(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := newListServer(t, clk)
	sl := srv.lists(clk)
	ctx := context.Background()
	for range 100 {
		if err := sl.Check(ctx, srv.ref(3)); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for 100 checks, want 1", n)
	}
	srv.set(func(s *listServer) { s.revoked[3] = true })
	clk.Advance(30 * time.Second) // half the ttl: the copy stands
	if err := sl.Check(ctx, srv.ref(3)); err != nil {
		t.Fatalf("at half the ttl: %v, want the cached VALID", err)
	}
	clk.Advance(16 * time.Second) // past three quarters: refresh behind
	sl.Check(ctx, srv.ref(3))
	waitFor(t, "the background refresh", func() bool { return srv.hits.Load() == 2 })
	waitFor(t, "the refreshed copy", func() bool { return errors.Is(sl.Check(ctx, srv.ref(3)), verify.ErrRevoked) })

	// Without traffic for longer than the ttl, a check waits for a fresh copy.
	srv.set(func(s *listServer) { s.revoked[4] = true })
	clk.Advance(61 * time.Second)
	if err := sl.Check(ctx, srv.ref(4)); !errors.Is(err, verify.ErrRevoked) {
		t.Fatalf("after the ttl: %v, want ErrRevoked from a fresh copy", err)
	}
}

// TestStatusListsFailClosedOrOpen: when the list cannot be had, the
// default refuses and FailOpen accepts; a copy that shows the token
// revoked refuses it either way, until the copy expires.
func TestStatusListsFailClosedOrOpen(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		clk := &clock{t: time.Now()}
		srv := newListServer(t, clk)
		srv.set(func(s *listServer) { s.status = http.StatusServiceUnavailable })
		sl := srv.lists(clk)
		sl.FailOpen = failOpen
		ctx := context.Background()
		if err := sl.Check(ctx, srv.ref(1)); (err == nil) != failOpen {
			t.Fatalf("FailOpen %v, issuer down, no copy: %v", failOpen, err)
		}
		srv.set(func(s *listServer) { s.status = 0; s.revoked[2] = true })
		clk.Advance(2 * time.Second) // past MinRefresh
		if err := sl.Check(ctx, srv.ref(1)); err != nil {
			t.Fatalf("FailOpen %v, issuer back: %v", failOpen, err)
		}
		srv.set(func(s *listServer) { s.status = http.StatusBadGateway })
		clk.Advance(61 * time.Second) // the copy is past its ttl, not its exp
		if err := sl.Check(ctx, srv.ref(2)); !errors.Is(err, verify.ErrRevoked) {
			t.Errorf("FailOpen %v, stale copy showing revoked: %v, want ErrRevoked", failOpen, err)
		}
		if err := sl.Check(ctx, srv.ref(1)); (err == nil) != failOpen {
			t.Errorf("FailOpen %v, stale copy showing VALID: %v", failOpen, err)
		}
		clk.Advance(time.Hour) // past the copy's exp: it decides nothing
		if err := sl.Check(ctx, srv.ref(2)); (err == nil) != failOpen {
			t.Errorf("FailOpen %v, expired copy: %v", failOpen, err)
		}
	}
}

// TestStatusListsMinRefresh: a failing issuer is asked at most once per
// MinRefresh, however many requests come.
func TestStatusListsMinRefresh(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := newListServer(t, clk)
	srv.set(func(s *listServer) { s.status = http.StatusInternalServerError })
	sl := srv.lists(clk)
	for range 50 {
		sl.Check(context.Background(), srv.ref(1))
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches within MinRefresh, want 1", n)
	}
	clk.Advance(verify.DefaultStatusMinRefresh)
	sl.Check(context.Background(), srv.ref(1))
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after MinRefresh, want 2", n)
	}
}

// TestStatusListsRejectsBadListTokens: every §8.3 check of the list
// token itself, failed once, leaves the status unknown.
func TestStatusListsRejectsBadListTokens(t *testing.T) {
	for name, mod := range map[string]func(*listServer){
		"wrong typ":  func(s *listServer) { s.typ = token.TypeAccess },
		"wrong sub":  func(s *listServer) { s.mod = func(c *token.Claims) { c.Subject += "0" } },
		"wrong iss":  func(s *listServer) { s.mod = func(c *token.Claims) { c.Issuer = "https://other.example" } },
		"no iat":     func(s *listServer) { s.mod = func(c *token.Claims) { c.IssuedAt = 0 } },
		"future iat": func(s *listServer) { s.mod = func(c *token.Claims) { c.IssuedAt += 3600 } },
		"expired":    func(s *listServer) { s.mod = func(c *token.Claims) { c.Expiry = c.IssuedAt - 3600 } },
		"zero ttl":   func(s *listServer) { s.ttl = 0 },
		"no list":    func(s *listServer) { s.mod = func(c *token.Claims) { delete(c.Extra, "status_list") } },
		"bad bits": func(s *listServer) {
			s.mod = func(c *token.Claims) { c.Extra["status_list"] = statuslist.JSON{Bits: 3, Lst: "eNrbuRgAAhcBXQ"} }
		},
		"list as str": func(s *listServer) { s.mod = func(c *token.Claims) { c.Extra["status_list"] = "x" } },
	} {
		t.Run(name, func(t *testing.T) {
			clk := &clock{t: time.Now()}
			srv := newListServer(t, clk)
			srv.set(mod)
			sl := srv.lists(clk)
			if err := sl.Check(context.Background(), srv.ref(1)); !errors.Is(err, verify.ErrInvalid) {
				t.Fatalf("%v, want ErrInvalid (status unknown)", err)
			}
		})
	}
}

// TestStatusListsExpOverridesTTL: a copy is not fresh past its exp, even
// when its ttl is longer; with the issuer down the status is then unknown.
func TestStatusListsExpOverridesTTL(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := newListServer(t, clk)
	srv.set(func(s *listServer) {
		s.ttl = 3600
		s.mod = func(c *token.Claims) { c.Expiry = c.IssuedAt + 30 }
	})
	sl := srv.lists(clk)
	if err := sl.Check(context.Background(), srv.ref(1)); err != nil {
		t.Fatal(err)
	}
	srv.set(func(s *listServer) { s.status = http.StatusServiceUnavailable })
	clk.Advance(31*time.Second + verify.DefaultLeeway)
	if err := sl.Check(context.Background(), srv.ref(1)); !errors.Is(err, verify.ErrInvalid) {
		t.Fatalf("past the copy's exp, issuer down: %v, want the status unknown (ErrInvalid)", err)
	}
}

// TestStatusListsNoRollback: a fetched copy older than the one held (a
// stale cache between the resource server and the issuer) does not
// replace it, so a revocation already seen stays seen.
func TestStatusListsNoRollback(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := newListServer(t, clk)
	srv.set(func(s *listServer) { s.revoked[5] = true })
	sl := srv.lists(clk)
	if err := sl.Check(context.Background(), srv.ref(5)); !errors.Is(err, verify.ErrRevoked) {
		t.Fatalf("revoked entry: %v", err)
	}
	// Now the issuer's answer is an older copy, from before the revocation.
	srv.set(func(s *listServer) {
		delete(s.revoked, 5)
		s.mod = func(c *token.Claims) { c.IssuedAt -= 120 }
	})
	clk.Advance(61 * time.Second)
	if err := sl.Check(context.Background(), srv.ref(5)); !errors.Is(err, verify.ErrRevoked) {
		t.Fatalf("after an older copy was served: %v, want the revocation kept (ErrRevoked)", err)
	}
}

// TestStatusListsManyLists: past the cache's bound, lists are forgotten
// to make room; tokens on new lists are still checked.
func TestStatusListsManyLists(t *testing.T) {
	iss := getIssuer(t)
	key := iss.key(t, "ES256")
	l, _ := statuslist.New(1, 8)
	l.Set(3, 1)
	lst, _ := l.Encode()
	at := time.Now()
	var fetches atomic.Int64
	transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fetches.Add(1)
		raw, err := token.Sign(key, statuslist.TokenType, &token.Claims{Issuer: testIssuer, Subject: r.URL.String(),
			IssuedAt: token.NewNumericDate(at), Expiry: token.NewNumericDate(at.Add(time.Hour)),
			Extra: map[string]any{"ttl": 3600, "status_list": lst}})
		if err != nil {
			return nil, err
		}
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(raw)), Request: r}, nil
	})
	sl := &verify.StatusLists{Keys: iss.set, Issuer: testIssuer, Client: &http.Client{Transport: transport}, Now: func() time.Time { return at }}
	const lists = 4200 // more than the cache holds
	for i := range lists {
		ref := &token.StatusListRef{Index: 3, URI: fmt.Sprintf("%s/statuslists/%d", testIssuer, i+1)}
		if err := sl.Check(context.Background(), ref); !errors.Is(err, verify.ErrRevoked) {
			t.Fatalf("list %d: %v, want ErrRevoked", i+1, err)
		}
	}
	if n := fetches.Load(); n != lists {
		t.Fatalf("%d fetches for %d lists", n, lists)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
