package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// jwksServer serves a JWK Set whose body, status and Cache-Control a test
// can change, and counts the requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu           sync.Mutex
	body         []byte
	status       int
	cacheControl string
}

func newJWKSServer(tb testing.TB, body []byte) *jwksServer {
	tb.Helper()
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status, cc := s.body, s.status, s.cacheControl
		s.mu.Unlock()
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte, status int, cacheControl string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.status, s.cacheControl = body, status, cacheControl
}

// cache returns a JWKS cache of srv on a clock the test moves.
// waitHits waits for the server to have served n fetches: a stale set is
// refreshed in the background, so the fetch lands a moment after Lookup.
func waitHits(t *testing.T, srv *jwksServer, n int64, why string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.hits.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// Give a wrongly started extra fetch the chance to show up.
	time.Sleep(20 * time.Millisecond)
	if got := srv.hits.Load(); got != n {
		t.Errorf("%d fetches %s, want %d", got, why, n)
	}
}

func cache(srv *jwksServer, now *time.Time) *verify.JWKS {
	return &verify.JWKS{URL: srv.URL, Client: srv.Client(), Now: func() time.Time { return *now }}
}

func TestJWKSFetchesOnceAndCaches(t *testing.T) {
	iss := getIssuer(t)
	srv := newJWKSServer(t, iss.set.JWKS())
	now := t0
	j := cache(srv, &now)
	ctx := context.Background()
	for _, alg := range keys.Algorithms {
		k := iss.key(t, alg)
		for range 5 {
			pub, gotAlg, err := j.Lookup(ctx, k.ID)
			if err != nil {
				t.Fatalf("Lookup(%s): %v", alg, err)
			}
			if gotAlg != alg || keys.CheckPublic(alg, pub) != nil {
				t.Errorf("Lookup(%s) = %T, %s", alg, pub, gotAlg)
			}
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("%d fetches for 20 lookups, want 1", got)
	}
	now = now.Add(verify.DefaultMaxAge) // still fresh at exactly max-age
	j.Lookup(ctx, iss.key(t, "ES256").ID)
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("%d fetches at max-age, want 1", got)
	}
	now = now.Add(time.Second) // stale: refetched in the background
	if _, _, err := j.Lookup(ctx, iss.key(t, "ES256").ID); err != nil {
		t.Errorf("a stale known key was not answered at once: %v", err)
	}
	waitHits(t, srv, 2, "after max-age")
}

// TestJWKSUnknownKidRateLimited: forged kids cannot make the cache hammer
// the issuer; a key the issuer really added is found after MinRefresh.
func TestJWKSUnknownKidRateLimited(t *testing.T) {
	iss := getIssuer(t)
	es := iss.key(t, "ES256")
	srv := newJWKSServer(t, jwksOf(t, jose.JSONWebKey{Key: es.Public, KeyID: es.ID, Algorithm: "ES256", Use: "sig"}))
	now := t0
	j := cache(srv, &now)
	ctx := context.Background()
	if _, _, err := j.Lookup(ctx, es.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, _, err := j.Lookup(ctx, fmt.Sprintf("forged-%d", i)); err == nil {
			t.Fatal("a forged kid was found")
		}
		now = now.Add(50 * time.Millisecond) // 5s in all, under MinRefresh
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("%d fetches for 100 unknown kids within MinRefresh, want 1", got)
	}

	// The issuer publishes a new key; once MinRefresh has passed since
	// the last fetch, one lookup of its kid fetches again and finds it.
	ed := iss.key(t, "EdDSA")
	srv.set(jwksOf(t,
		jose.JSONWebKey{Key: es.Public, KeyID: es.ID, Algorithm: "ES256", Use: "sig"},
		jose.JSONWebKey{Key: ed.Public, KeyID: ed.ID, Algorithm: "EdDSA", Use: "sig"}), http.StatusOK, "")
	if _, _, err := j.Lookup(ctx, ed.ID); err == nil {
		t.Error("new kid found before MinRefresh passed")
	}
	now = t0.Add(verify.DefaultMinRefresh)
	if _, alg, err := j.Lookup(ctx, ed.ID); err != nil || alg != "EdDSA" {
		t.Errorf("Lookup(new kid) after MinRefresh = %s, %v", alg, err)
	}
	for i := range 100 {
		j.Lookup(ctx, fmt.Sprintf("forged-again-%d", i))
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("%d fetches, want 2", got)
	}

	// A custom MinRefresh.
	now = t0
	j2 := cache(srv, &now)
	j2.MinRefresh = time.Minute
	j2.Lookup(ctx, "x")
	now = now.Add(59 * time.Second)
	j2.Lookup(ctx, "x")
	now = now.Add(time.Second)
	j2.Lookup(ctx, "x")
	if got := srv.hits.Load(); got != 4 {
		t.Errorf("with MinRefresh 1m: %d fetches in all, want 4", got)
	}
}

