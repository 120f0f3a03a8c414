package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/revocation"
	"github.com/sigil-sts/sigil/secret"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// ValidationError reports input that cannot be accepted; the CLI exits 2
// on it and the HTTP API answers 400.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

func invalid(format string, a ...any) error { return &ValidationError{Msg: fmt.Sprintf(format, a...)} }

// Service performs management operations on a store. The zero value is not
// usable: set Store, Keys and Secrets.
type Service struct {
	Store   sigil.Store
	Keys    *keys.Set
	Secrets *secret.Hasher
	// Changed is called after every change, so an in-process cache can
	// drop stale entries at once; nil means no call.
	Changed func()
	// Audit records every change; nil means audit.Discard.
	Audit audit.Appender
	// MaxAccessTokenTTL caps a client's access-token TTL and bounds how long
	// revocation records are kept; zero means 15 minutes.
	MaxAccessTokenTTL time.Duration
	// RevokeSettle is how long after a client or subject revocation's
	// cutoff Revoke looks again for tokens being recorded; zero means
	// DefaultRevokeSettle.
	RevokeSettle time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) maxTTL() time.Duration {
	if s.MaxAccessTokenTTL > 0 {
		return s.MaxAccessTokenTTL
	}
	return 15 * time.Minute
}

// changed runs after a change has been stored: it drops stale cache
// entries and writes the change's audit record, waiting for its commit. If
// the record cannot be written the change stands and the error says so.
func (s *Service) changed(ctx context.Context, r audit.Record) error {
	if s.Changed != nil {
		s.Changed()
	}
	a := s.Audit
	if a == nil {
		a = audit.Discard{}
	}
	r.Outcome = audit.Success
	r.RequestID, r.Source = httpx.RequestID(ctx), httpx.Source(ctx)
	if r.Source == "" {
		r.Source = "cli"
	}
	if err := a.Append(ctx, r); err != nil {
		return fmt.Errorf("admin: %s done, but its audit record was not written: %w", r.Event, err)
	}
	return nil
}

// ClientSpec is a client registration: RFC 7591 §2 metadata plus Sigil's
// own members (default_scope, audience, claims, access_token_ttl,
// introspect).
type ClientSpec struct {
	Name           string          `json:"client_name,omitempty"`
	GrantTypes     []string        `json:"grant_types,omitempty"`
	Scope          string          `json:"scope,omitempty"`
	DefaultScope   string          `json:"default_scope,omitempty"`
	Audience       []string        `json:"audience,omitempty"`
	RedirectURIs   []string        `json:"redirect_uris,omitempty"`
	AuthMethod     string          `json:"token_endpoint_auth_method,omitempty"`
	JWKS           json.RawMessage `json:"jwks,omitempty"`
	Claims         map[string]any  `json:"claims,omitempty"`
	AccessTokenTTL int64           `json:"access_token_ttl,omitempty"` // seconds
	DPoPBound      bool            `json:"dpop_bound_access_tokens,omitempty"`
	Introspect     bool            `json:"introspect,omitempty"`
	RequirePAR     bool            `json:"require_pushed_authorization_requests,omitempty"`
}

