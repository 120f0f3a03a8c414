package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/token"
)

// Limits of StatusLists.
const (
	// DefaultStatusMaxTTL caps the ttl a list asks to be cached for: a
	// list saying "cache me for a year" must not freeze revocations.
	DefaultStatusMaxTTL = time.Hour
	// DefaultStatusMinRefresh is the least time between two fetches of
	// one list, whatever its ttl says, so a list cannot make the cache
	// hammer the issuer.
	DefaultStatusMinRefresh = time.Second
	// defaultStatusTTL is used for a list without ttl or exp.
	defaultStatusTTL = 5 * time.Minute
	// maxStatusLists bounds the lists cached at once; past it, one is
	// forgotten for each new one.
	maxStatusLists     = 4096
	maxStatusListBytes = 4 << 20
)

// StatusLists checks token status (draft-ietf-oauth-status-list) against
// Status List Tokens cached in memory. A list is fetched the first time a
// token names it; afterwards it is refreshed in the background once three
// quarters of its ttl have passed, so requests do not wait on the network
// while traffic keeps coming. A request that finds its list older than
// its ttl waits for a fresh copy. Set the fields before first use; it is
// safe for concurrent use afterwards.
type StatusLists struct {
	// Keys verifies the Status List Tokens: the issuer's keys.
	Keys token.KeySource
	// Issuer is the issuer URL. Lists must be served under it (their
	// URI starts with Issuer + "/") and be issued by it: a token's uri is
	// never followed anywhere else.
	Issuer string
	// Client fetches lists; nil means a client with a 10-second timeout.
	Client *http.Client
	// FailOpen accepts a token whose status cannot be learnt (the list
	// cannot be fetched, or the copy held is older than its ttl and
	// cannot be refreshed); the default refuses it. A held copy still
	// decides while it is valid (its exp), either way: a token it shows
	// revoked is refused.
	FailOpen bool
	// MaxTTL caps a list's ttl; zero means DefaultStatusMaxTTL.
	MaxTTL time.Duration
	// MinRefresh is the least time between fetches of one list; zero
	// means DefaultStatusMinRefresh.
	MinRefresh time.Duration
	// Leeway is the clock skew tolerated on a list's iat and exp; zero
	// means DefaultLeeway.
	Leeway time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	lists map[string]*statusEntry
}

// statusEntry is one list's cache slot.
type statusEntry struct {
	mu       sync.Mutex
	cur      *heldList     // the last good copy; nil before the first
	inflight chan struct{} // closed when the running fetch ends
	last     time.Time     // when the last fetch started
	lastErr  error
}

// heldList is a verified, decoded list.
type heldList struct {
	list    *statuslist.List
	fetched time.Time
	ttl     time.Duration
	iat     time.Time
	exp     time.Time // zero when the token has none
}

// ErrRevoked is wrapped (with ErrInvalid) by the error for a token whose
// status is not VALID.
var ErrRevoked = errors.New("token status is not valid")

// Check returns nil if the status list ref points at says VALID. A
// revoked or suspended token, an index outside the list, or, unless
// FailOpen, a status that cannot be learnt, is an error wrapping
// ErrInvalid.
func (s *StatusLists) Check(ctx context.Context, ref *token.StatusListRef) error {
	if ref == nil {
		return fmt.Errorf("verify: the token has no status list entry: %w", ErrInvalid)
	}
	if !strings.HasPrefix(ref.URI, s.Issuer+"/") {
		return fmt.Errorf("verify: status list %q is not served by the issuer: %w", ref.URI, ErrInvalid)
	}
	e := s.entry(ref.URI)
	h, err := s.held(ctx, e, ref.URI)
	if err != nil {
		if s.FailOpen && h == nil {
			return nil
		}
		if h == nil {
			return fmt.Errorf("verify: token status unknown: %v: %w", err, ErrInvalid)
		}
	}
	v, gerr := h.list.Get(ref.Index)
	if gerr != nil {
		return fmt.Errorf("verify: %v: %w", gerr, ErrInvalid)
	}
	if v != 0 {
		return fmt.Errorf("verify: status %d: %w: %w", v, ErrRevoked, ErrInvalid)
	}
	if err != nil && !s.FailOpen {
		// VALID in a copy too old to trust.
		return fmt.Errorf("verify: token status unknown: %v: %w", err, ErrInvalid)
	}
	return nil
}

// entry returns uri's cache slot, creating it.
func (s *StatusLists) entry(uri string) *statusEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.lists[uri]; ok {
		return e
	}
	if s.lists == nil {
		s.lists = map[string]*statusEntry{}
	}
	if len(s.lists) >= maxStatusLists {
		// Lists are leased and recycled as tokens come and go; make room
		// by forgetting one (map order: arbitrary). Its next token pays
		// for a fetch.
		for old := range s.lists {
			delete(s.lists, old)
			break
		}
	}
	e := &statusEntry{}
	s.lists[uri] = e
	return e
}

