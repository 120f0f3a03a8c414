package keys

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/sigil-sts/sigil"
)

// Key is a loaded key: public half always, private half for keys this
// process may sign with.
type Key struct {
	ID        string
	Alg       string
	State     sigil.KeyState
	CreatedAt time.Time
	RetiredAt time.Time
	Public    crypto.PublicKey
	// Signer is the private key; nil when the key was loaded public-only.
	Signer crypto.Signer

	signerMu sync.Mutex
	signers  map[string]jose.Signer
}

// Set is the issuer's view of its signing keys, loaded from the store and
// refreshed by Refresh. Reads (Active, Lookup, JWKS) are lock-free and safe
// for concurrent use; Refresh, Init and Rotate may run concurrently with
// them.
type Set struct {
	// Store persists the keys.
	Store sigil.KeyStore
	// Sealer seals new private keys and, with LoadPrivate, opens stored
	// ones.
	Sealer *Sealer
	// LoadPrivate decrypts private keys into memory so the set can sign.
	// Only a serving node sets it; CLI commands publish and rotate keys
	// without ever holding a private key in clear.
	LoadPrivate bool
	// Prepublish is how long a new key is published before it signs.
	// Zero promotes new keys at the next Refresh (tests only).
	Prepublish time.Duration
	// RetainRetired is how long a retired key stays published: at least
	// the longest token lifetime plus the verification leeway.
	RetainRetired time.Duration
	// Lifecycle lets Refresh promote and delete keys. Servers set it; CLI
	// commands do not, so a command run with other settings than the
	// servers' can never activate a key early or drop one too soon.
	Lifecycle bool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	snap atomic.Pointer[snapshot]
	mu   sync.Mutex // serialises Refresh
}

type snapshot struct {
	byID   map[string]*Key
	active map[string]*Key // by alg
	jwks   []byte
	keys   []*Key // oldest first
}

func (s *Set) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Init makes sure an active key exists for every algorithm in algs (on a
// new store: the first start) and loads the set. A key created here is
// active at once: with no active key of that algorithm nothing could be
// signed with it, and a next key waiting for its pre-publication delay
// does not change that.
func (s *Set) Init(ctx context.Context, algs ...string) error {
	stored, err := s.Store.Keys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load: %w", err)
	}
	for _, alg := range algs {
		has := false
		for _, k := range stored {
			if k.Alg == alg && k.State == sigil.KeyActive {
				has = true
			}
		}
		if !has {
			// ErrConflict: another process starting on the same new store
			// created the active key first (one active key per algorithm).
			if _, err := s.create(ctx, alg, sigil.KeyActive); err != nil && !errors.Is(err, sigil.ErrConflict) {
				return err
			}
		}
	}
	return s.Refresh(ctx)
}

// Rotate adds a new key for alg in state next and returns it. It becomes
// active after the pre-publication delay.
func (s *Set) Rotate(ctx context.Context, alg string) (*sigil.SigningKey, error) {
	k, err := s.create(ctx, alg, sigil.KeyNext)
	if err != nil {
		return nil, err
	}
	return k, s.Refresh(ctx)
}

func (s *Set) create(ctx context.Context, alg string, state sigil.KeyState) (*sigil.SigningKey, error) {
	priv, err := Generate(alg)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("keys: marshal public key: %w", err)
	}
	der, err := marshalPrivate(priv)
	if err != nil {
		return nil, err
	}
	kid := newKID()
	k := &sigil.SigningKey{
		ID:        kid,
		Alg:       alg,
		State:     state,
		Public:    pub,
		Sealed:    s.Sealer.Seal(kid, der),
		CreatedAt: s.now().UTC(),
	}
	if err := s.Store.CreateKey(ctx, k); err != nil {
		return nil, fmt.Errorf("keys: store new %s key: %w", alg, err)
	}
	return k, nil
}

// newKID returns 128 random bits, base64url: opaque, and safe to use in a
// URL or a file name.
func newKID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Refresh reloads the keys from the store and publishes the new set. With
// Lifecycle set it first promotes next keys whose pre-publication delay
// has passed and deletes retired keys past their retention. Servers call it periodically and
// whenever the store reports a change, so a rotation made by the CLI or
// another node is picked up without restart.
func (s *Set) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	stored, err := s.Store.Keys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load: %w", err)
	}
	changed := false
	for _, k := range stored {
		if !s.Lifecycle {
			break
		}
		switch {
		case k.State == sigil.KeyNext && !now.Before(k.CreatedAt.Add(s.Prepublish)):
			if err := s.Store.PromoteKey(ctx, k.ID, now); err != nil && !errors.Is(err, sigil.ErrConflict) {
				return fmt.Errorf("keys: promote %s: %w", k.ID, err)
			}
			changed = true
		case k.State == sigil.KeyRetired && now.After(k.RetiredAt.Add(s.RetainRetired)):
			if err := s.Store.DeleteKey(ctx, k.ID); err != nil && !errors.Is(err, sigil.ErrNotFound) {
				return fmt.Errorf("keys: delete retired %s: %w", k.ID, err)
			}
			changed = true
		}
	}
	if changed {
		if stored, err = s.Store.Keys(ctx); err != nil {
			return fmt.Errorf("keys: reload: %w", err)
		}
	}
	return s.publish(stored)
}

