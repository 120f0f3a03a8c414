package issuer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/token"
)

// GrantJWTBearer is the JWT bearer authorization grant (RFC 7523 §2.1).
const GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// Federation accepts JWTs from trusted external issuers (workload
// identity: a Kubernetes service-account token, a CI provider's OIDC
// token) and maps each to a Sigil client, for the JWT bearer grant and as
// token exchange subject tokens. Set Issuers and hand it to a Handler,
// whose Init completes it; it is safe for concurrent use afterwards.
type Federation struct {
	// Issuers are the trusted issuers; a token from any other is refused.
	Issuers []TrustedIssuer

	byIssuer map[string]*TrustedIssuer
	clients  func(ctx context.Context, id string) (*sigil.Client, error)
	replay   sigil.ReplayCache
	leeway   time.Duration
	now      func() time.Time
}

// TrustedIssuer is one external issuer and how its tokens map to clients.
type TrustedIssuer struct {
	// Issuer is the iss its tokens carry, matched exactly.
	Issuer string
	// Keys verify its signatures: a *verify.JWKS fetching its jwks_uri, or
	// a static verify.KeySet. Only the asymmetric algorithms of
	// keys.Algorithms verify, each only with a key published for it, so
	// alg none and HMAC keyed with a public key never do.
	Keys token.KeySource
	// Audience is the aud its tokens must contain (RFC 7523 §3 item 3).
	Audience string
	// MaxAge bounds a token's lifetime (exp - iat) and how old its iat may
	// be; zero means DefaultFederationMaxAge.
	MaxAge time.Duration
	// Rules map a token to a client: the first rule that matches wins.
	Rules []MappingRule
}

// MappingRule maps the tokens whose whole sub matches Subject and whose
// claims have the string values in Claims to the client Client.
type MappingRule struct {
	// Subject must match the whole sub: compile it with
	// config.SubjectPattern, which anchors it.
	Subject *regexp.Regexp
	Client  string
	Claims  map[string]string
}

// DefaultFederationMaxAge is a trusted issuer's MaxAge when it sets none.
const DefaultFederationMaxAge = time.Hour

// Federated is a verified token of a trusted issuer and the client it
// maps to.
type Federated struct {
	Issuer string
	Claims *token.Claims
	Client *sigil.Client
}

// FederationError is a refused token. Reason is for the client and the
// audit trail; Issuer, Subject and JTI are set only once the signature
// verified (never unverified values); Cause is for the log.
type FederationError struct {
	Reason               string
	Issuer, Subject, JTI string
	Cause                error
}

func (e *FederationError) Error() string { return "federation: " + e.Reason }

func (e *FederationError) Unwrap() error { return e.Cause }

// init completes f for h.
func (f *Federation) init(h *Handler) error {
	f.byIssuer = map[string]*TrustedIssuer{}
	for i := range f.Issuers {
		ti := &f.Issuers[i]
		switch {
		case ti.Issuer == "" || ti.Keys == nil || ti.Audience == "" || len(ti.Rules) == 0:
			return fmt.Errorf("issuer: trusted issuer %q needs keys, an audience and mapping rules", ti.Issuer)
		case f.byIssuer[ti.Issuer] != nil:
			return fmt.Errorf("issuer: trusted issuer %q is listed twice", ti.Issuer)
		case ti.Issuer == h.Issuer:
			return fmt.Errorf("issuer: trusted issuer %q is this issuer", ti.Issuer)
		}
		if ti.MaxAge == 0 {
			ti.MaxAge = DefaultFederationMaxAge
		}
		f.byIssuer[ti.Issuer] = ti
	}
	f.clients = func(ctx context.Context, id string) (*sigil.Client, error) {
		e, err := h.Cache.Client(ctx, id)
		if err != nil {
			return nil, err
		}
		return e.client, nil
	}
	f.replay, f.leeway, f.now = h.Store, h.Leeway, h.now
	return nil
}

// Trusts reports whether iss is a trusted issuer. A nil Federation trusts
// none.
func (f *Federation) Trusts(iss string) bool {
	return f != nil && iss != "" && f.byIssuer[iss] != nil
}

// maxFederatedJTI bounds the jti put into the replay cache.
const maxFederatedJTI = 256

