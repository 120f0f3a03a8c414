// Package config is Sigil's configuration schema: plain structs with
// documented defaults and Validate. Only cmd/sigil reads flags, environment
// and files; it fills a Config and hands it on.
//
// Every setting has one name used everywhere: the flag --access-token-ttl,
// the environment variable SIGIL_ACCESS_TOKEN_TTL, and the config-file key
// access-token-ttl, which may also be written nested (keys.prepublish is
// the flag --keys-prepublish). See File.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/keys"
)

// Config holds the settings of a Sigil node.
type Config struct {
	// DataDir holds the embedded store, the master key file and the admin
	// token. Default ./.sigil.
	DataDir string
	// DSN selects a PostgreSQL store instead of SQLite (a later release).
	DSN string
	// Listen is the public listener address. Default 127.0.0.1:8080.
	Listen string
	// AdminListen is the admin API listener address. Default
	// 127.0.0.1:8081; empty disables the admin API.
	AdminListen string
	// Issuer is the issuer URL; default "http://" + Listen.
	Issuer string
	// MasterKey is SIGIL_MASTER_KEY; empty means DataDir/master-key.
	MasterKey string
	// AdminToken is SIGIL_ADMIN_TOKEN, the admin API's Bearer token, so
	// that several nodes share one; empty means DataDir/admin-token.
	AdminToken string
	// AccessTokenTTL is the default access-token lifetime. Default 5m.
	AccessTokenTTL time.Duration
	// AccessTokenMaxTTL caps every client's lifetime. Default 15m.
	AccessTokenMaxTTL time.Duration
	// AccessTokenAlg signs access tokens. Default ES256.
	AccessTokenAlg string
	// KeysPrepublish is how long a rotated key is published before it
	// signs. Default 10m; tests may set 0.
	KeysPrepublish time.Duration
	// Leeway is the clock skew tolerated on incoming JWTs. Default 30s.
	Leeway time.Duration
	// CacheRefresh is how often a node checks the store for changes made
	// elsewhere (CLI, other nodes). Default 250ms.
	CacheRefresh time.Duration
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight
	// requests and the audit flush. Default 15s.
	ShutdownTimeout time.Duration
	// NodeID names this node in audit records. Default: the host name.
	NodeID string
	// AuditEnabled turns the audit trail on. Default true; turn it off only
	// to measure what it costs.
	AuditEnabled bool
	// AuditQueue bounds the audit records waiting to be written. Default
	// 8192.
	AuditQueue int
	// AuditCheckpointEvery and AuditCheckpointInterval say when the server
	// signs a checkpoint of the audit chain. Defaults 10000 records, 10s.
	AuditCheckpointEvery    int
	AuditCheckpointInterval time.Duration
	// DPoPNonce makes the token endpoint demand server-provided DPoP
	// nonces (RFC 9449 §8). Default off.
	DPoPNonce bool
	// RequestTimeout bounds how long a request may wait on the store (a
	// database that stopped answering gets a 503 by then). Default 10s.
	RequestTimeout time.Duration
	// StatusListTTL is the ttl of Status List Tokens: how long resource
	// servers cache a status list, so how long a revocation takes to
	// reach them. Default 1m.
	StatusListTTL time.Duration
	// SessionTTL is how long a browser stays signed in. Default 12h.
	SessionTTL time.Duration
	// DeviceCodeTTL is how long a device authorization (RFC 8628) waits
	// for its user, and DevicePollInterval the least time between the
	// device's polls; whole seconds. Defaults 10m and 5s.
	DeviceCodeTTL      time.Duration
	DevicePollInterval time.Duration
	// DelegationMaxDepth bounds the act chain of a token issued by token
	// exchange: how many agents deep a delegation may go. Default 3.
	DelegationMaxDepth int
	// RefreshTokenIdleTTL is how long an unused refresh token lives, and
	// RefreshTokenMaxTTL how long a family of rotated ones may. Defaults
	// 30 days and 90 days.
	RefreshTokenIdleTTL time.Duration
	RefreshTokenMaxTTL  time.Duration
	// IDTokenAlg signs ID tokens. Default RS256, which every OpenID
	// Connect client supports.
	IDTokenAlg string
	// TrustedProxies are the reverse proxies (CIDR prefixes or addresses) whose
	// X-Forwarded-For header names the client, for the sign-in limits.
	// Default none.
	TrustedProxies []string
	// RegistrationOpen lets anyone register a client at {issuer}/register
	// (RFC 7591) without an initial access token. Default off.
	RegistrationOpen bool
	// RegistrationToken is an initial access token (RFC 7591 §3) that lets
	// its holder register clients, at least 32 characters; give it in
	// SIGIL_REGISTRATION_TOKEN or the config file rather than on the
	// command line. With neither it nor RegistrationOpen, registration is
	// off (the default).
	RegistrationToken string
	// RegistrationScopes are the scopes a client registered dynamically or
	// described by a client metadata document may be allowed. Default
	// (and when empty) openid, profile, email and offline_access.
	RegistrationScopes []string
	// RegistrationAudiences are the resource indicators (RFC 8707) such a
	// client may ask tokens for. Default none: tokens for the issuer only.
	RegistrationAudiences []string
	// ClientMetadataDocuments accepts https URLs as client_ids naming
	// client metadata documents
	// (draft-ietf-oauth-client-id-metadata-document). Default off.
	ClientMetadataDocuments bool
	// ClientMetadataCAFile holds PEM certificates trusted, besides the
	// system's, for fetching client metadata documents.
	ClientMetadataCAFile string
	// ClientMetadataUnsafeAllowLoopback also fetches client metadata
	// documents from loopback addresses. For tests only: it lets any
	// client_id make the server call itself. The server logs a warning
	// at every start while it is set.
	ClientMetadataUnsafeAllowLoopback bool
	// TrustedIssuers are the external issuers (workload identity) whose
	// JWTs are accepted through the JWT bearer grant and as token
	// exchange subject tokens (config key federation.trusted-issuers,
	// flag --federation-trusted-issuers). Default none: federation off.
	TrustedIssuers []TrustedIssuer
	// PolicyDir is a directory of Cedar or Rego policies (package
	// policy/source). When set, the server decides access requests on it
	// with the OpenID AuthZEN API and reloads it when its files change.
	// Default none: no AuthZEN endpoints.
	PolicyDir string
	// PolicyEngine names the policy language of PolicyDir: "cedar",
	// "rego", or "" (the default) to detect it from the files.
	PolicyEngine string
	// PolicyReloadInterval is how often the server looks for changed
	// policy files; 0 turns reloading off. Default 1s.
	PolicyReloadInterval time.Duration
	// AuthZENScope is the scope a caller's access token must carry to use
	// the AuthZEN API. Default authzen:evaluate.
	AuthZENScope string
	// PolicyAuditDecisions records every policy decision in the audit
	// trail. Default true.
	PolicyAuditDecisions bool
}

