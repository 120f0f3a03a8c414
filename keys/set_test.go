package keys_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	prepublish = time.Hour
	retain     = 2 * time.Hour
)

func newSet(tb testing.TB, store sigil.KeyStore, clk *clock, lifecycle bool) *keys.Set {
	tb.Helper()
	return &keys.Set{
		Store:         store,
		Sealer:        keys.NewSealer(masterKey(tb, 1)),
		Prepublish:    prepublish,
		RetainRetired: retain,
		Lifecycle:     lifecycle,
		LoadPrivate:   true,
		Now:           clk.Now,
	}
}

// TestSetPublicOnly: without LoadPrivate (every CLI command) the set
// publishes and rotates keys but never decrypts one, so it cannot sign.
func TestSetPublicOnly(t *testing.T) {
	ctx := context.Background()
	store, clk := newStore(t), &clock{t: t0}
	s := newSet(t, store, clk, false)
	s.LoadPrivate = false
	if err := s.Init(ctx, "ES256", "RS256"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, "ES256"); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.Keys() {
		if k.Signer != nil {
			t.Errorf("key %s (%s) was decrypted", k.ID, k.Alg)
		}
	}
	if _, err := s.Active("ES256"); err == nil {
		t.Error("a public-only set offers a signing key")
	}
	if n := len(publishedKeys(t, s)); n != 3 {
		t.Errorf("JWKS has %d keys, want 3", n)
	}
	// The same store loaded by a serving node signs.
	srv := newSet(t, store, clk, false)
	if err := srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if k, err := srv.Active("ES256"); err != nil || k.Signer == nil {
		t.Errorf("serving set: %v", err)
	}
}

// publishedKey is one member of a JWK Set as published, private members included
// so a test can see them if they ever appear.
type publishedKey map[string]any

func publishedKeys(tb testing.TB, s *keys.Set) map[string]publishedKey {
	tb.Helper()
	var set struct {
		Keys []publishedKey `json:"keys"`
	}
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		tb.Fatalf("JWKS is not JSON: %v\n%s", err, s.JWKS())
	}
	out := map[string]publishedKey{}
	for _, k := range set.Keys {
		kid, _ := k["kid"].(string)
		if _, dup := out[kid]; dup {
			tb.Errorf("kid %q published twice", kid)
		}
		out[kid] = k
	}
	return out
}

func kids(m map[string]publishedKey) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestSetInit(t *testing.T) {
	ctx := context.Background()
	store, clk := newStore(t), &clock{t: t0}
	s := newSet(t, store, clk, true)
	if _, err := s.Active("ES256"); err == nil {
		t.Error("Active before Init succeeded")
	}
	if got := string(s.JWKS()); got != `{"keys":[]}` {
		t.Errorf("JWKS before Init = %s", got)
	}
	if err := s.Init(ctx, keys.Algorithms...); err != nil {
		t.Fatal(err)
	}
	stored, _ := store.Keys(ctx)
	if len(stored) != len(keys.Algorithms) {
		t.Fatalf("Init stored %d keys, want one per algorithm (%d)", len(stored), len(keys.Algorithms))
	}
	for _, alg := range keys.Algorithms {
		k, err := s.Active(alg)
		if err != nil {
			t.Fatalf("Active(%s): %v", alg, err)
		}
		if k.Alg != alg || k.State != sigil.KeyActive || k.Signer == nil {
			t.Errorf("Active(%s) = %+v", alg, k)
		}
		pub, gotAlg, err := s.Lookup(ctx, k.ID)
		if err != nil || gotAlg != alg || keys.CheckPublic(alg, pub) != nil {
			t.Errorf("Lookup(%s) = %T, %q, %v", k.ID, pub, gotAlg, err)
		}
	}
	for _, sk := range stored {
		if sk.State != sigil.KeyActive || !sk.CreatedAt.Equal(t0) {
			t.Errorf("stored key %s: state %s created %v", sk.ID, sk.State, sk.CreatedAt)
		}
		der, err := x509.MarshalPKCS8PrivateKey(mustActive(t, s, sk.Alg).Signer)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sk.Sealed, der) || bytes.Contains(sk.Sealed, der[len(der)-32:]) {
			t.Errorf("key %s is stored in clear", sk.ID)
		}
	}
	if n := len(publishedKeys(t, s)); n != len(keys.Algorithms) {
		t.Errorf("JWKS has %d keys, want %d", n, len(keys.Algorithms))
	}

	// A second Init (the next start) creates nothing.
	if err := newSet(t, store, clk, true).Init(ctx, keys.Algorithms...); err != nil {
		t.Fatal(err)
	}
	if again, _ := store.Keys(ctx); len(again) != len(stored) {
		t.Errorf("second Init stored %d keys, want %d", len(again), len(stored))
	}
}

