package statuslist

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
)

// TokenType is the typ of a Status List Token (§5.1) and, with the
// application/ prefix, its media type.
const TokenType = "statuslist+jwt"

// MediaType is the Content-Type of a served Status List Token (§8.1).
const MediaType = "application/" + TokenType

// Publisher defaults and limits.
const (
	DefaultTTL = 10 * time.Second
	// Validity is how long a Status List Token is valid (exp - iat): how
	// long a relying party configured to fail open may keep using its
	// copy while the issuer cannot be reached.
	Validity = time.Hour
)

// Publisher builds signed Status List Tokens from the store and caches
// each until its list changes or half its ttl has passed. Set the fields
// before the first Token; it is safe for concurrent use afterwards.
type Publisher struct {
	Store sigil.StatusListStore
	Keys  *keys.Set
	// Alg is the signing algorithm; empty means keys.DefaultAlg.
	Alg string
	// Issuer is the iss of the tokens.
	Issuer string
	// BaseURI is the lists' URI prefix, as for Allocator.
	BaseURI string
	// TTL is the ttl claim: how long relying parties cache a list; zero
	// means DefaultTTL.
	TTL time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	buildMu sync.Mutex // held while building
	mu      sync.Mutex // guards cache
	cache   map[int64]published
}

type published struct {
	version int64
	iat     time.Time
	jwt     string
}

// URI returns list id's URI.
func (p *Publisher) URI(id int64) string { return p.BaseURI + strconv.FormatInt(id, 10) }

// Token returns the signed Status List Token of list id. An unknown list
// is sigil.ErrNotFound.
func (p *Publisher) Token(ctx context.Context, id int64) (string, error) {
	version, err := p.Store.StatusListVersion(ctx, id)
	if err != nil {
		return "", err
	}
	now := p.now()
	if jwt, ok := p.cached(id, version, now); ok {
		return jwt, nil
	}
	// One build at a time: relying parties asking at once after a change
	// wait for one build (milliseconds for a large list) instead of each
	// making their own.
	p.buildMu.Lock()
	defer p.buildMu.Unlock()
	if jwt, ok := p.cached(id, version, now); ok {
		return jwt, nil
	}
	jwt, version, err := p.build(ctx, id, now)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	if p.cache == nil {
		p.cache = map[int64]published{}
	}
	p.cache[id] = published{version: version, iat: now, jwt: jwt}
	p.mu.Unlock()
	return jwt, nil
}

// cached returns the cached token of list id if it is of version and
// younger than half the ttl.
func (p *Publisher) cached(id, version int64, now time.Time) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.cache[id]
	if ok && c.version == version && now.Sub(c.iat) < p.ttl()/2 {
		return c.jwt, true
	}
	return "", false
}

// build reads list id and signs its token.
func (p *Publisher) build(ctx context.Context, id int64, now time.Time) (string, int64, error) {
	l, entries, err := p.Store.StatusList(ctx, id)
	if err != nil {
		return "", 0, err
	}
	bits, err := New(1, l.Size)
	if err != nil {
		return "", 0, err
	}
	for _, e := range entries {
		if err := bits.Set(int(e.Index), e.Status); err != nil {
			return "", 0, fmt.Errorf("statuslist: list %d: %w", id, err)
		}
	}
	lst, err := bits.Encode()
	if err != nil {
		return "", 0, err
	}
	alg := p.Alg
	if alg == "" {
		alg = keys.DefaultAlg
	}
	k, err := p.Keys.Active(alg)
	if err != nil {
		return "", 0, fmt.Errorf("statuslist: sign list %d: %w", id, err)
	}
	claims := &token.Claims{
		Issuer:   p.Issuer,
		Subject:  p.URI(id),
		IssuedAt: token.NewNumericDate(now),
		Expiry:   token.NewNumericDate(now.Add(Validity)),
		Extra:    map[string]any{"ttl": int64(p.ttl().Seconds()), "status_list": lst},
	}
	jwt, err := token.Sign(k, TokenType, claims)
	if err != nil {
		return "", 0, fmt.Errorf("statuslist: sign list %d: %w", id, err)
	}
	return jwt, l.Version, nil
}

func (p *Publisher) ttl() time.Duration {
	if p.TTL > 0 {
		return p.TTL
	}
	return DefaultTTL
}

// Lists returns the URIs of every list, for the aggregation endpoint
// (§9).
func (p *Publisher) Lists(ctx context.Context) ([]string, error) {
	ls, err := p.Store.StatusLists(ctx)
	if err != nil {
		return nil, err
	}
	uris := make([]string, len(ls))
	for i, l := range ls {
		uris[i] = p.URI(l.ID)
	}
	return uris, nil
}

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}
