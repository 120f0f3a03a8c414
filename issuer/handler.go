package issuer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/secret"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/verify"
)

// Endpoint paths, relative to the issuer URL.
const (
	PathToken         = "/token"
	PathIntrospect    = "/introspect"
	PathRevoke        = "/revoke"
	PathJWKS          = "/.well-known/jwks.json"
	PathOIDCDiscovery = "/.well-known/openid-configuration"
	PathASMetadata    = "/.well-known/oauth-authorization-server"
	// PathStatusLists is the prefix of Status List Token URIs (a list's
	// URI is the prefix followed by its number) and, without the final
	// slash, the status list aggregation endpoint.
	PathStatusLists = "/statuslists/"
	// The browser flow and OpenID Connect.
	PathAuthorize     = "/authorize"
	PathSignIn        = "/login"
	PathConsent       = "/consent"
	PathUserInfo      = "/userinfo"
	PathLogout        = "/logout"
	PathAccount       = "/account"
	PathAccountRevoke = "/account/consents/revoke"
	PathPAR           = "/par"
	// The device authorization grant (RFC 8628): the device authorization
	// endpoint, and the verification page and its consent form.
	PathDeviceAuthorization = "/device_authorization"
	PathDevice              = "/device"
	PathDeviceConsent       = "/device/consent"
)

// Handler serves the authorization server endpoints. Set the exported
// fields, call Init, then Mount; it is safe for concurrent use afterwards.
type Handler struct {
	// Issuer is the issuer identifier: the iss of every token and the base
	// URL of every endpoint. https in production; no query or fragment.
	Issuer string
	// Store persists clients, revocations and the replay cache.
	Store sigil.Store
	// Cache caches client and user lookups in front of Store.
	Cache *Cache
	// Keys signs tokens and verifies them.
	Keys *keys.Set
	// Secrets checks client secrets.
	Secrets *secret.Hasher
	// AccessTokenAlg signs access tokens; empty means keys.DefaultAlg.
	AccessTokenAlg string
	// AccessTokenTTL is the lifetime for clients that set none; zero means
	// 5 minutes.
	AccessTokenTTL time.Duration
	// MaxAccessTokenTTL caps every client's lifetime; zero means 15 minutes.
	MaxAccessTokenTTL time.Duration
	// MaxDelegationDepth bounds the act chain of an exchanged token; zero
	// means DefaultMaxDelegationDepth.
	MaxDelegationDepth int
	// Leeway is the clock skew tolerated on incoming JWTs (access tokens
	// and client assertions); zero means verify.DefaultLeeway.
	Leeway time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Log receives operational events; nil means slog.Default().
	Log *slog.Logger
	// Audit receives the audit trail; nil means audit.Discard.
	Audit audit.Appender
	// DPoPNonces, when set, makes every DPoP proof carry a nonce the
	// server issued (RFC 9449 §8).
	DPoPNonces *dpop.Nonces
	// StatusEntries, when set, gives every access token an entry in a
	// status list (draft-ietf-oauth-status-list); its BaseURI must be
	// StatusListBase().
	StatusEntries *statuslist.Allocator
	// StatusLists, when set, serves the Status List Tokens.
	StatusLists *statuslist.Publisher

	// StateKey is the root key of the browser flow: it seals the
	// authorization request between pages, makes CSRF tokens and hashes
	// the codes, sessions, refresh tokens and request URIs kept in the
	// store. At least 32 bytes, the same on every node.
	StateKey []byte
	// CheckPassword reports whether password matches a stored PHC hash,
	// and when it does but the hash has older parameters, returns a new
	// hash of it to store instead (else ""). For an empty hash it does the
	// same work and reports false, so an unknown username costs the same
	// time as a wrong password.
	CheckPassword func(hash, password string) (ok bool, rehashed string)
	// IDTokenAlg signs ID tokens; empty means RS256, which OpenID Connect
	// requires every provider to support.
	IDTokenAlg string
	// SessionTTL is a browser sign-in session's life; zero means
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// RefreshTokenIdleTTL is how long an unused refresh token lives, and
	// RefreshTokenMaxTTL how long a family of rotated ones may; zero means
	// the defaults.
	RefreshTokenIdleTTL time.Duration
	RefreshTokenMaxTTL  time.Duration
	// DeviceCodeTTL is the life of a device authorization (RFC 8628 §3.2
	// expires_in); zero means DefaultDeviceCodeTTL. DevicePollInterval is
	// the least time between polls (interval); zero means
	// DefaultDevicePollInterval. Whole seconds.
	DeviceCodeTTL      time.Duration
	DevicePollInterval time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client, for the sign-in rate limit; empty trusts none.
	TrustedProxies []netip.Prefix

	// Registration, when set, serves dynamic client registration
	// (RFC 7591) at PathRegister and the management of the clients
	// registered there (RFC 7592).
	Registration *Registration
	// ClientDocuments, when set, accepts https URLs as client_ids that
	// name client metadata documents
	// (draft-ietf-oauth-client-id-metadata-document).
	ClientDocuments *ClientDocuments
	// SelfRegistered bounds what the clients of Registration and
	// ClientDocuments may get.
	SelfRegistered ClientPolicy
	// Federation, when set, accepts tokens of trusted external issuers
	// through the JWT bearer grant (RFC 7523 §2.1) and as token exchange
	// subject tokens.
	Federation *Federation

	prefix   string // the issuer URL's path
	grants   map[string]Grant
	verifier *verify.Verifier
	dpop     *dpop.Checker
	metadata []byte

	keys        *flowKeys
	families    familyCache
	cookies     cookies
	origin      string // the issuer's origin, for CSRF checks
	signInLimit *signInLimiter
	userCodes   *deviceLimiter

	registerLimit *registerLimiter
	reservedNames *reservedNames
}