// held returns the copy of the list to decide with. With a fresh copy it
// returns at once, starting a background refresh past three quarters of
// the ttl. Otherwise it waits for a fetch; if that fails it returns the
// copy still held, if any and not past its exp, with the error.
func (s *StatusLists) held(ctx context.Context, e *statusEntry, uri string) (*heldList, error) {
	now := s.now()
	e.mu.Lock()
	h := e.cur
	e.mu.Unlock()
	if h != nil {
		age := now.Sub(h.fetched)
		if age < h.ttl {
			if age >= h.ttl*3/4 {
				s.refresh(e, uri)
			}
			return h, nil
		}
	}
	done := s.refresh(e, uri)
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return s.usable(h, now), fmt.Errorf("waiting for status list: %w", ctx.Err())
		}
	}
	e.mu.Lock()
	h, err := e.cur, e.lastErr
	e.mu.Unlock()
	if h != nil && now.Sub(h.fetched) < h.ttl {
		return h, nil
	}
	if err == nil {
		err = errors.New("status list copy is older than its ttl")
	}
	return s.usable(h, now), err
}

// usable returns h unless it is nil or past its exp.
func (s *StatusLists) usable(h *heldList, now time.Time) *heldList {
	if h == nil || (!h.exp.IsZero() && !now.Before(h.exp.Add(s.leeway()))) {
		return nil
	}
	return h
}

// refresh starts a fetch of uri unless one is running (whose channel it
// returns) or the last started less than MinRefresh ago (nil).
func (s *StatusLists) refresh(e *statusEntry, uri string) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inflight != nil {
		return e.inflight
	}
	minRefresh := s.MinRefresh
	if minRefresh == 0 {
		minRefresh = DefaultStatusMinRefresh
	}
	if e.cur != nil {
		// A short ttl is kept: refreshing at three quarters of it must
		// not wait for MinRefresh.
		minRefresh = min(minRefresh, e.cur.ttl/2)
	}
	now := s.now()
	if !e.last.IsZero() && now.Sub(e.last) < minRefresh {
		return nil
	}
	done := make(chan struct{})
	e.inflight, e.last = done, now
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		h, err := s.fetch(ctx, uri, now)
		cancel()
		e.mu.Lock()
		if err == nil && e.cur != nil && h.iat.Before(e.cur.iat) {
			// An older copy than the one held (from a cache on the way)
			// would bring back revoked tokens.
			h, err = nil, errors.New("status list is older than the copy held")
		}
		if err == nil {
			e.cur = h
		}
		e.inflight, e.lastErr = nil, err
		e.mu.Unlock()
		close(done)
	}()
	return done
}

// fetch gets, verifies and decodes the list at uri (§8.3 steps 3-7).
func (s *StatusLists) fetch(ctx context.Context, uri string, now time.Time) (*heldList, error) {
	client := s.Client
	if client == nil {
		client = defaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("status list request: %w", err)
	}
	req.Header.Set("Accept", statuslist.MediaType)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch status list: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch status list %s: %s", uri, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read status list: %w", err)
	}
	if len(body) > maxStatusListBytes {
		return nil, fmt.Errorf("status list larger than %d bytes", maxStatusListBytes)
	}
	return s.parse(ctx, string(body), uri, now)
}

// parse verifies a Status List Token for uri and decodes its list.
func (s *StatusLists) parse(ctx context.Context, raw, uri string, now time.Time) (*heldList, error) {
	hdr, c, err := token.Parse(ctx, strings.TrimSpace(raw), s.Keys)
	if err != nil {
		return nil, err
	}
	leeway := s.leeway()
	switch {
	case !token.TypeIs(hdr.Typ, statuslist.TokenType):
		return nil, fmt.Errorf("status list typ %q, want %q", hdr.Typ, statuslist.TokenType)
	case c.Issuer != s.Issuer:
		return nil, fmt.Errorf("status list iss %q, want %q", c.Issuer, s.Issuer)
	case c.Subject != uri:
		return nil, fmt.Errorf("status list sub %q, want its uri %q", c.Subject, uri)
	case c.IssuedAt == 0:
		return nil, errors.New("status list has no iat")
	case c.IssuedAt.Time().After(now.Add(leeway)):
		return nil, errors.New("status list iat is in the future")
	case c.Expiry != 0 && !now.Before(c.Expiry.Time().Add(leeway)):
		return nil, errors.New("status list has expired")
	}
	var lst statuslist.JSON
	if err := remarshal(c.Extra["status_list"], &lst); err != nil {
		return nil, fmt.Errorf("status list claim: %w", err)
	}
	list, err := statuslist.Decode(lst)
	if err != nil {
		return nil, err
	}
	h := &heldList{list: list, fetched: now, exp: c.Expiry.Time()}
	h.ttl = defaultStatusTTL
	if raw, ok := c.Extra["ttl"]; ok {
		var ttl int64
		if err := remarshal(raw, &ttl); err != nil || ttl <= 0 {
			return nil, errors.New("status list ttl is not a positive integer")
		}
		h.ttl = time.Duration(min(ttl, 1<<32)) * time.Second
	}
	maxTTL := s.MaxTTL
	if maxTTL == 0 {
		maxTTL = DefaultStatusMaxTTL
	}
	h.ttl = min(h.ttl, maxTTL)
	if c.Expiry != 0 {
		// A copy is never fresh past its exp, whatever its ttl says.
		h.ttl = min(h.ttl, c.Expiry.Time().Sub(now))
	}
	h.iat = c.IssuedAt.Time()
	return h, nil
}

// remarshal decodes a claim decoded generically (token.Claims.Extra) into
// a typed value.
func remarshal(v any, into any) error {
	if v == nil {
		return errors.New("missing")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

func (s *StatusLists) leeway() time.Duration {
	if s.Leeway > 0 {
		return s.Leeway
	}
	return DefaultLeeway
}

func (s *StatusLists) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