// Verify checks a token of a trusted issuer with every check of RFC 7523
// §3 and maps it to a client. In order: iss is a trusted issuer (read
// before verification only to pick the keys, then checked again on the
// verified claims); the signature verifies with that issuer's keys; sub is
// present; aud contains the issuer's Audience; exp is present and not
// past, nbf (if present) not future, iat present, not future and at most
// MaxAge old, and exp - iat at most MaxAge, all with the leeway; jti is
// present; a rule maps it to a client that exists and is confidential;
// and the jti was never seen from this issuer (kept in the store's replay
// cache until exp, so across restarts and nodes). Each token is single
// use: a workload presents a fresh one each time.
//
// A refusal is a *FederationError; any other error is the store's.
func (f *Federation) Verify(ctx context.Context, raw string) (*Federated, error) {
	refuse := func(reason string, c *token.Claims, cause error) (*Federated, error) {
		e := &FederationError{Reason: reason, Cause: cause}
		if c != nil {
			e.Issuer, e.Subject, e.JTI = c.Issuer, c.Subject, c.JTI
		}
		return nil, e
	}
	iss, err := peekIssuer(raw)
	if err != nil {
		return refuse("the token is not a JWT", nil, err)
	}
	ti := f.byIssuer[iss]
	if ti == nil {
		// A fixed reason: iss is unverified, the caller's own text.
		return refuse("the token's issuer is not trusted", nil, nil)
	}
	_, c, err := token.Parse(ctx, raw, ti.Keys)
	if err != nil {
		return refuse(fmt.Sprintf("the signature does not verify with the keys of %s", ti.Issuer), nil, err)
	}
	now, leeway := f.now(), f.leeway
	switch {
	case c.Issuer != ti.Issuer:
		return refuse("iss changed under verification", nil, nil)
	case c.Subject == "":
		return refuse("the token has no sub", c, nil)
	case !c.Audience.Contains(ti.Audience):
		return refuse(fmt.Sprintf("aud does not contain %s", ti.Audience), c, nil)
	case c.Expiry == 0:
		return refuse("the token has no exp", c, nil)
	case !now.Before(c.Expiry.Time().Add(leeway)):
		return refuse("the token expired", c, nil)
	case c.NotBefore != 0 && now.Add(leeway).Before(c.NotBefore.Time()):
		return refuse("the token is not valid yet (nbf)", c, nil)
	case c.IssuedAt == 0:
		return refuse("the token has no iat", c, nil)
	case c.IssuedAt.Time().After(now.Add(leeway)):
		return refuse("the token's iat is in the future", c, nil)
	case now.Sub(c.IssuedAt.Time()) > ti.MaxAge+leeway:
		return refuse(fmt.Sprintf("the token was issued more than %s ago", ti.MaxAge), c, nil)
	case c.Expiry.Time().Sub(c.IssuedAt.Time()) > ti.MaxAge:
		return refuse(fmt.Sprintf("the token's lifetime (exp - iat) is longer than %s", ti.MaxAge), c, nil)
	case c.JTI == "":
		return refuse("the token has no jti", c, nil)
	case len(c.JTI) > maxFederatedJTI:
		return refuse("the token's jti is too long", c, nil)
	}
	rule, reason := ti.match(c)
	if rule == nil {
		return refuse(reason, c, nil)
	}
	client, err := f.clients(ctx, rule.Client)
	switch {
	case errors.Is(err, sigil.ErrNotFound):
		// The caller learns no client names: the log has them.
		return refuse("the token maps to no usable client", c, fmt.Errorf("mapped client %q does not exist", rule.Client))
	case err != nil:
		return nil, err
	case client.AuthMethod == sigil.AuthNone:
		// The token gets what client credentials would: never a public
		// client's, whose scopes are meant for users.
		return refuse("the token maps to no usable client", c, fmt.Errorf("mapped client %q is a public client", rule.Client))
	}
	// Last, so a token refused for another reason does not spend its jti.
	err = f.replay.MarkJTI(ctx, "fed:"+ti.Issuer+":"+c.JTI, c.Expiry.Time().Add(leeway))
	if errors.Is(err, sigil.ErrReplay) {
		return refuse("the token's jti was already used", c, nil)
	}
	if err != nil {
		return nil, err
	}
	return &Federated{Issuer: ti.Issuer, Claims: c, Client: client}, nil
}