// ClientInfo is a client as the CLI and API show it (RFC 7591 §3.2.1
// names). ClientSecret is set only in the response that creates or rotates
// the secret.
type ClientInfo struct {
	ClientID              string `json:"client_id"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	// RegisteredDynamically marks a client that registered itself (RFC
	// 7591) rather than one the operator created: its name and metadata
	// are its own claims.
	RegisteredDynamically bool `json:"registered_dynamically,omitempty"`
	// RegisteredOpen marks a dynamic registration made without an
	// initial access token (sigil.Client.RegisteredOpen).
	RegisteredOpen bool `json:"registered_open,omitempty"`
	ClientSpec
}

// introspectionMembers are RFC 7662 §2.2 response members that are not
// JWT claims; a per-client claim of that name would be ambiguous there.
var introspectionMembers = []string{"active", "token_type", "username"}

// privateJWKMembers are the JWK members that carry private or secret key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

var knownGrants = []string{sigil.GrantClientCredentials, sigil.GrantAuthorizationCode, sigil.GrantRefreshToken, sigil.GrantTokenExchange, sigil.GrantDeviceCode}

var knownMethods = []string{sigil.AuthSecretBasic, sigil.AuthSecretPost, sigil.AuthPrivateKeyJWT, sigil.AuthNone}

// CreateClient validates spec, registers the client and returns it with its
// secret (when its auth method uses one), shown this once.
func (s *Service) CreateClient(ctx context.Context, spec ClientSpec) (*ClientInfo, error) {
	c, err := s.clientFromSpec(spec)
	if err != nil {
		return nil, err
	}
	c.ID = NewClientID()
	var sec secret.Value
	if sigil.UsesSecret(c.AuthMethod) {
		sec = secret.Generate()
		c.SecretHash = s.Secrets.Hash(sec)
	}
	if err := s.Store.CreateClient(ctx, c); err != nil {
		return nil, fmt.Errorf("admin: create client: %w", err)
	}
	err = s.changed(ctx, audit.Record{Event: audit.ClientCreated, ClientID: c.ID, Scope: strings.Join(c.Scopes, " "), Audience: c.Audiences,
		Detail: map[string]string{"name": c.Name, "auth_method": c.AuthMethod, "grant_types": strings.Join(c.GrantTypes, " ")}})
	return info(c, sec), err
}

// NewClientID returns a new client id: 128 random bits as lower-case hex,
// opaque, never mistaken for a command-line flag, and never an https URL
// (so never taken for a client metadata document).
func NewClientID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CheckClient validates spec by the rules CreateClient applies and returns
// the client it describes, without an id or credentials; maxTTL caps
// access_token_ttl (zero means 15 minutes). The issuer's dynamic
// registration and client metadata documents call it, so a client meets
// the same rules however it came to exist. Errors are ValidationErrors.
func CheckClient(spec ClientSpec, maxTTL time.Duration) (*sigil.Client, error) {
	s := Service{MaxAccessTokenTTL: maxTTL}
	return s.clientFromSpec(spec)
}

func (s *Service) clientFromSpec(spec ClientSpec) (*sigil.Client, error) {
	c := &sigil.Client{
		Name:         strings.TrimSpace(spec.Name),
		GrantTypes:   spec.GrantTypes,
		Scopes:       token.SplitScope(spec.Scope),
		Audiences:    spec.Audience,
		RedirectURIs: spec.RedirectURIs,
		AuthMethod:   spec.AuthMethod,
		Claims:       spec.Claims,
		DPoPBound:    spec.DPoPBound,
		Introspect:   spec.Introspect,
		RequirePAR:   spec.RequirePAR,
	}
	if c.Name == "" {
		return nil, invalid("a client needs a name")
	}
	if err := checkName(c.Name); err != nil {
		return nil, err
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{sigil.GrantClientCredentials}
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			return nil, invalid("grant type %q is not supported (supported: %s)", g, strings.Join(knownGrants, ", "))
		}
	}
	if c.AuthMethod == "" {
		c.AuthMethod = sigil.AuthSecretBasic
		if len(spec.JWKS) > 0 {
			c.AuthMethod = sigil.AuthPrivateKeyJWT
		}
	}
	if !slices.Contains(knownMethods, c.AuthMethod) {
		return nil, invalid("auth method %q is not supported (supported: %s)", c.AuthMethod, strings.Join(knownMethods, ", "))
	}
	if c.AuthMethod == sigil.AuthNone && c.HasGrant(sigil.GrantClientCredentials) {
		return nil, invalid("client_credentials needs a confidential client: choose an auth method other than none")
	}
	if c.AuthMethod == sigil.AuthNone && c.HasGrant(sigil.GrantTokenExchange) {
		// RFC 8693 §5: an unauthenticated exchange turns any leaked token
		// of the client into new ones.
		return nil, invalid("token exchange needs a confidential client: choose an auth method other than none")
	}
	if err := s.checkJWKS(c, spec.JWKS); err != nil {
		return nil, err
	}
	for _, sc := range c.Scopes {
		if !sigil.ValidScope(sc) {
			return nil, invalid("scope %q has characters RFC 6749 §3.3 forbids", sc)
		}
	}
	for _, sc := range token.SplitScope(spec.DefaultScope) {
		if !slices.Contains(c.Scopes, sc) {
			return nil, invalid("default scope %q is not among the client's scopes", sc)
		}
		c.DefaultScopes = append(c.DefaultScopes, sc)
	}
	for _, a := range c.Audiences {
		if !sigil.ValidResource(a) {
			return nil, invalid("audience %q must be an absolute URI without a fragment", a)
		}
	}
	for _, ru := range c.RedirectURIs {
		if err := sigil.CheckRedirectURI(ru); err != nil {
			return nil, invalid("redirect URI %q: %v", ru, err)
		}
	}
	if c.HasGrant(sigil.GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return nil, invalid("authorization_code needs at least one redirect URI")
	}
	if c.HasGrant(sigil.GrantRefreshToken) && !c.HasGrant(sigil.GrantAuthorizationCode) && !c.HasGrant(sigil.GrantDeviceCode) {
		return nil, invalid("refresh_token comes with authorization_code or the device code grant: add one of them too")
	}
	for k := range c.Claims {
		if token.IsRegistered(k) {
			return nil, invalid("claim %q is a registered claim and cannot be set per client", k)
		}
		if slices.ContainsFunc(introspectionMembers, func(m string) bool { return strings.EqualFold(m, k) }) {
			return nil, invalid("claim %q would collide with the introspection response member of that name (RFC 7662 §2.2)", k)
		}
	}
	// Compared in seconds: converting a huge value to a Duration first
	// would overflow into a negative TTL that passes the check.
	if spec.AccessTokenTTL < 0 || spec.AccessTokenTTL > int64(s.maxTTL()/time.Second) {
		return nil, invalid("access token TTL must be between 1s and %s", s.maxTTL())
	}
	c.AccessTokenTTL = time.Duration(spec.AccessTokenTTL) * time.Second
	return c, nil
}

// MaxClientName bounds a client's name, in bytes: the sign-in and
// consent pages show it.
const MaxClientName = 200

// checkName refuses a client name that could make the pages that show it
// read as something other than what was registered: invalid UTF-8,
// longer than MaxClientName bytes, or holding a control character
// (newlines included), a format character (zero-width characters, the
// bidirectional overrides and isolates such as U+202E that reorder the
// text around them, tag characters), a line or paragraph separator, a
// private-use character or a noncharacter. Any other letter, mark, digit,
// punctuation, symbol or space, in any script, is allowed.
func checkName(name string) error {
	if !utf8.ValidString(name) {
		return invalid("a client name must be UTF-8")
	}
	if len(name) > MaxClientName {
		return invalid("a client name is at most %d bytes", MaxClientName)
	}
	for _, r := range name {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp, unicode.Noncharacter_Code_Point) {
			return invalid("a client name must not hold control, format or invisible characters (%U)", r)
		}
	}
	return nil
}

func (s *Service) checkJWKS(c *sigil.Client, raw json.RawMessage) error {
	if c.AuthMethod != sigil.AuthPrivateKeyJWT {
		if len(raw) > 0 {
			return invalid("a JWK Set is only used with private_key_jwt")
		}
		return nil
	}
	if len(raw) == 0 {
		return invalid("private_key_jwt needs the client's public keys (a JWK Set)")
	}
	var all struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &all); err != nil {
		return invalid("client JWK Set: %v", err)
	}
	for _, k := range all.Keys {
		for _, m := range privateJWKMembers {
			if _, ok := k[m]; ok {
				// Never store a client's private key, even by mistake.
				return invalid("client JWK Set holds private key material (member %q): register the public keys only", m)
			}
		}
	}
	set, err := verify.ParseJWKS(raw)
	if err != nil {
		return invalid("client JWK Set: %v", err)
	}
	if len(set) == 0 {
		return invalid("client JWK Set holds no usable public signing key (each needs alg ES256, EdDSA, RS256 or PS256, a fitting key, no private members)")
	}
	c.JWKS = raw
	return nil
}

func info(c *sigil.Client, sec secret.Value) *ClientInfo {
	i := &ClientInfo{
		ClientID:         c.ID,
		ClientIDIssuedAt: c.CreatedAt.Unix(),
		ClientSpec: ClientSpec{
			Name:           c.Name,
			GrantTypes:     c.GrantTypes,
			Scope:          strings.Join(c.Scopes, " "),
			DefaultScope:   strings.Join(c.DefaultScopes, " "),
			Audience:       c.Audiences,
			RedirectURIs:   c.RedirectURIs,
			AuthMethod:     c.AuthMethod,
			JWKS:           c.JWKS,
			Claims:         c.Claims,
			AccessTokenTTL: int64(c.AccessTokenTTL / time.Second),
			DPoPBound:      c.DPoPBound,
			Introspect:     c.Introspect,
			RequirePAR:     c.RequirePAR,
		},
	}
	i.RegisteredDynamically = len(c.RegistrationTokenHash) > 0
	i.RegisteredOpen = c.RegisteredOpen
	if !sec.IsZero() {
		i.ClientSecret = sec.Reveal()
		var never int64
		i.ClientSecretExpiresAt = &never // RFC 7591 §3.2.1: 0 = no expiry
	}
	return i
}

// Client returns one client, without its secret.
func (s *Service) Client(ctx context.Context, id string) (*ClientInfo, error) {
	c, err := s.Store.Client(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("admin: client %q: %w", id, err)
	}
	return info(c, secret.Value{}), nil
}

// Clients lists every client, without secrets.
func (s *Service) Clients(ctx context.Context) ([]*ClientInfo, error) {
	cs, err := s.Store.Clients(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: list clients: %w", err)
	}
	out := make([]*ClientInfo, 0, len(cs))
	for _, c := range cs {
		out = append(out, info(c, secret.Value{}))
	}
	return out, nil
}

// DeleteClient revokes a client's tokens, and those exchanged from them,
// as Revoke by client does, and removes the client. Its tokens stop
// introspecting as active at once, and resource servers see them invalid
// within their status lists' ttl.
func (s *Service) DeleteClient(ctx context.Context, id string) error {
	// Its tokens die with it: introspection finds no client, and resource
	// servers read their status list entries, which Revoke sets, with
	// those of the tokens exchanged from them (a deleted agent's
	// sub-agents). First, so that a failure leaves the client to delete
	// again.
	if _, err := s.Store.Client(ctx, id); err != nil {
		return fmt.Errorf("admin: delete client %q: %w", id, err)
	}
	if _, err := s.Revoke(ctx, "", id, ""); err != nil {
		return fmt.Errorf("admin: delete client %q: revoke its tokens: %w", id, err)
	}
	if err := s.Store.DeleteClient(ctx, id); err != nil {
		return fmt.Errorf("admin: delete client %q: %w", id, err)
	}
	return s.changed(ctx, audit.Record{Event: audit.ClientDeleted, ClientID: id})
}

// RotateSecret replaces a client's secret and returns the new one, shown
// this once. The old secret stops working at once.
func (s *Service) RotateSecret(ctx context.Context, id string) (*ClientInfo, error) {
	sec := secret.Generate()
	var c *sigil.Client
	for attempt := 1; ; attempt++ {
		var err error
		if c, err = s.Store.Client(ctx, id); err != nil {
			return nil, fmt.Errorf("admin: client %q: %w", id, err)
		}
		if !sigil.UsesSecret(c.AuthMethod) {
			return nil, invalid("client %s uses %s, which has no secret", id, c.AuthMethod)
		}
		c.SecretHash = s.Secrets.Hash(sec)
		// A compare-and-swap: a client changing its own registration (RFC
		// 7592) at the same moment neither undoes the rotation nor has its
		// change undone by it. On a conflict, read the client again.
		err = s.Store.UpdateClientIf(ctx, c, c.RegistrationTokenHash)
		if err == nil {
			break
		}
		if !errors.Is(err, sigil.ErrConflict) || attempt == 3 {
			return nil, fmt.Errorf("admin: rotate secret of %q: %w", id, err)
		}
	}
	err := s.changed(ctx, audit.Record{Event: audit.ClientSecretRotated, ClientID: id})
	return info(c, sec), err
}

// KeyInfo is a key as `sigil keys list --json` shows it.
type KeyInfo struct {
	KID       string     `json:"kid"`
	Alg       string     `json:"alg"`
	State     string     `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

func keyInfo(k *sigil.SigningKey) KeyInfo {
	i := KeyInfo{KID: k.ID, Alg: k.Alg, State: string(k.State), CreatedAt: k.CreatedAt.UTC().Truncate(time.Second)}
	if !k.RetiredAt.IsZero() {
		t := k.RetiredAt.UTC().Truncate(time.Second)
		i.RetiredAt = &t
	}
	return i
}

// ListKeys returns every stored key, oldest first.
func (s *Service) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	ks, err := s.Store.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: list keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(ks))
	for _, k := range ks {
		out = append(out, keyInfo(k))
	}
	return out, nil
}