// Hard limits on settings, the same for every node and command. Records
// that must outlive every token (revocations written by the CLI, which does
// not know the servers' settings) are sized by these, not by the writer's
// own configuration.
const (
	MaxAccessTokenTTL = 24 * time.Hour
	MaxLeeway         = 5 * time.Minute
)

// Default returns the defaults.
func Default() Config {
	return Config{
		DataDir:                 ".sigil",
		Listen:                  "127.0.0.1:8080",
		AdminListen:             "127.0.0.1:8081",
		AccessTokenTTL:          5 * time.Minute,
		AccessTokenMaxTTL:       15 * time.Minute,
		AccessTokenAlg:          keys.DefaultAlg,
		KeysPrepublish:          10 * time.Minute,
		Leeway:                  30 * time.Second,
		CacheRefresh:            250 * time.Millisecond,
		ShutdownTimeout:         15 * time.Second,
		AuditEnabled:            true,
		AuditQueue:              8192,
		AuditCheckpointEvery:    10_000,
		AuditCheckpointInterval: 10 * time.Second,
		StatusListTTL:           time.Minute,
		RequestTimeout:          10 * time.Second,
		SessionTTL:              12 * time.Hour,
		DeviceCodeTTL:           10 * time.Minute,
		DevicePollInterval:      5 * time.Second,
		RefreshTokenIdleTTL:     30 * 24 * time.Hour,
		DelegationMaxDepth:      3,
		RefreshTokenMaxTTL:      90 * 24 * time.Hour,
		IDTokenAlg:              "RS256",
		RegistrationScopes:      []string{"openid", "profile", "email", "offline_access"},
		PolicyReloadInterval:    time.Second,
		AuthZENScope:            "authzen:evaluate",
		PolicyAuditDecisions:    true,
	}
}