// TestSetInitNextOnly: a store holding only a next key for an algorithm
// (a rotation made before any key was active) still gets an active key,
// since nothing could be signed otherwise.
func TestSetInitNextOnly(t *testing.T) {
	ctx := context.Background()
	store, clk := newStore(t), &clock{t: t0}
	if _, err := newSet(t, store, clk, false).Rotate(ctx, "ES256"); err != nil {
		t.Fatal(err)
	}
	s := newSet(t, store, clk, false)
	if err := s.Init(ctx, "ES256"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Active("ES256"); err != nil {
		t.Fatalf("no active ES256 key after Init with only a next key: %v", err)
	}
}

func mustActive(tb testing.TB, s *keys.Set, alg string) *keys.Key {
	tb.Helper()
	k, err := s.Active(alg)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestSetLifecycle walks one ES256 key through next → active → retired →
// deleted on an injected clock, checking what signs, what is published
// and what verifies at each step.
func TestSetLifecycle(t *testing.T) {
	ctx := context.Background()
	store, clk := newStore(t), &clock{t: t0}
	s := newSet(t, store, clk, true)
	if err := s.Init(ctx, "ES256"); err != nil {
		t.Fatal(err)
	}
	old := mustActive(t, s, "ES256")
	oldTok := signAccess(t, old)

	clk.Advance(10 * time.Minute)
	next, err := s.Rotate(ctx, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	if next.State != sigil.KeyNext || !next.CreatedAt.Equal(clk.Now()) {
		t.Errorf("Rotate returned %+v", next)
	}
	if got := kids(publishedKeys(t, s)); !cmp.Equal(got, sorted([]string{next.ID, old.ID})) {
		t.Errorf("JWKS after Rotate = %v, want old and next", got)
	}
	if a := mustActive(t, s, "ES256"); a.ID != old.ID {
		t.Errorf("Active after Rotate = %s, want the old key %s", a.ID, old.ID)
	}
	if _, _, err := s.Lookup(ctx, next.ID); err != nil {
		t.Errorf("next key not found by Lookup: %v", err)
	}

	// One second before the pre-publication delay ends: nothing moves.
	clk.Advance(prepublish - time.Second)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if a := mustActive(t, s, "ES256"); a.ID != old.ID {
		t.Errorf("key promoted %s before its pre-publication delay", a.ID)
	}

	// The delay has passed: Refresh promotes next and retires old.
	clk.Advance(time.Second)
	promotedAt := clk.Now()
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if a := mustActive(t, s, "ES256"); a.ID != next.ID {
		t.Errorf("Active after the delay = %s, want %s", a.ID, next.ID)
	}
	if diff := cmp.Diff(map[string]sigil.KeyState{old.ID: sigil.KeyRetired, next.ID: sigil.KeyActive}, states(t, store)); diff != "" {
		t.Errorf("stored states (-want +got):\n%s", diff)
	}
	if got := kids(publishedKeys(t, s)); !cmp.Equal(got, sorted([]string{next.ID, old.ID})) {
		t.Errorf("JWKS after promotion = %v, want both keys (the retired one still verifies)", got)
	}
	for _, k := range s.Keys() {
		if k.ID == old.ID && (k.State != sigil.KeyRetired || !k.RetiredAt.Equal(promotedAt)) {
			t.Errorf("old key: state %s retired %v, want retired at %v", k.State, k.RetiredAt, promotedAt)
		}
	}
	if _, _, err := token.Parse(ctx, oldTok, s); err != nil {
		t.Errorf("token of the retired key no longer verifies: %v", err)
	}
	newTok := signAccess(t, mustActive(t, s, "ES256"))
	if h, _, err := token.Parse(ctx, newTok, s); err != nil || h.KID != next.ID {
		t.Errorf("token of the new key: %+v, %v", h, err)
	}

	// At the end of retention the retired key is still there ...
	clk.Advance(retain)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := publishedKeys(t, s)[old.ID]; !ok {
		t.Error("retired key removed at, not after, the end of retention")
	}
	// ... and one second later it is gone from the store, JWKS and Lookup.
	clk.Advance(time.Second)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kids(publishedKeys(t, s)); !cmp.Equal(got, []string{next.ID}) {
		t.Errorf("JWKS after retention = %v, want only %s", got, next.ID)
	}
	if _, _, err := s.Lookup(ctx, old.ID); err == nil {
		t.Error("deleted key still found by Lookup")
	}
	if _, _, err := token.Parse(ctx, oldTok, s); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("token of the deleted key: %v, want ErrInvalid", err)
	}
	if diff := cmp.Diff(map[string]sigil.KeyState{next.ID: sigil.KeyActive}, states(t, store)); diff != "" {
		t.Errorf("stored states (-want +got):\n%s", diff)
	}
}

// TestSetWithoutLifecycle: a Set with Lifecycle false (the CLI) loads and
// publishes, but never promotes or deletes, however late it runs.
func TestSetWithoutLifecycle(t *testing.T) {
	ctx := context.Background()
	store, clk := newStore(t), &clock{t: t0}
	server := newSet(t, store, clk, true)
	if err := server.Init(ctx, "ES256"); err != nil {
		t.Fatal(err)
	}
	first := mustActive(t, server, "ES256")
	if _, err := server.Rotate(ctx, "ES256"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(prepublish)
	if err := server.Refresh(ctx); err != nil { // first is now retired
		t.Fatal(err)
	}
	third, err := server.Rotate(ctx, "ES256") // a next key
	if err != nil {
		t.Fatal(err)
	}
	before := states(t, store)
	if before[first.ID] != sigil.KeyRetired || before[third.ID] != sigil.KeyNext {
		t.Fatalf("setup: states %v", before)
	}

	cli := newSet(t, store, clk, false)
	for _, d := range []time.Duration{0, prepublish, 100 * (prepublish + retain)} {
		clk.Advance(d)
		if err := cli.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, states(t, store)); diff != "" {
			t.Fatalf("Refresh with Lifecycle=false at +%v changed the store (-before +after):\n%s", d, diff)
		}
		if n := len(publishedKeys(t, cli)); n != 3 {
			t.Errorf("JWKS has %d keys, want 3", n)
		}
	}
	if _, err := cli.Rotate(ctx, "ES256"); err != nil {
		t.Fatal(err)
	}
	if a := mustActive(t, cli, "ES256"); a.ID == third.ID {
		t.Error("Lifecycle=false promoted a key")
	}
}

func TestJWKSMaxAge(t *testing.T) {
	tests := []struct {
		prepublish, want time.Duration
	}{
		{0, 0},
		{2 * time.Minute, time.Minute},
		{10 * time.Minute, 5 * time.Minute},
		{11 * time.Minute, 5 * time.Minute},
		{24 * time.Hour, 5 * time.Minute},
		{9 * time.Minute, 4*time.Minute + 30*time.Second},
	}
	for _, tt := range tests {
		s := &keys.Set{Prepublish: tt.prepublish}
		if got := s.JWKSMaxAge(); got != tt.want {
			t.Errorf("JWKSMaxAge with Prepublish %v = %v, want %v", tt.prepublish, got, tt.want)
		}
		// The invariant the package doc states: a client caching for
		// JWKSMaxAge refreshes before a next key can sign.
		if tt.prepublish > 0 && 2*s.JWKSMaxAge() > tt.prepublish {
			t.Errorf("Prepublish %v: max-age %v is more than half of it", tt.prepublish, s.JWKSMaxAge())
		}
	}
}

// TestSetSealing: the sealed key is bound to its kid and master key.
func TestSetSealing(t *testing.T) {
	ctx := context.Background()
	store, clk := newStore(t), &clock{t: t0}
	if err := newSet(t, store, clk, true).Init(ctx, "ES256", "EdDSA"); err != nil {
		t.Fatal(err)
	}

	wrong := newSet(t, store, clk, false)
	wrong.Sealer = keys.NewSealer(masterKey(t, 2))
	if err := wrong.Refresh(ctx); err == nil {
		t.Error("a Set with another master key loaded the keys")
	}

	publicOnly := newSet(t, store, clk, false)
	publicOnly.Sealer = nil
	if err := publicOnly.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := publicOnly.Active("ES256"); err == nil {
		t.Error("a Set without a Sealer offers a signing key")
	}
	if n := len(publishedKeys(t, publicOnly)); n != 2 {
		t.Errorf("public-only JWKS has %d keys", n)
	}

	// Copy the keys into another store with their sealed private keys
	// swapped between the two kids.
	stored, err := store.Keys(ctx)
	if err != nil || len(stored) != 2 {
		t.Fatalf("stored keys: %d, %v", len(stored), err)
	}
	stored[0].Sealed, stored[1].Sealed = stored[1].Sealed, stored[0].Sealed
	swapped := newStore(t)
	for _, k := range stored {
		if err := swapped.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := newSet(t, swapped, clk, false).Refresh(ctx); err == nil {
		t.Error("sealed keys swapped between kids were loaded")
	}
}

func TestSetStoreErrors(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	store, clk := failingStore{boom}, &clock{t: t0}
	s := newSet(t, store, clk, true)
	if err := s.Init(ctx, "ES256"); !errors.Is(err, boom) {
		t.Errorf("Init = %v, want the store error", err)
	}
	if _, err := s.Rotate(ctx, "ES256"); !errors.Is(err, boom) {
		t.Errorf("Rotate = %v, want the store error", err)
	}
	if _, err := newSet(t, newStore(t), clk, true).Rotate(ctx, "HS256"); err == nil {
		t.Error("Rotate(HS256) succeeded")
	}
}

func TestSignerFor(t *testing.T) {
	ctx := context.Background()
	store, clk := newStore(t), &clock{t: t0}
	s := newSet(t, store, clk, true)
	if err := s.Init(ctx, "ES256"); err != nil {
		t.Fatal(err)
	}
	k := mustActive(t, s, "ES256")
	a, err := k.SignerFor(token.TypeAccess)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := k.SignerFor(token.TypeAccess); b != a {
		t.Error("SignerFor does not reuse the signer for one typ")
	}
	if c, _ := k.SignerFor("JWT"); c == a {
		t.Error("SignerFor shares a signer across typ values")
	}
	pub := &keys.Key{ID: "p", Alg: "ES256", Public: k.Public}
	if _, err := pub.SignerFor(token.TypeAccess); err == nil {
		t.Error("SignerFor on a public-only key succeeded")
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func signAccess(tb testing.TB, k *keys.Key) string {
	tb.Helper()
	raw, err := token.Sign(k, token.TypeAccess, &token.Claims{Issuer: "https://sigil.example", JTI: "j"})
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}