// RotateKey adds a key in state next for alg (keys.DefaultAlg when empty).
func (s *Service) RotateKey(ctx context.Context, alg string) (KeyInfo, error) {
	if alg == "" {
		alg = keys.DefaultAlg
	}
	if !keys.Supported(alg) {
		return KeyInfo{}, invalid("algorithm %q is not supported (supported: %s)", alg, strings.Join(keys.Algorithms, ", "))
	}
	k, err := s.Keys.Rotate(ctx, alg)
	if err != nil {
		return KeyInfo{}, err
	}
	err = s.changed(ctx, audit.Record{Event: audit.KeyRotated, Detail: map[string]string{"kid": k.ID, "alg": k.Alg}})
	return keyInfo(k), err
}

// RevokeResult says what a revocation reached.
type RevokeResult struct {
	// StatusEntries counts the live tokens whose status list entry was
	// set INVALID (draft-ietf-oauth-status-list), found by their jti or,
	// for a client or subject, through the audit trail's issuance records.
	StatusEntries int `json:"status_entries"`
	// Sessions counts the browser sessions ended (subject revocation).
	Sessions int `json:"sessions,omitempty"`
	// Exchanged counts the tokens revoked because they were exchanged
	// (RFC 8693), at any depth, from the revoked ones.
	Exchanged int `json:"exchanged"`
}

