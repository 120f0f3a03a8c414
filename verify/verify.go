package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sigil-sts/sigil/token"
)

// DefaultLeeway is the clock skew Verifier tolerates on exp, nbf and iat
// when Leeway is zero.
const DefaultLeeway = 30 * time.Second

// ErrInvalid is wrapped by every error Verify returns: a resource server
// answers it with RFC 6750 invalid_token, the issuer's introspection with
// active=false.
var ErrInvalid = token.ErrInvalid

// Verifier checks access tokens. Set the fields before first use; it is
// safe for concurrent use afterwards.
type Verifier struct {
	// Keys finds verification keys by kid.
	Keys token.KeySource
	// Issuer is the exact expected iss (RFC 9068 §4: exact string match).
	Issuer string
	// Audience must be one of the token's aud values. It is required unless
	// IgnoreAudience is set.
	Audience string
	// IgnoreAudience skips the audience check. Only the issuer sets it, for
	// introspection, where the caller's own rules decide.
	IgnoreAudience bool
	// Type is the expected typ header; empty means token.TypeAccess.
	Type string
	// Leeway is the tolerated clock skew; zero means DefaultLeeway.
	Leeway time.Duration
	// Status, when set, checks every token's status list entry
	// (draft-ietf-oauth-status-list) after everything else: a token
	// without one is refused.
	Status *StatusLists
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Cache, when set, spares the signature check of tokens seen before
	// (ParseCache); every other check still runs.
	Cache *ParseCache
}

// Verify checks raw's signature (token.Parse), its typ, and its iss, aud,
// exp, nbf and iat claims, then its status when Status is set, and
// returns the claims.
func (v *Verifier) Verify(ctx context.Context, raw string) (*token.Claims, error) {
	if v.Keys == nil || v.Issuer == "" || (v.Audience == "" && !v.IgnoreAudience) {
		return nil, errors.New("verify: Verifier needs Keys, Issuer and Audience")
	}
	var (
		h   *token.Header
		c   *token.Claims
		err error
	)
	if v.Cache != nil {
		h, c, err = v.Cache.parse(ctx, raw, v.Keys)
	} else {
		h, c, err = token.Parse(ctx, raw, v.Keys)
	}
	if err != nil {
		return nil, err
	}
	want := v.Type
	if want == "" {
		want = token.TypeAccess
	}
	if !token.TypeIs(h.Typ, want) {
		return nil, fmt.Errorf("verify: typ %q, want %q: %w", h.Typ, want, ErrInvalid)
	}
	if c.Issuer != v.Issuer {
		return nil, fmt.Errorf("verify: iss %q, want %q: %w", c.Issuer, v.Issuer, ErrInvalid)
	}
	if !v.IgnoreAudience && !c.Audience.Contains(v.Audience) {
		return nil, fmt.Errorf("verify: aud %q does not include %q: %w", []string(c.Audience), v.Audience, ErrInvalid)
	}
	if err := v.checkTimes(c); err != nil {
		return nil, err
	}
	if v.Status != nil {
		if err := v.Status.Check(ctx, c.StatusList()); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (v *Verifier) checkTimes(c *token.Claims) error {
	now := v.now()
	leeway := v.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	switch {
	case c.Expiry == 0:
		return fmt.Errorf("verify: no exp: %w", ErrInvalid)
	case !now.Before(c.Expiry.Time().Add(leeway)):
		return fmt.Errorf("verify: expired at %s: %w", c.Expiry.Time().UTC().Format(time.RFC3339), ErrInvalid)
	case c.NotBefore != 0 && now.Add(leeway).Before(c.NotBefore.Time()):
		return fmt.Errorf("verify: not valid before %s: %w", c.NotBefore.Time().UTC().Format(time.RFC3339), ErrInvalid)
	case c.IssuedAt != 0 && now.Add(leeway).Before(c.IssuedAt.Time()):
		return fmt.Errorf("verify: issued in the future: %w", ErrInvalid)
	}
	return nil
}

// ForIssuer returns a Verifier for tokens issued by issuer to audience,
// wired as a resource server usually wants it: it discovers the issuer's
// metadata (RFC 8414), caches its JWKS, and checks every token's status
// list entry (fail closed). client makes every fetch; nil means a client
// with a 10-second timeout. The fields of the result can be changed
// before first use (StatusLists.FailOpen, Leeway…).
func ForIssuer(ctx context.Context, client *http.Client, issuer, audience string) (*Verifier, error) {
	md, err := Discover(ctx, client, issuer)
	if err != nil {
		return nil, err
	}
	keys := &JWKS{URL: md.JWKSURI, Client: client}
	return &Verifier{
		Keys:     keys,
		Issuer:   md.Issuer,
		Audience: audience,
		Status:   &StatusLists{Keys: keys, Issuer: md.Issuer, Client: client},
	}, nil
}