func (s *Set) publish(stored []*sigil.SigningKey) error {
	old := s.snap.Load()
	next := &snapshot{byID: map[string]*Key{}, active: map[string]*Key{}}
	var jwks jose.JSONWebKeySet
	for _, sk := range stored {
		k, err := s.load(old, sk)
		if err != nil {
			return err
		}
		next.byID[k.ID] = k
		next.keys = append(next.keys, k)
		if k.State == sigil.KeyActive {
			// Two active keys of one algorithm only exist transiently; the
			// newest wins.
			if cur := next.active[k.Alg]; cur == nil || k.CreatedAt.After(cur.CreatedAt) {
				next.active[k.Alg] = k
			}
		}
		jwks.Keys = append(jwks.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
	}
	sort.SliceStable(next.keys, func(i, j int) bool { return next.keys[i].CreatedAt.Before(next.keys[j].CreatedAt) })
	b, err := json.Marshal(jwks)
	if err != nil {
		return fmt.Errorf("keys: encode JWKS: %w", err)
	}
	next.jwks = b
	s.snap.Store(next)
	return nil
}

// load turns a stored key into a Key, reusing the decrypted key from the
// previous snapshot when the kid is known.
func (s *Set) load(old *snapshot, sk *sigil.SigningKey) (*Key, error) {
	if old != nil {
		if k, ok := old.byID[sk.ID]; ok && (k.Signer != nil || !s.LoadPrivate) {
			if k.State == sk.State && k.RetiredAt.Equal(sk.RetiredAt) {
				return k, nil
			}
			c := &Key{ID: k.ID, Alg: k.Alg, State: sk.State, CreatedAt: k.CreatedAt, RetiredAt: sk.RetiredAt, Public: k.Public, Signer: k.Signer}
			return c, nil
		}
	}
	pub, err := x509.ParsePKIXPublicKey(sk.Public)
	if err != nil {
		return nil, fmt.Errorf("keys: parse public key %s: %w", sk.ID, err)
	}
	if err := CheckPublic(sk.Alg, pub); err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", sk.ID, err)
	}
	k := &Key{ID: sk.ID, Alg: sk.Alg, State: sk.State, CreatedAt: sk.CreatedAt, RetiredAt: sk.RetiredAt, Public: pub}
	if s.LoadPrivate && s.Sealer != nil && len(sk.Sealed) > 0 {
		der, err := s.Sealer.Open(sk.ID, sk.Sealed)
		if err != nil {
			return nil, err
		}
		if k.Signer, err = parsePrivate(sk.Alg, der); err != nil {
			return nil, fmt.Errorf("keys: key %s: %w", sk.ID, err)
		}
	}
	return k, nil
}

// Active returns the key that signs with alg now.
func (s *Set) Active(alg string) (*Key, error) {
	snap := s.snap.Load()
	if snap == nil {
		return nil, errors.New("keys: set not loaded")
	}
	k := snap.active[alg]
	if k == nil || k.Signer == nil {
		return nil, fmt.Errorf("keys: no active %s key", alg)
	}
	return k, nil
}

// Lookup returns a published key (next, active or retired) by kid. It
// implements the verify package's key source for the issuer itself.
func (s *Set) Lookup(_ context.Context, kid string) (crypto.PublicKey, string, error) {
	snap := s.snap.Load()
	if snap == nil {
		return nil, "", errors.New("keys: set not loaded")
	}
	k, ok := snap.byID[kid]
	if !ok {
		return nil, "", fmt.Errorf("keys: unknown kid")
	}
	return k.Public, k.Alg, nil
}

// Keys returns the loaded keys, oldest first.
func (s *Set) Keys() []*Key {
	snap := s.snap.Load()
	if snap == nil {
		return nil
	}
	return snap.keys
}

// JWKS returns the public JWK Set as JSON: kid, kty, alg, use and the
// public parameters of every published key, never a private member.
func (s *Set) JWKS() []byte {
	snap := s.snap.Load()
	if snap == nil {
		return []byte(`{"keys":[]}`)
	}
	return snap.jwks
}

// JWKSMaxAge is how long clients may cache the JWKS: half the
// pre-publication delay, at most five minutes, so a client that fetched the
// set just before a rotation refreshes it before the new key signs.
func (s *Set) JWKSMaxAge() time.Duration {
	return min(s.Prepublish/2, 5*time.Minute)
}

// SignerFor returns a go-jose signer for k that sets typ in the protected
// header, created once per key and typ.
func (k *Key) SignerFor(typ string) (jose.Signer, error) {
	k.signerMu.Lock()
	defer k.signerMu.Unlock()
	if s, ok := k.signers[typ]; ok {
		return s, nil
	}
	if k.Signer == nil {
		return nil, fmt.Errorf("keys: key %s has no private half", k.ID)
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(k.Alg),
		Key:       jose.JSONWebKey{Key: k.Signer, KeyID: k.ID, Algorithm: k.Alg},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for %s: %w", k.ID, err)
	}
	if k.signers == nil {
		k.signers = map[string]jose.Signer{}
	}
	k.signers[typ] = s
	return s, nil
}

// OpenSigner decrypts a stored key's private half with sealer. It fails for
// a key not sealed under sealer's master key.
func OpenSigner(sealer *Sealer, sk *sigil.SigningKey) (crypto.Signer, error) {
	der, err := sealer.Open(sk.ID, sk.Sealed)
	if err != nil {
		return nil, err
	}
	return parsePrivate(sk.Alg, der)
}

// SamePublic reports whether two public keys are equal.
func SamePublic(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