// match returns the first rule that maps c, or why none does.
func (ti *TrustedIssuer) match(c *token.Claims) (*MappingRule, string) {
	reason := fmt.Sprintf("sub %q matches no mapping rule of %s", c.Subject, ti.Issuer)
	for i := range ti.Rules {
		r := &ti.Rules[i]
		if !r.Subject.MatchString(c.Subject) {
			continue
		}
		ok := true
		for name, want := range r.Claims {
			if got, isString := c.Extra[name].(string); !isString || got != want {
				reason = fmt.Sprintf("claim %q does not have the value the mapping rule for sub %q requires", name, c.Subject)
				ok = false
				break
			}
		}
		if ok {
			return r, ""
		}
	}
	return nil, reason
}

// peekIssuer reads iss from a compact JWS without verifying it, only to
// pick the issuer whose keys verify it.
func peekIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(raw) > token.MaxSize {
		return "", errors.New("not a compact JWS")
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if err := unmarshalSegment(parts[1], &c); err != nil {
		return "", fmt.Errorf("claims: %w", err)
	}
	return c.Issuer, nil
}

// verifyFederated verifies a token of a trusted issuer presented for
// grant, recording the outcome in the audit trail. A refusal returns its
// reason; an error is unexpected.
func (h *Handler) verifyFederated(ctx context.Context, raw, grant string) (*Federated, string, error) {
	fed, err := h.Federation.Verify(ctx, raw)
	var ferr *FederationError
	switch {
	case errors.As(err, &ferr):
		detail := map[string]string{"grant_type": grant, "description": ferr.Reason}
		if ferr.Issuer != "" {
			detail["iss"] = ferr.Issuer
		}
		h.Log.InfoContext(ctx, "federation: token refused", "reason", ferr.Reason, "iss", ferr.Issuer, "err", ferr.Cause)
		h.enqueue(ctx, audit.Record{Event: audit.FederationRefused, Outcome: audit.Failure, Reason: CodeInvalidGrant,
			Subject: ferr.Subject, JTI: ferr.JTI, Detail: detail})
		return nil, ferr.Reason, nil
	case err != nil:
		return nil, "", err
	}
	h.enqueue(ctx, audit.Record{Event: audit.FederationAccepted, Outcome: audit.Success, ClientID: fed.Client.ID,
		Subject: fed.Claims.Subject, JTI: fed.Claims.JTI, Detail: map[string]string{"grant_type": grant, "iss": fed.Issuer}})
	return fed, "", nil
}

// enqueue records r without waiting for the commit.
func (h *Handler) enqueue(ctx context.Context, r audit.Record) {
	if err := h.Audit.Enqueue(ctx, record(ctx, r)); err != nil {
		h.Log.ErrorContext(ctx, "audit: record not written", "event", r.Event, "err", err)
	}
}

// federatedSubject verifies a token exchange subject token from a trusted
// issuer. The exchanging client must be the client the token maps to:
// the token proves the workload is that client, so the exchange issues
// that client a token about itself. Its sub is the client's ID (not the
// external sub, which names nothing in Sigil; the audit trail keeps it),
// its act chain starts fresh with the actor (nothing of the external
// token's claims is carried over), its scopes are the client's, and it
// expires no later than the external token.
func (h *Handler) federatedSubject(ctx context.Context, c *sigil.Client, raw string) (*token.Claims, *Error) {
	fed, reason, err := h.verifyFederated(ctx, raw, sigil.GrantTokenExchange)
	if err != nil {
		return nil, internal(err)
	}
	if reason != "" {
		return nil, invalidRequest("the subject token is refused: " + reason)
	}
	if fed.Client.ID != c.ID {
		return nil, invalidRequest("the subject token maps to another client than this one")
	}
	// The workload is the client itself: what client credentials would
	// give it bounds the exchange (exchangeBound reads Scope).
	return &token.Claims{Issuer: fed.Issuer, Subject: c.ID, ClientID: c.ID, Expiry: fed.Claims.Expiry, JTI: fed.Claims.JTI,
		Scope: strings.Join(c.Scopes, " ")}, nil
}