func TestJWKSCacheControl(t *testing.T) {
	iss := getIssuer(t)
	es := iss.key(t, "ES256")
	tests := []struct {
		name  string
		cc    string
		fresh time.Duration // last moment the set is used without refetch
	}{
		{"max-age", "max-age=60", 60 * time.Second},
		{"max-age among directives", "public, max-age=120, must-revalidate", 120 * time.Second},
		{"no-cache revalidates every time", "no-cache", 0},
		{"no max-age", "public", verify.DefaultMaxAge},
		{"invalid max-age", "max-age=soon", verify.DefaultMaxAge},
		{"negative max-age", "max-age=-5", verify.DefaultMaxAge},
		{"no header", "", verify.DefaultMaxAge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, iss.set.JWKS())
			srv.set(iss.set.JWKS(), http.StatusOK, tt.cc)
			now := t0
			j := cache(srv, &now)
			ctx := context.Background()
			j.Lookup(ctx, es.ID)
			now = t0.Add(tt.fresh)
			j.Lookup(ctx, es.ID)
			if got := srv.hits.Load(); got != 1 {
				t.Errorf("%d fetches within max-age, want 1", got)
			}
			now = t0.Add(max(tt.fresh, verify.DefaultMinRefresh) + time.Second)
			if _, _, err := j.Lookup(ctx, es.ID); err != nil {
				t.Fatal(err)
			}
			waitHits(t, srv, 2, "after max-age")
		})
	}
}

// TestJWKSStaleRefetchRateLimited: a set that stays stale — max-age=0, or
// an issuer that keeps failing — is refetched at most once per
// MinRefresh, not on every lookup; meanwhile the known keys keep working.
func TestJWKSStaleRefetchRateLimited(t *testing.T) {
	iss := getIssuer(t)
	es := iss.key(t, "ES256")
	ctx := context.Background()

	t.Run("max-age=0", func(t *testing.T) {
		srv := newJWKSServer(t, nil)
		srv.set(iss.set.JWKS(), http.StatusOK, "max-age=0")
		now := t0
		j := cache(srv, &now)
		for range 50 {
			if _, _, err := j.Lookup(ctx, es.ID); err != nil {
				t.Fatal(err)
			}
			now = now.Add(100 * time.Millisecond)
		}
		if got := srv.hits.Load(); got != 1 {
			t.Errorf("%d fetches in 5s with max-age=0, want 1 (MinRefresh is %v)", got, verify.DefaultMinRefresh)
		}
	})

	t.Run("issuer failing", func(t *testing.T) {
		srv := newJWKSServer(t, iss.set.JWKS())
		now := t0
		j := cache(srv, &now)
		if _, _, err := j.Lookup(ctx, es.ID); err != nil {
			t.Fatal(err)
		}
		srv.set([]byte("down"), http.StatusServiceUnavailable, "")
		now = now.Add(verify.DefaultMaxAge + time.Second) // stale
		for i := range 50 {
			if _, _, err := j.Lookup(ctx, es.ID); err != nil {
				t.Fatalf("known key lost while the issuer is down: %v", err)
			}
			if i == 0 {
				waitHits(t, srv, 2, "after the first stale lookup")
			}
			now = now.Add(100 * time.Millisecond)
		}
		waitHits(t, srv, 2, "in 5s of lookups (the first, then one retry per MinRefresh)")
		now = now.Add(verify.DefaultMinRefresh)
		j.Lookup(ctx, es.ID)
		waitHits(t, srv, 3, "after another MinRefresh")
	})
}