// DefaultRevokeSettle is RevokeSettle's default.
const DefaultRevokeSettle = 500 * time.Millisecond

// Revoke revokes by jti, by client (every token issued to it so far) or by
// subject. Exactly one of the three must be set. The tokens exchanged from
// the revoked ones (token exchange, at any depth: an agent's, and its
// sub-agents') are revoked too (package revocation).
//
// Introspection sees the revocation at once, through the stored record.
// Status lists see it through the tokens' entries: one jti names its own
// entry; for a client or subject, the audit trail's token.issued records
// of tokens that may still be live name them. Servers record issuances
// moments after answering (the audit writer's batches), so a second pass,
// RevokeSettle after the cutoff's second ends, finds tokens issued just
// before the revocation. Without an audit trail, a client or subject
// revocation reaches introspection only.
func (s *Service) Revoke(ctx context.Context, jti, client, subject string) (RevokeResult, error) {
	var r sigil.Revocation
	n := 0
	for _, v := range []struct {
		kind  sigil.RevocationKind
		value string
	}{{sigil.RevokeJTI, jti}, {sigil.RevokeClient, client}, {sigil.RevokeSubject, subject}} {
		if v.value != "" {
			r.Kind, r.Value = v.kind, v.value
			n++
		}
	}
	if n != 1 {
		return RevokeResult{}, invalid("name exactly one of jti, client or subject to revoke")
	}
	now := s.now()
	r.Cutoff = now
	// Any token the record can match expires within the longest TTL any
	// node may be configured with, and is accepted until then plus the
	// largest leeway; a minute more for clock steps. This process's own
	// settings may differ from the servers' (a CLI run), so the hard limits
	// size the record: these records are few, one per client or subject.
	r.ExpiresAt = now.Add(config.MaxAccessTokenTTL + config.MaxLeeway + time.Minute)
	if err := s.Store.Revoke(ctx, r); err != nil {
		return RevokeResult{}, fmt.Errorf("admin: revoke: %w", err)
	}
	var res RevokeResult
	var err error
	var roots []string // the revoked tokens, whose exchanges go too
	if r.Kind != sigil.RevokeJTI {
		// The grants that would mint new tokens go too: refresh token
		// families and, for a user, browser sessions. Their access tokens
		// are among those the audit trail names below.
		jtis, err := s.Store.RevokeRefreshTokens(ctx, subject, client)
		if err != nil {
			return res, fmt.Errorf("admin: revoke refresh tokens: %w", err)
		}
		// A rotation that committed after the record above, in a later
		// second than its cutoff, issued an access token the record does
		// not cover; the families name it.
		if _, err := s.revoker().JTIs(ctx, jtis); err != nil {
			return res, fmt.Errorf("admin: revoke the refresh families' access tokens: %w", err)
		}
		roots = append(roots, jtis...)
		if subject != "" {
			if res.Sessions, err = s.Store.DeleteSessions(ctx, subject); err != nil {
				return res, fmt.Errorf("admin: end sessions: %w", err)
			}
		}
	}
	if r.Kind == sigil.RevokeJTI {
		res.StatusEntries, err = statuslist.Invalidate(ctx, s.Store, jti)
		roots = append(roots, jti)
	} else {
		var issued []string
		issued, res.StatusEntries, err = s.invalidateIssued(ctx, client, subject, now)
		roots = append(roots, issued...)
	}
	if err != nil {
		return res, fmt.Errorf("admin: revoke: %w", err)
	}
	chain, err := s.revoker().Chain(ctx, roots)
	res.Exchanged = len(chain.Exchanged)
	res.StatusEntries += chain.StatusEntries
	if err != nil {
		return res, fmt.Errorf("admin: revoke the tokens exchanged from the revoked ones: %w", err)
	}
	detail := map[string]string{"by": "admin", "kind": string(r.Kind), "status_entries": strconv.Itoa(res.StatusEntries),
		"exchanged": strconv.Itoa(res.Exchanged)}
	if subject != "" {
		detail["sessions_ended"] = strconv.Itoa(res.Sessions)
	}
	return res, s.changed(ctx, audit.Record{Event: audit.TokenRevoked, JTI: jti, ClientID: client, Subject: subject, Detail: detail})
}

