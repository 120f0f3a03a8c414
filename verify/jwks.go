package verify

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/sigil-sts/sigil/keys"
)

// Limits on what JWKS fetches read and how often they run.
const (
	maxJWKSBytes = 1 << 20
	// DefaultMinRefresh is the least time between two fetches caused by an
	// unknown kid, so forged kids cannot make the cache hammer the issuer.
	DefaultMinRefresh = 10 * time.Second
	// DefaultMaxAge is how long a fetched set is used when the response
	// names no max-age.
	DefaultMaxAge = 5 * time.Minute
)

// JWKS is a cache of an issuer's public keys, fetched from its jwks_uri. A
// key without alg, with a use other than "sig", or of the wrong type or
// size for its alg is ignored. It is safe for concurrent use.
type JWKS struct {
	// URL is the jwks_uri.
	URL string
	// Client fetches the set; nil means a client with a 10-second timeout
	// (a hanging issuer must not block verification forever).
	Client *http.Client
	// MinRefresh is the least time between fetches; zero means
	// DefaultMinRefresh.
	MinRefresh time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	state atomic.Pointer[jwksState] // the last fetched set; read lock-free

	mu       sync.Mutex    // guards the fields below
	inflight chan struct{} // closed when the running fetch ends; nil if none
	last     time.Time     // when the last fetch started
	lastErr  error         // how it ended
}

// KeySet is a fixed set of verification keys by kid, as ParseJWKS returns
// it. It implements token.KeySource.
type KeySet map[string]Key

// Key is one verification key with the algorithm it is for.
type Key struct {
	Public crypto.PublicKey
	Alg    string
}

// Lookup returns the key for kid. An empty kid finds the only key of a set
// that has exactly one (client assertions often carry no kid).
func (s KeySet) Lookup(_ context.Context, kid string) (crypto.PublicKey, string, error) {
	if kid == "" && len(s) == 1 {
		for _, k := range s {
			return k.Public, k.Alg, nil
		}
	}
	k, ok := s[kid]
	if !ok || kid == "" {
		return nil, "", fmt.Errorf("verify: no key with kid %q", kid)
	}
	return k.Public, k.Alg, nil
}

func (j *JWKS) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

// jwksState is one fetched set and when it goes stale.
type jwksState struct {
	keys    KeySet
	expires time.Time
}

// fetchTimeout bounds one fetch when the caller's Client has no timeout.
const fetchTimeout = 15 * time.Second

// Lookup returns the key for kid. A known kid is answered from memory
// without a lock or a wait, even from a stale set while a background
// refresh runs (an issuer outage must not stop verification). An unknown
// kid waits for a fetch, joining the one in flight if there is one. Fetches
// start at most once per MinRefresh and one at a time, so forged kids or a
// failing issuer cannot make the cache hammer it.
func (j *JWKS) Lookup(ctx context.Context, kid string) (crypto.PublicKey, string, error) {
	st := j.state.Load()
	if st != nil {
		if k, ok := st.keys[kid]; ok {
			if j.now().After(st.expires) {
				j.refresh()
			}
			return k.Public, k.Alg, nil
		}
	}
	if done := j.refresh(); done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, "", fmt.Errorf("verify: waiting for jwks: %w", ctx.Err())
		}
	}
	if st = j.state.Load(); st != nil {
		if k, ok := st.keys[kid]; ok {
			return k.Public, k.Alg, nil
		}
	}
	j.mu.Lock()
	lastErr := j.lastErr
	j.mu.Unlock()
	if lastErr != nil {
		return nil, "", fmt.Errorf("verify: no key with kid %q (last fetch of %s: %v)", kid, j.URL, lastErr)
	}
	return nil, "", fmt.Errorf("verify: no key with kid %q in %s", kid, j.URL)
}

// refresh starts a fetch in the background and returns a channel closed
// when it ends; if a fetch is running it returns that one's channel; if the
// last fetch ended less than MinRefresh ago it starts nothing and returns
// nil.
func (j *JWKS) refresh() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inflight != nil {
		return j.inflight
	}
	minRefresh := j.MinRefresh
	if minRefresh == 0 {
		minRefresh = DefaultMinRefresh
	}
	now := j.now()
	if !j.last.IsZero() && now.Sub(j.last) < minRefresh {
		return nil
	}
	done := make(chan struct{})
	j.inflight = done
	// The fetch is dated by its start, read here on the caller's
	// goroutine: only one fetch runs at a time, and callers arriving while
	// it runs join it, so a slow issuer never queues fetches up.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		st, err := j.fetch(ctx, now)
		cancel()
		if err == nil {
			j.state.Store(st)
		}
		j.mu.Lock()
		j.inflight, j.last, j.lastErr = nil, now, err
		j.mu.Unlock()
		close(done)
	}()
	return done
}

func (j *JWKS) fetch(ctx context.Context, now time.Time) (*jwksState, error) {
	client := j.Client
	if client == nil {
		client = defaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("verify: jwks request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("verify: fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("verify: fetch jwks: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("verify: read jwks: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("verify: jwks larger than %d bytes", maxJWKSBytes)
	}
	set, err := ParseJWKS(body)
	if err != nil {
		return nil, err
	}
	return &jwksState{keys: set, expires: now.Add(maxAge(resp.Header.Get("Cache-Control")))}, nil
}

// ParseJWKS decodes a JWK Set and keeps the usable signature keys by kid.
// A member that does not decode as a key (an unknown kty or curve, a
// missing parameter) is ignored like any other unusable key (RFC 7517
// §5), so one such key cannot hide the others.
func ParseJWKS(body []byte) (KeySet, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("verify: decode jwks: %w", err)
	}
	out := KeySet{}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if !keys.Supported(k.Algorithm) || (k.Use != "" && k.Use != "sig") || !k.IsPublic() {
			continue
		}
		if keys.CheckPublic(k.Algorithm, k.Key) != nil {
			continue
		}
		out[k.KeyID] = Key{Public: k.Key, Alg: k.Algorithm}
	}
	return out, nil
}

// maxAge reads how long a response may be used: max-age, or zero for
// no-cache and no-store (the issuer asks to revalidate every time).
func maxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "no-cache" || d == "no-store" {
			return 0
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return DefaultMaxAge
}

// defaultClient is used when a caller gives no *http.Client.
var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Metadata is the part of an issuer's RFC 8414 metadata that verify uses.
type Metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	TokenEndpoint         string `json:"token_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
}

// Discover fetches issuer's authorization server metadata (RFC 8414 §3)
// and checks that it names the same issuer (§3.3). For an issuer with a
// path, the well-known suffix goes between host and path (§3.1).
func Discover(ctx context.Context, client *http.Client, issuer string) (*Metadata, error) {
	if client == nil {
		client = defaultClient
	}
	iu, err := url.Parse(issuer)
	if err != nil || iu.Host == "" {
		return nil, fmt.Errorf("verify: issuer %q is not a URL", issuer)
	}
	wk := *iu
	wk.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(iu.Path, "/")
	wk.RawPath = ""
	u := wk.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("verify: metadata request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("verify: fetch metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("verify: fetch metadata from %s: %s", u, resp.Status)
	}
	var m Metadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&m); err != nil {
		return nil, fmt.Errorf("verify: decode metadata: %w", err)
	}
	if m.Issuer != issuer {
		return nil, fmt.Errorf("verify: metadata names issuer %q, want %q", m.Issuer, issuer)
	}
	if m.JWKSURI == "" {
		return nil, errors.New("verify: metadata has no jwks_uri")
	}
	return &m, nil
}