func TestJWKSFetchErrors(t *testing.T) {
	iss := getIssuer(t)
	es := iss.key(t, "ES256")
	valid := iss.set.JWKS()
	var padded []byte
	padded = append(padded, valid...)
	padded = append(padded, strings.Repeat(" ", 1<<20)...) // valid JSON, too long
	tests := []struct {
		name   string
		status int
		body   []byte
	}{
		{"404", http.StatusNotFound, valid},
		{"500", http.StatusInternalServerError, valid},
		{"redirect status without location", http.StatusFound, valid},
		{"not JSON", http.StatusOK, []byte("<html>")},
		{"oversized", http.StatusOK, []byte(`{"keys":[` + strings.Repeat(`{"kty":"EC"},`, 100000) + `{}]}`)},
		{"oversized but valid JSON", http.StatusOK, padded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, nil)
			srv.set(tt.body, tt.status, "")
			now := t0
			j := cache(srv, &now)
			if pub, _, err := j.Lookup(context.Background(), es.ID); err == nil {
				t.Errorf("Lookup = %T, want an error", pub)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := newJWKSServer(t, valid)
		srv.Close()
		now := t0
		if _, _, err := cache(srv, &now).Lookup(context.Background(), es.ID); err == nil {
			t.Error("Lookup succeeded against a closed server")
		}
	})
}