// revoker revokes by jti, and follows token exchanges from the revoked
// tokens, for Revoke. Its records are sized, as Revoke's own, by the hard
// limits: this process's settings may differ from the servers'.
func (s *Service) revoker() *revocation.Revoker {
	r := &revocation.Revoker{Store: s.Store, Lifetime: config.MaxAccessTokenTTL + config.MaxLeeway + time.Minute,
		Settle: s.RevokeSettle, Now: s.Now}
	if f, ok := s.Audit.(interface{ Flush(context.Context) error }); ok {
		r.Flush = f.Flush
	}
	return r
}

// invalidateIssued sets the status list entries of every token the audit
// trail shows issued to client (or about subject) up to the cutoff's
// second and possibly still live, in two passes (see Revoke). It returns
// their jtis and how many entries it set.
//
// Which tokens the revocation covers is decided as introspection decides
// it: by the token's issue time (carried in its jti) in whole seconds,
// at or before the cutoff's. The audit record's own time, taken after
// signing and on the issuing node's clock, only bounds the search, with
// the largest leeway on either side.
func (s *Service) invalidateIssued(ctx context.Context, client, subject string, cutoff time.Time) (covered []string, n int, err error) {
	second := cutoff.Truncate(time.Second)
	q := sigil.AuditQuery{ClientID: client, Subject: subject, Event: string(audit.TokenIssued),
		Since: second.Add(-config.MaxAccessTokenTTL - config.MaxLeeway)}
	settle := s.RevokeSettle
	if settle == 0 {
		settle = DefaultRevokeSettle
	}
	seen := map[string]bool{}
	for pass := range 2 {
		if pass == 1 {
			wait := second.Add(time.Second + settle).Sub(s.now())
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return covered, n, ctx.Err()
			}
		}
		if f, ok := s.Audit.(interface{ Flush(context.Context) error }); ok {
			if err := f.Flush(ctx); err != nil {
				return covered, n, err
			}
		}
		jtis, err := s.issuedJTIs(ctx, q, seen)
		if err != nil {
			return covered, n, err
		}
		start := len(covered)
		for _, jti := range jtis {
			if issued, _, _, ok := token.StatusOfJTI(jti); ok && !issued.Truncate(time.Second).After(second) {
				covered = append(covered, jti)
			}
		}
		set, err := statuslist.Invalidate(ctx, s.Store, covered[start:]...)
		n += set
		if err != nil {
			return covered, n, err
		}
	}
	return covered, n, nil
}

// issuedJTIs returns the jtis of the records q selects that are not in
// seen, adding them to it.
func (s *Service) issuedJTIs(ctx context.Context, q sigil.AuditQuery, seen map[string]bool) ([]string, error) {
	out, err := revocation.JTIsOf(ctx, s.Store, q, seen)
	if err != nil {
		return nil, fmt.Errorf("read the audit trail: %w", err)
	}
	return out, nil
}

// IsValidation reports whether err is a ValidationError.
func IsValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}