// verifiedTokenCache is about how many verified tokens the handler keeps
// (verify.ParseCache), a few hundred bytes each.
const verifiedTokenCache = 10_000

// Defaults for the Handler's zero fields.
const (
	DefaultAccessTokenTTL    = 5 * time.Minute
	DefaultMaxAccessTokenTTL = 15 * time.Minute
	DefaultSessionTTL        = 12 * time.Hour
	// A refresh token unused for 30 days dies; a family of them lives
	// 90 days at most, after which the user signs in again.
	DefaultRefreshTokenIdleTTL = 30 * 24 * time.Hour
	DefaultRefreshTokenMaxTTL  = 90 * 24 * time.Hour
)

// Init checks the configuration and prepares the handler.
func (h *Handler) Init() error {
	if err := sigil.CheckIssuer(h.Issuer); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	u, _ := url.Parse(h.Issuer)
	h.prefix = u.Path
	if h.Log == nil {
		h.Log = slog.Default()
	}
	if h.Audit == nil {
		h.Audit = audit.Discard{}
	}
	if h.AccessTokenAlg == "" {
		h.AccessTokenAlg = keys.DefaultAlg
	}
	if h.AccessTokenTTL == 0 {
		h.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if h.MaxAccessTokenTTL == 0 {
		h.MaxAccessTokenTTL = DefaultMaxAccessTokenTTL
	}
	if h.AccessTokenTTL > h.MaxAccessTokenTTL {
		return fmt.Errorf("issuer: access token TTL %s exceeds the maximum %s", h.AccessTokenTTL, h.MaxAccessTokenTTL)
	}
	if h.Leeway == 0 {
		h.Leeway = verify.DefaultLeeway
	}
	if h.IDTokenAlg == "" {
		h.IDTokenAlg = "RS256"
	}
	if h.SessionTTL == 0 {
		h.SessionTTL = DefaultSessionTTL
	}
	if h.RefreshTokenIdleTTL == 0 {
		h.RefreshTokenIdleTTL = DefaultRefreshTokenIdleTTL
	}
	if h.RefreshTokenMaxTTL == 0 {
		h.RefreshTokenMaxTTL = DefaultRefreshTokenMaxTTL
	}
	if h.CheckPassword == nil {
		return errors.New("issuer: CheckPassword is required")
	}
	var kerr error
	if h.keys, kerr = newFlowKeys(h.StateKey); kerr != nil {
		return kerr
	}
	h.cookies = newCookies(h.Issuer)
	h.origin = originOf(h.Issuer)
	h.signInLimit = newSignInLimiter()
	h.userCodes = newDeviceLimiter()
	if err := h.initRegistration(); err != nil {
		return err
	}
	// The cache spares the signature check of tokens presented again:
	// introspected twice, or exchanged for one tool after another.
	h.verifier = &verify.Verifier{Keys: h.Keys, Issuer: h.Issuer, IgnoreAudience: true, Leeway: h.Leeway, Now: h.Now,
		Cache: verify.NewParseCache(verifiedTokenCache)}
	h.dpop = &dpop.Checker{Replay: h.Store, Nonces: h.DPoPNonces, Leeway: h.Leeway, Now: h.Now}
	h.grants = map[string]Grant{}
	for _, g := range []Grant{clientCredentials{h}, authorizationCode{h}, refreshToken{h}, tokenExchange{h}, deviceCode{h}} {
		h.grants[g.Type()] = g
	}
	if h.Federation != nil {
		if err := h.Federation.init(h); err != nil {
			return err
		}
		h.grants[GrantJWTBearer] = jwtBearer{h}
	}
	var err error
	h.metadata, err = h.buildMetadata()
	return err
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// StatusListBase is the URI prefix of the issuer's status lists.
func (h *Handler) StatusListBase() string { return h.Issuer + PathStatusLists }

// endpoint returns the absolute URL of path.
func (h *Handler) endpoint(path string) string { return h.Issuer + path }

// Mount registers the endpoints on mux under the issuer URL's path.
func (h *Handler) Mount(mux *http.ServeMux) {
	p := h.prefix
	mux.HandleFunc("POST "+p+PathToken, h.serveToken)
	mux.HandleFunc("POST "+p+PathIntrospect, h.serveIntrospect)
	mux.HandleFunc("POST "+p+PathRevoke, h.serveRevoke)
	mux.HandleFunc("POST "+p+PathPAR, h.servePAR)
	mux.HandleFunc("POST "+p+PathDeviceAuthorization, h.serveDeviceAuthorization)
	mux.HandleFunc("GET "+p+PathDevice, h.serveDevice)
	mux.HandleFunc("POST "+p+PathDevice, h.serveDeviceCode)
	mux.HandleFunc("POST "+p+PathDeviceConsent, h.serveDeviceConsent)
	mux.HandleFunc("GET "+p+PathAuthorize, h.serveAuthorize)
	mux.HandleFunc("POST "+p+PathAuthorize, h.serveAuthorize)
	mux.HandleFunc("POST "+p+PathSignIn, h.serveSignIn)
	mux.HandleFunc("POST "+p+PathConsent, h.serveConsent)
	mux.Handle("GET "+p+PathUserInfo, h.userInfo())
	mux.Handle("POST "+p+PathUserInfo, h.userInfo())
	mux.HandleFunc("GET "+p+PathLogout, h.serveLogout)
	mux.HandleFunc("POST "+p+PathLogout, h.serveLogout)
	mux.HandleFunc("GET "+p+PathAccount, h.serveAccount)
	mux.HandleFunc("POST "+p+PathAccountRevoke, h.serveRevokeConsent)
	mux.HandleFunc("GET "+p+PathJWKS, h.serveJWKS)
	mux.HandleFunc("GET "+p+PathOIDCDiscovery, h.serveMetadata)
	mux.HandleFunc("GET "+p+PathASMetadata, h.serveMetadata)
	if h.Registration != nil {
		h.mountRegistration(mux)
	}
	if h.StatusLists != nil {
		mux.HandleFunc("GET "+p+PathStatusLists+"{id}", h.serveStatusList)
		mux.HandleFunc("GET "+p+strings.TrimSuffix(PathStatusLists, "/"), h.serveStatusListAggregation)
	}
	// Other methods on the form endpoints get an RFC 6749 §5.2 body too,
	// not the mux's plain-text 405.
	for _, path := range []string{PathToken, PathIntrospect, PathRevoke, PathPAR, PathDeviceAuthorization} {
		mux.HandleFunc(p+path, h.methodNotAllowed)
	}
	if p != "" {
		// RFC 8414 §3.1: the well-known suffix goes before the issuer path.
		mux.HandleFunc("GET "+PathASMetadata+p, h.serveMetadata)
	}
}

// Metadata is the authorization server metadata (RFC 8414 §2), which is
// also the OpenID Provider metadata (OpenID Connect Discovery 1.0 §3).
type Metadata struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	UserInfoEndpoint                          string   `json:"userinfo_endpoint"`
	EndSessionEndpoint                        string   `json:"end_session_endpoint"`
	PushedAuthorizationRequestEndpoint        string   `json:"pushed_authorization_request_endpoint"`
	DeviceAuthorizationEndpoint               string   `json:"device_authorization_endpoint"`
	RequirePushedAuthorizationRequests        bool     `json:"require_pushed_authorization_requests"`
	JWKSURI                                   string   `json:"jwks_uri"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	ScopesSupported                           []string `json:"scopes_supported"`
	ClaimsSupported                           []string `json:"claims_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	ResponseModesSupported                    []string `json:"response_modes_supported"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported"`
	PromptValuesSupported                     []string `json:"prompt_values_supported"`
	ACRValuesSupported                        []string `json:"acr_values_supported"`
	AuthorizationResponseISSParameter         bool     `json:"authorization_response_iss_parameter_supported"`
	ClaimsParameterSupported                  bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                 bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported              bool     `json:"request_uri_parameter_supported"`
	SubjectTypesSupported                     []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported          []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValues         []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValues []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValues    []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	AccessTokenSigningAlgValuesSupported      []string `json:"access_token_signing_alg_values_supported"`
	DPoPSigningAlgValuesSupported             []string `json:"dpop_signing_alg_values_supported"`
	AuthorizationDetailsTypesSupported        []string `json:"authorization_details_types_supported"`
	StatusListAggregationEndpoint             string   `json:"status_list_aggregation_endpoint,omitempty"`
	RegistrationEndpoint                      string   `json:"registration_endpoint,omitempty"`
	ClientIDMetadataDocumentSupported         bool     `json:"client_id_metadata_document_supported,omitempty"`
}

// authMethods are the client authentication methods the endpoints accept;
// public clients (none) at the token, PAR and revocation endpoints, never
// at introspection.
var authMethods = []string{sigil.AuthSecretBasic, sigil.AuthSecretPost, sigil.AuthPrivateKeyJWT}

// tokenAuthMethods adds public clients to authMethods.
var tokenAuthMethods = append(slices.Clone(authMethods), sigil.AuthNone)

func (h *Handler) buildMetadata() ([]byte, error) {
	var grants []string
	for g := range h.grants {
		grants = append(grants, g)
	}
	slices.Sort(grants) // a stable document: caches and golden files
	m := Metadata{
		Issuer:                             h.Issuer,
		AuthorizationEndpoint:              h.endpoint(PathAuthorize),
		TokenEndpoint:                      h.endpoint(PathToken),
		UserInfoEndpoint:                   h.endpoint(PathUserInfo),
		EndSessionEndpoint:                 h.endpoint(PathLogout),
		PushedAuthorizationRequestEndpoint: h.endpoint(PathPAR),
		DeviceAuthorizationEndpoint:        h.endpoint(PathDeviceAuthorization),
		JWKSURI:                            h.endpoint(PathJWKS),
		IntrospectionEndpoint:              h.endpoint(PathIntrospect),
		RevocationEndpoint:                 h.endpoint(PathRevoke),
		ScopesSupported:                    []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess},
		ClaimsSupported: append([]string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash"},
			append(slices.Clone(profileClaims), emailClaims...)...),
		GrantTypesSupported:                       grants,
		ResponseTypesSupported:                    []string{"code"},
		ResponseModesSupported:                    []string{"query", "form_post"},
		CodeChallengeMethodsSupported:             []string{"S256"},
		PromptValuesSupported:                     []string{"none", "login", "consent", "select_account"},
		ACRValuesSupported:                        []string{acrPassword},
		AuthorizationResponseISSParameter:         true,
		SubjectTypesSupported:                     []string{"public"},
		IDTokenSigningAlgValuesSupported:          idTokenAlgs(h.IDTokenAlg),
		TokenEndpointAuthMethodsSupported:         tokenAuthMethods,
		TokenEndpointAuthSigningAlgValues:         keys.Algorithms,
		IntrospectionEndpointAuthMethodsSupported: authMethods,
		IntrospectionEndpointAuthSigningAlgValues: keys.Algorithms,
		RevocationEndpointAuthMethodsSupported:    tokenAuthMethods,
		RevocationEndpointAuthSigningAlgValues:    keys.Algorithms,
		AccessTokenSigningAlgValuesSupported:      []string{h.AccessTokenAlg},
		DPoPSigningAlgValuesSupported:             dpop.Algorithms,
		AuthorizationDetailsTypesSupported:        authzdetails.Types,
	}
	if h.StatusLists != nil {
		m.StatusListAggregationEndpoint = h.endpoint(strings.TrimSuffix(PathStatusLists, "/"))
	}
	if h.Registration != nil {
		m.RegistrationEndpoint = h.endpoint(PathRegister)
	}
	m.ClientIDMetadataDocumentSupported = h.ClientDocuments != nil
	return json.Marshal(m)
}

func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	httpx.WriteRawJSON(w, http.StatusOK, h.metadata)
}

// serveJWKS serves the public keys with a max-age below the
// pre-publication delay (see keys.Set.JWKSMaxAge) and an ETag so clients
// can revalidate cheaply.
func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) {
	body := h.Keys.JWKS()
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	hdr := w.Header()
	hdr.Set("ETag", etag)
	hdr.Set("Access-Control-Allow-Origin", "*")
	if age := int(h.Keys.JWKSMaxAge().Seconds()); age > 0 {
		hdr.Set("Cache-Control", "public, max-age="+strconv.Itoa(age)+", must-revalidate")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", "application/jwk-set+json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	writeError(w, r, h.Log, &Error{Code: CodeInvalidRequest, Description: "use POST", Status: http.StatusMethodNotAllowed})
}

// idTokenAlgs is id_token_signing_alg_values_supported: the algorithm ID
// tokens are signed with, and RS256, which OpenID Connect Discovery §3
// requires every provider to list (a key for it is always kept).
func idTokenAlgs(alg string) []string {
	if alg == "RS256" {
		return []string{alg}
	}
	return []string{alg, "RS256"}
}