// TestParseJWKS: only public signature keys with an alg that fits them
// are kept.
func TestParseJWKS(t *testing.T) {
	iss := getIssuer(t)
	es, ed, rs := iss.key(t, "ES256"), iss.key(t, "EdDSA"), iss.key(t, "RS256")
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	members := []string{
		jwkString(t, jose.JSONWebKey{Key: es.Public, KeyID: "good-es", Algorithm: "ES256", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: ed.Public, KeyID: "good-ed-no-use", Algorithm: "EdDSA"}),
		jwkString(t, jose.JSONWebKey{Key: rs.Public, KeyID: "good-rs", Algorithm: "RS256", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: rs.Public, KeyID: "good-ps", Algorithm: "PS256", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: es.Public, KeyID: "no-alg", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: es.Public, KeyID: "use-enc", Algorithm: "ES256", Use: "enc"}),
		jwkString(t, jose.JSONWebKey{Key: ecPriv, KeyID: "private-ec", Algorithm: "ES256", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: edPriv, KeyID: "private-ed", Algorithm: "EdDSA", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: rs.Public, KeyID: "es-alg-on-rsa", Algorithm: "ES256", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: es.Public, KeyID: "eddsa-alg-on-ec", Algorithm: "EdDSA", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "es256-on-p384", Algorithm: "ES256", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: &rsa1024.PublicKey, KeyID: "rsa-1024", Algorithm: "RS256", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct", Algorithm: "HS256", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: es.Public, KeyID: "alg-none", Algorithm: "none", Use: "sig"}),
		jwkString(t, jose.JSONWebKey{Key: es.Public, KeyID: "alg-es384", Algorithm: "ES384", Use: "sig"}),
		// Members go-jose cannot decode: ignored, not fatal (RFC 7517 §5).
		`{"kty":"AKP","alg":"ML-DSA-44","kid":"post-quantum","pub":"AAAA"}`,
		`{"kty":"EC","crv":"secp256k1","alg":"ES256K","kid":"k1","x":"AAAA","y":"AAAA"}`,
		`{"kty":"EC","crv":"P-256","alg":"ES256","kid":"not-on-curve","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`,
	}
	set, err := verify.ParseJWKS([]byte(`{"keys":[` + strings.Join(members, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for kid := range set {
		got = append(got, kid)
	}
	sort.Strings(got)
	want := []string{"good-ed-no-use", "good-es", "good-ps", "good-rs"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("kept %v, want %v", got, want)
	}

	// Served through the cache, the ignored kids are not found either.
	srv := newJWKSServer(t, []byte(`{"keys":[`+strings.Join(members, ",")+`]}`))
	now := t0
	j := cache(srv, &now)
	for _, kid := range []string{"no-alg", "use-enc", "private-ec", "es-alg-on-rsa", "rsa-1024", "oct", "alg-none"} {
		if _, _, err := j.Lookup(context.Background(), kid); err == nil {
			t.Errorf("Lookup(%s) found an ignored key", kid)
		}
	}
	if _, alg, err := j.Lookup(context.Background(), "good-ps"); err != nil || alg != "PS256" {
		t.Errorf("Lookup(good-ps) = %s, %v", alg, err)
	}

	for _, bad := range []string{`not json`, `{"keys":{}}`, `[`} {
		if _, err := verify.ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("ParseJWKS(%q) succeeded", bad)
		}
	}
}

func TestKeySetLookup(t *testing.T) {
	iss := getIssuer(t)
	es, ed := iss.key(t, "ES256"), iss.key(t, "EdDSA")
	one := verify.KeySet{"a": {Public: es.Public, Alg: "ES256"}}
	two := verify.KeySet{"a": {Public: es.Public, Alg: "ES256"}, "b": {Public: ed.Public, Alg: "EdDSA"}}
	ctx := context.Background()
	tests := []struct {
		name string
		set  verify.KeySet
		kid  string
		want string // alg; empty: not found
	}{
		{"by kid", two, "b", "EdDSA"},
		{"unknown kid", two, "c", ""},
		{"empty kid, one key", one, "", "ES256"},
		{"empty kid, two keys", two, "", ""},
		{"empty set", verify.KeySet{}, "", ""},
		{"kid of another set", one, "b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, alg, err := tt.set.Lookup(ctx, tt.kid)
			if tt.want == "" {
				if err == nil {
					t.Errorf("Lookup(%q) = %s, want not found", tt.kid, alg)
				}
				return
			}
			if err != nil || alg != tt.want {
				t.Errorf("Lookup(%q) = %s, %v; want %s", tt.kid, alg, err, tt.want)
			}
		})
	}
}

// TestVerifierWithJWKS is the resource server's setup end to end: tokens
// verify against the fetched set, and forged kids cost one fetch at most.
func TestVerifierWithJWKS(t *testing.T) {
	iss := getIssuer(t)
	srv := newJWKSServer(t, iss.set.JWKS())
	now := t0
	v := &verify.Verifier{Keys: cache(srv, &now), Issuer: testIssuer, Audience: testAudience, Now: func() time.Time { return now }}
	ctx := context.Background()
	for _, alg := range keys.Algorithms {
		if _, err := v.Verify(ctx, iss.mint(t, alg, token.TypeAccess, nil)); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
	forger := foreignKey(t, "ES256")
	payload, _ := json.Marshal(claims())
	for i := range 20 {
		raw := craft(t, "ES256", forger, hdr("ES256", fmt.Sprintf("forged-%d", i), "at+jwt"), payload)
		if _, err := v.Verify(ctx, raw); !errors.Is(err, verify.ErrInvalid) {
			t.Fatalf("forged token: %v", err)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("%d fetches, want 1", got)
	}
}

// TestJWKSConcurrent exercises Lookup from many goroutines (run with
// -race).
func TestJWKSConcurrent(t *testing.T) {
	iss := getIssuer(t)
	srv := newJWKSServer(t, iss.set.JWKS())
	j := &verify.JWKS{URL: srv.URL, Client: srv.Client()}
	var kids []string
	for _, alg := range keys.Algorithms {
		kids = append(kids, iss.key(t, alg).ID)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 20 {
				kid := kids[(i+n)%len(kids)]
				if n%5 == 0 {
					kid = "unknown"
				}
				j.Lookup(context.Background(), kid)
			}
		}()
	}
	wg.Wait()
	if got := srv.hits.Load(); got < 1 || got > 2 {
		t.Errorf("%d fetches from concurrent lookups, want 1 (2 if the test straddles MinRefresh)", got)
	}
}

func TestDiscover(t *testing.T) {
	var issuer string
	var doc atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(doc.Load().(string)))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	issuer = srv.URL
	ctx := context.Background()

	good := fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q,"token_endpoint":%q}`, issuer, issuer+"/jwks", issuer+"/token")
	doc.Store(good)
	md, err := verify.Discover(ctx, srv.Client(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	if md.Issuer != issuer || md.JWKSURI != issuer+"/jwks" || md.TokenEndpoint != issuer+"/token" {
		t.Errorf("metadata %+v", md)
	}

	tests := []struct {
		name   string
		doc    string
		issuer string // empty: the server's
	}{
		{"another issuer", fmt.Sprintf(`{"issuer":"https://evil.example","jwks_uri":%q}`, issuer+"/jwks"), ""},
		{"issuer with trailing slash", fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q}`, issuer+"/", issuer+"/jwks"), ""},
		{"asked with trailing slash", good, issuer + "/"},
		{"no issuer", fmt.Sprintf(`{"jwks_uri":%q}`, issuer+"/jwks"), ""},
		{"no jwks_uri", fmt.Sprintf(`{"issuer":%q}`, issuer), ""},
		{"not JSON", `<html>`, ""},
		{"wrong path", good, issuer + "/tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc.Store(tt.doc)
			want := tt.issuer
			if want == "" {
				want = issuer
			}
			if md, err := verify.Discover(ctx, srv.Client(), want); err == nil {
				t.Errorf("Discover = %+v, want an error", md)
			}
		})
	}
}