// Node returns NodeID, or the host name.
func (c *Config) Node() string {
	if c.NodeID != "" {
		return c.NodeID
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "sigil"
}

// IssuerURL returns Issuer, or the default derived from Listen.
func (c *Config) IssuerURL() string {
	if c.Issuer != "" {
		return c.Issuer
	}
	return "http://" + c.Listen
}

// Validate reports the first setting that is wrong, naming it and why.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, a...)...))
	}
	if c.DSN == "" && c.DataDir == "" {
		bad("data-dir", "is empty")
	}
	if c.DSN != "" && !strings.HasPrefix(c.DSN, "postgres://") && !strings.HasPrefix(c.DSN, "postgresql://") {
		bad("dsn", "must be a postgres:// URL")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port", c.Listen)
	}
	if c.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			bad("admin-listen", "%q is not host:port", c.AdminListen)
		}
	}
	if c.Issuer != "" {
		if err := sigil.CheckIssuer(c.Issuer); err != nil {
			bad("issuer", "%v", err)
		}
	}
	if c.AccessTokenTTL <= 0 || c.AccessTokenTTL > c.AccessTokenMaxTTL {
		bad("access-token-ttl", "%s must be positive and at most access-token-max-ttl (%s)", c.AccessTokenTTL, c.AccessTokenMaxTTL)
	}
	if c.AccessTokenMaxTTL <= 0 || c.AccessTokenMaxTTL > MaxAccessTokenTTL {
		bad("access-token-max-ttl", "%s must be positive and at most %s", c.AccessTokenMaxTTL, MaxAccessTokenTTL)
	}
	if !keys.Supported(c.AccessTokenAlg) {
		bad("access-token-alg", "%q is not one of %v", c.AccessTokenAlg, keys.Algorithms)
	}
	if c.KeysPrepublish < 0 {
		bad("keys-prepublish", "must not be negative")
	}
	if c.Leeway <= 0 || c.Leeway > MaxLeeway {
		bad("leeway", "%s must be more than 0 and at most %s", c.Leeway, MaxLeeway)
	}
	if c.CacheRefresh < 10*time.Millisecond || c.CacheRefresh > time.Minute {
		bad("cache-refresh", "%s must be between 10ms and 1m", c.CacheRefresh)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be positive")
	}
	if c.AuditQueue < 1 || c.AuditQueue > 1<<20 {
		bad("audit-queue", "%d must be between 1 and 1048576", c.AuditQueue)
	}
	if c.AuditCheckpointEvery < 1 {
		bad("audit-checkpoint-every", "must be at least 1")
	}
	if c.AuditCheckpointInterval < time.Second || c.AuditCheckpointInterval > 24*time.Hour {
		bad("audit-checkpoint-interval", "%s must be between 1s and 24h", c.AuditCheckpointInterval)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 32 {
		bad("SIGIL_ADMIN_TOKEN", "must be at least 32 characters")
	}
	if c.RequestTimeout < 100*time.Millisecond || c.RequestTimeout > time.Minute {
		bad("request-timeout", "%s must be between 100ms and 1m", c.RequestTimeout)
	}
	if c.StatusListTTL < time.Second || c.StatusListTTL > time.Hour {
		bad("status-list-ttl", "%s must be between 1s and 1h", c.StatusListTTL)
	}
	if c.SessionTTL < time.Minute || c.SessionTTL > 30*24*time.Hour {
		bad("session-ttl", "%s must be between 1m and 720h", c.SessionTTL)
	}
	// A short device-code TTL only inconveniences users; a long one gives
	// user-code guessing more time (see issuer.userCodeLen).
	if c.DeviceCodeTTL < time.Second || c.DeviceCodeTTL > time.Hour || c.DeviceCodeTTL%time.Second != 0 {
		bad("device-code-ttl", "%s must be whole seconds between 1s and 1h", c.DeviceCodeTTL)
	}
	if c.DevicePollInterval < time.Second || c.DevicePollInterval > time.Minute || c.DevicePollInterval%time.Second != 0 {
		bad("device-poll-interval", "%s must be whole seconds between 1s and 1m", c.DevicePollInterval)
	}
	if c.DelegationMaxDepth < 1 || c.DelegationMaxDepth > 10 {
		bad("delegation-max-depth", "%d must be between 1 and 10", c.DelegationMaxDepth)
	}
	if c.RefreshTokenIdleTTL < time.Minute {
		bad("refresh-token-idle-ttl", "%s must be at least 1m", c.RefreshTokenIdleTTL)
	}
	if c.RefreshTokenMaxTTL < c.RefreshTokenIdleTTL || c.RefreshTokenMaxTTL > 365*24*time.Hour {
		bad("refresh-token-max-ttl", "%s must be at least --refresh-token-idle-ttl (%s) and at most 8760h", c.RefreshTokenMaxTTL, c.RefreshTokenIdleTTL)
	}
	if !keys.Supported(c.IDTokenAlg) {
		bad("id-token-alg", "%q is not one of %s", c.IDTokenAlg, strings.Join(keys.Algorithms, ", "))
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		bad("trusted-proxies", "%v", err)
	}
	if c.RegistrationToken != "" && len(c.RegistrationToken) < 32 {
		bad("registration-token", "must be at least 32 characters")
	}
	for _, s := range c.RegistrationScopes {
		if !sigil.ValidScope(s) {
			bad("registration-scopes", "%q has characters RFC 6749 §3.3 forbids in a scope", s)
		}
	}
	for _, a := range c.RegistrationAudiences {
		if !sigil.ValidResource(a) {
			bad("registration-audiences", "%q must be an absolute URI without a fragment", a)
		}
	}
	c.validateFederation(bad)
	switch c.PolicyEngine {
	case "", "cedar", "rego":
	default:
		bad("policy-engine", "%q must be cedar or rego (or empty to detect it from the files)", c.PolicyEngine)
	}
	if c.PolicyReloadInterval != 0 && (c.PolicyReloadInterval < 10*time.Millisecond || c.PolicyReloadInterval > time.Hour) {
		bad("policy-reload-interval", "%s must be 0 (off) or between 10ms and 1h", c.PolicyReloadInterval)
	}
	if !sigil.ValidScope(c.AuthZENScope) {
		bad("authzen-scope", "%q must be one scope token (RFC 6749 §3.3)", c.AuthZENScope)
	}
	return errors.Join(errs...)
}

// TrustedProxyPrefixes parses TrustedProxies: CIDR prefixes, or single
// addresses.
func (c *Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range c.TrustedProxies {
		if p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			a, err := netip.ParseAddr(p)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", p)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pr, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", p)
		}
		out = append(out, pr.Masked())
	}
	return out, nil
}