// TestDiscoverIssuerWithPath: RFC 8414 §3.1 puts the well-known suffix
// between the host and the issuer's path.
func TestDiscoverIssuerWithPath(t *testing.T) {
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server/tenant-a", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, issuer, issuer+"/jwks")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	issuer = srv.URL + "/tenant-a"
	md, err := verify.Discover(context.Background(), srv.Client(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	if md.Issuer != issuer || md.JWKSURI != issuer+"/jwks" {
		t.Errorf("metadata %+v", md)
	}
}

func jwkString(tb testing.TB, k jose.JSONWebKey) string {
	tb.Helper()
	b, err := k.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func jwksOf(tb testing.TB, ks ...jose.JSONWebKey) []byte {
	tb.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: ks})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestJWKSSlowIssuer: with an issuer that takes 300 ms per response, known
// kids are answered at once from the cached set while it is refreshed, and
// concurrent lookups of an unknown kid share one fetch: at most one fetch
// is ever in flight.
func TestJWKSSlowIssuer(t *testing.T) {
	iss := getIssuer(t)
	es := iss.key(t, "ES256")
	var inflight, most, hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if hits.Add(1) > 1 {
			time.Sleep(300 * time.Millisecond)
		}
		w.Header().Set("Cache-Control", "max-age=0")
		w.Write(iss.set.JWKS())
	}))
	defer srv.Close()
	j := &verify.JWKS{URL: srv.URL, Client: srv.Client(), MinRefresh: time.Millisecond}
	ctx := context.Background()
	if _, _, err := j.Lookup(ctx, es.ID); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var slowest atomic.Int64
	for range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			start := time.Now()
			if _, _, err := j.Lookup(ctx, es.ID); err != nil {
				t.Errorf("known kid: %v", err)
			}
			if d := int64(time.Since(start)); d > slowest.Load() {
				slowest.Store(d)
			}
		}()
		go func() {
			defer wg.Done()
			j.Lookup(ctx, "forged-kid")
		}()
	}
	wg.Wait()
	if d := time.Duration(slowest.Load()); d > 100*time.Millisecond {
		t.Errorf("a known kid waited %s for a slow issuer", d)
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d fetches in flight at once, want 1", m)
	}
}
