package issuer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/secret"
	"github.com/sigil-sts/sigil/token"
)

// PathRegister is the client registration endpoint (RFC 7591 §3). A
// registered client's configuration endpoint (RFC 7592 §2) is PathRegister
// followed by "/" and its client_id.
const PathRegister = "/register"

// Error codes of client registration (RFC 7591 §3.2.2) and of its
// Bearer-authenticated management (RFC 6750 §3.1).
const (
	CodeInvalidRedirectURI    = "invalid_redirect_uri"
	CodeInvalidClientMetadata = "invalid_client_metadata"
	CodeInvalidToken          = "invalid_token"
)

// Registration configures dynamic client registration (RFC 7591) and the
// management of registered clients (RFC 7592).
type Registration struct {
	// Open lets anyone register a client without an initial access token
	// (RFC 7591 §3). Such registrations are rate-limited per peer address
	// (an IPv6 address stands for its /48) and may never have
	// client_credentials, even after registration is closed: a client
	// nobody vetted acts only for users who consent to it.
	Open bool
	// InitialAccessTokens are the keyed hashes (Handler.Secrets.Hash) of
	// the initial access tokens that authorize a registration, sent as
	// Bearer tokens. Unless Open is set there must be at least one.
	InitialAccessTokens [][]byte
}

// ClientPolicy bounds what a client no operator approved may get: one
// registered dynamically or described by a client metadata document.
// RFC 7591 §2 lets the server replace requested metadata; the
// registration response shows what was kept.
type ClientPolicy struct {
	// Scopes are the scopes such a client may be allowed: it gets those it
	// asks for that are listed here, or all of them when it asks for none.
	// Empty means DefaultSelfRegisteredScopes.
	Scopes []string
	// Audiences are the resource indicators (RFC 8707) such a client may
	// ask tokens for; it gets all of them, the first as its default.
	// Empty means tokens for the issuer only (ID tokens, UserInfo).
	Audiences []string
}

// DefaultSelfRegisteredScopes are the scopes a self-registered client may
// be allowed when the operator names none: OpenID Connect's.
var DefaultSelfRegisteredScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess}

// Limits on what a registration may carry.
const (
	// maxRegistrationBytes bounds a registration request: a JWK Set of a
	// few RSA keys and many redirect URIs fit.
	maxRegistrationBytes = 64 << 10
	// maxRedirectURIs bounds the redirect URIs of a client no operator
	// approved (registered, or described by a document).
	maxRedirectURIs = 10
)

// ClientMetadata is the client metadata (RFC 7591 §2) Sigil registers.
// Other members are ignored, as §2 allows: client_uri, logo_uri,
// contacts, tos_uri, policy_uri, software_id, software_version,
// software_statement, application_type, and the members only the operator
// may set through the admin API (claims, introspect, audience,
// default_scope, access_token_ttl). The response shows what was
// registered.
type ClientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	// ResponseTypes is always written in a response (empty for a client
	// without authorization_code, whose absence would read as ["code"]).
	ResponseTypes []string        `json:"response_types"`
	ClientName    string          `json:"client_name,omitempty"`
	Scope         string          `json:"scope,omitempty"`
	JWKS          json.RawMessage `json:"jwks,omitempty"`
	// JWKSURI is refused: keys are registered by value (jwks).
	JWKSURI               string `json:"jwks_uri,omitempty"`
	DPoPBoundAccessTokens bool   `json:"dpop_bound_access_tokens,omitempty"`
	RequirePAR            bool   `json:"require_pushed_authorization_requests,omitempty"`
}

// ClientInformation is the client information response (RFC 7591
// §3.2.1, RFC 7592 §3).
type ClientInformation struct {
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret,omitempty"`
	ClientIDIssuedAt int64  `json:"client_id_issued_at"`
	// ClientSecretExpiresAt is 0 (never) for a client with a secret.
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	ClientMetadata
}

// clientUpdate is a client update request (RFC 7592 §2.2). The response
// members a client may echo back (registration_access_token,
// registration_client_uri, client_id_issued_at, client_secret_expires_at)
// are ignored.
type clientUpdate struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	ClientMetadata
}

// metadataRules say what a kind of self-registered client may ask for.
type metadataRules struct {
	// methods are the token_endpoint_auth_methods allowed.
	methods []string
	// noClientCredentials, when set, refuses the client_credentials grant
	// and says why.
	noClientCredentials string
}

// openRegistrationCC is why an open registration cannot have
// client_credentials: nobody vetted the client, so it may act only for
// users who consent to it.
const openRegistrationCC = "client_credentials is only registered with an initial access token: a client nobody vetted acts only for users who consent"

// registrationMethods are the authentication methods a dynamically
// registered client may choose.
var registrationMethods = []string{sigil.AuthSecretBasic, sigil.AuthSecretPost, sigil.AuthPrivateKeyJWT, sigil.AuthNone}

// mountRegistration registers the registration endpoint and the client
// configuration endpoints under the issuer's path.
func (h *Handler) mountRegistration(mux *http.ServeMux) {
	p := h.prefix + PathRegister
	mux.HandleFunc("POST "+p, h.serveRegister)
	mux.HandleFunc(p, h.registrationNotAllowed(http.MethodPost))
	mux.HandleFunc("GET "+p+"/{client_id}", h.serveRegistrationRead)
	mux.HandleFunc("PUT "+p+"/{client_id}", h.serveRegistrationUpdate)
	mux.HandleFunc("DELETE "+p+"/{client_id}", h.serveRegistrationDelete)
	mux.HandleFunc(p+"/{client_id}", h.registrationNotAllowed("GET, PUT, DELETE"))
}

// initRegistration checks the registration settings; Init calls it.
func (h *Handler) initRegistration() error {
	if r := h.Registration; r != nil && !r.Open && len(r.InitialAccessTokens) == 0 {
		return errors.New("issuer: registration is neither open nor protected by an initial access token")
	}
	for _, s := range h.SelfRegistered.Scopes {
		if !sigil.ValidScope(s) {
			return fmt.Errorf("issuer: self-registered scope %q has characters RFC 6749 §3.3 forbids", s)
		}
	}
	for _, a := range h.SelfRegistered.Audiences {
		if !sigil.ValidResource(a) {
			return fmt.Errorf("issuer: self-registered audience %q must be an absolute URI without a fragment", a)
		}
	}
	h.registerLimit = &registerLimiter{b: buckets{burst: 10, interval: 6 * time.Second}}
	h.reservedNames = &reservedNames{}
	return nil
}

// registerLimiter limits open registrations per peer address: ten at
// once, then one every six seconds, per node. An IPv6 address counts as
// its /48, the block a site is commonly given: a single host can often
// use a whole /64, and sometimes more.
type registerLimiter struct {
	mu sync.Mutex
	b  buckets
}

func (l *registerLimiter) take(host string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.take(host, now)
}

// serveRegister is the client registration endpoint (RFC 7591 §3).
func (h *Handler) serveRegister(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	vetted, oerr := h.checkInitialToken(r)
	if oerr != nil {
		h.writeRegistrationError(w, r, oerr)
		return
	}
	if !vetted {
		if wait := h.registerLimit.take(h.peerKey(r, 48), h.now()); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
			h.writeRegistrationError(w, r, &Error{Code: CodeTemporarilyUnavailable, Description: "too many registrations from this address; retry later", Status: http.StatusTooManyRequests})
			return
		}
	}
	var m ClientMetadata
	if oerr := readRegistration(w, r, &m); oerr != nil {
		h.writeRegistrationError(w, r, oerr)
		return
	}
	rules := metadataRules{methods: registrationMethods}
	if !vetted {
		rules.noClientCredentials = openRegistrationCC
	}
	c, oerr := h.clientFromMetadata(&m, rules)
	if oerr == nil {
		oerr = h.checkReservedName(ctx, c.Name)
	}
	if oerr != nil {
		h.writeRegistrationError(w, r, oerr)
		return
	}
	c.ID = admin.NewClientID()
	// Whether anyone vetted the client is recorded now, not inferred
	// later from the server's settings, which may change.
	c.RegisteredOpen = !vetted
	var sec secret.Value
	if sigil.UsesSecret(c.AuthMethod) {
		sec = secret.Generate()
		c.SecretHash = h.Secrets.Hash(sec)
	}
	rat := secret.Generate()
	c.RegistrationTokenHash = h.Secrets.Hash(rat)
	if err := h.Store.CreateClient(ctx, c); err != nil {
		writeError(w, r, h.Log, internal(fmt.Errorf("register client: %w", err)))
		return
	}
	// The client cache is left alone: it never holds an id it did not
	// find, so the new client is read from the store on first use, and
	// a flood of registrations does not keep emptying it.
	if err := h.auditClient(ctx, audit.ClientRegistered, c, map[string]string{"initial_access_token": strconv.FormatBool(vetted)}); err != nil {
		// A registration the trail does not show is not kept.
		h.Log.ErrorContext(ctx, "audit: registration not recorded; client removed", "client_id", c.ID, "err", err)
		if err := h.Store.DeleteClient(context.WithoutCancel(ctx), c.ID); err != nil {
			h.Log.ErrorContext(ctx, "registration: unrecorded client not removed", "client_id", c.ID, "err", err)
		}
		h.writeRegistrationError(w, r, unavailable())
		return
	}
	h.writeClientInformation(w, http.StatusCreated, c, sec, rat)
}

// checkInitialToken checks the request's initial access token (RFC 7591
// §3): required unless registration is open, and when sent, it must be
// one of the configured ones. It reports whether a valid one was sent.
func (h *Handler) checkInitialToken(r *http.Request) (bool, *Error) {
	tok, sent := bearer(r)
	if !sent && r.Header.Get("Authorization") == "" && h.Registration.Open {
		return false, nil
	}
	if !sent {
		return false, invalidToken(false, "registration needs an initial access token as a Bearer token", nil)
	}
	presented := secret.New(tok)
	ok := false
	for _, hash := range h.Registration.InitialAccessTokens {
		// Every configured token is compared, in constant time each.
		if h.Secrets.Equal(hash, presented) {
			ok = true
		}
	}
	if !ok {
		h.refusedRegistration(r.Context(), "", "wrong initial access token")
		return false, invalidToken(true, "the initial access token is not valid", errors.New("wrong initial access token"))
	}
	return true, nil
}

// serveRegistrationRead answers a client read request (RFC 7592 §2.1).
// The response carries a new registration access token and the old one
// stops working: only its hash is kept, and §3 requires a token in every
// response (§2.1 lets the server replace it).
func (h *Handler) serveRegistrationRead(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	old, oerr := h.registeredClient(r)
	if oerr != nil {
		h.writeRegistrationError(w, r, oerr)
		return
	}
	ch, oerr := h.changeRegistered(r, old, func(old *sigil.Client) (*sigil.Client, *Error) {
		c := *old
		return &c, nil
	})
	if oerr == nil {
		oerr = h.recordChange(ctx, audit.ClientUpdated, ch, map[string]string{"change": "registration_access_token"})
	}
	if oerr != nil {
		h.writeRegistrationError(w, r, oerr)
		return
	}
	h.writeClientInformation(w, http.StatusOK, ch.client, secret.Value{}, ch.token)
}

// serveRegistrationUpdate answers a client update request (RFC 7592
// §2.2): the metadata sent replaces the registration, omitted members
// taking their defaults, under the same rules as a new registration. The
// secret is kept while the method uses one (a new one is issued when the
// client moves to such a method), and the registration access token is
// replaced as on a read.
func (h *Handler) serveRegistrationUpdate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	old, oerr := h.registeredClient(r)
	if oerr != nil {
		h.writeRegistrationError(w, r, oerr)
		return
	}
	var u clientUpdate
	if oerr := readRegistration(w, r, &u); oerr != nil {
		h.writeRegistrationError(w, r, oerr)
		return
	}
	var sec secret.Value
	ch, oerr := h.changeRegistered(r, old, func(old *sigil.Client) (c *sigil.Client, oerr *Error) {
		c, sec, oerr = h.updatedRegistration(ctx, old, &u)
		return c, oerr
	})
	if oerr == nil {
		oerr = h.recordChange(ctx, audit.ClientUpdated, ch, map[string]string{"change": "metadata"})
	}
	if oerr != nil {
		h.writeRegistrationError(w, r, oerr)
		return
	}
	h.writeClientInformation(w, http.StatusOK, ch.client, sec, ch.token)
}

// updatedRegistration is the registration update u makes of old, and the
// new client secret when one is issued.
func (h *Handler) updatedRegistration(ctx context.Context, old *sigil.Client, u *clientUpdate) (*sigil.Client, secret.Value, *Error) {
	switch {
	case u.ClientID != old.ID:
		return nil, secret.Value{}, badRequest(CodeInvalidClientMetadata, "client_id must be the client's own (RFC 7592 §2.2)")
	case u.ClientSecret != "" && !h.Secrets.Equal(old.SecretHash, secret.New(u.ClientSecret)):
		return nil, secret.Value{}, badRequest(CodeInvalidClientMetadata, "client_secret is not the client's secret; a client cannot choose its secret")
	}
	// What an open registration cannot have, an update of it cannot gain,
	// whatever the server's settings are now: whether the client was
	// vetted was recorded when it registered.
	rules := metadataRules{methods: registrationMethods}
	if old.RegisteredOpen {
		rules.noClientCredentials = openRegistrationCC
	}
	c, oerr := h.clientFromMetadata(&u.ClientMetadata, rules)
	if oerr == nil && nameKey(c.Name) != nameKey(old.Name) {
		oerr = h.checkReservedName(ctx, c.Name)
	}
	if oerr != nil {
		return nil, secret.Value{}, oerr
	}
	c.RegisteredOpen, c.CreatedAt = old.RegisteredOpen, old.CreatedAt
	var sec secret.Value
	switch {
	case !sigil.UsesSecret(c.AuthMethod):
	case sigil.UsesSecret(old.AuthMethod):
		c.SecretHash = old.SecretHash
	default:
		sec = secret.Generate()
		c.SecretHash = h.Secrets.Hash(sec)
	}
	return c, sec, nil
}

// serveRegistrationDelete answers a client delete request (RFC 7592
// §2.3): the client, its secret and its registration access token stop
// working at once, and its access tokens introspect as inactive. The
// token is spent first (a compare-and-swap, as on a read), so of
// concurrent requests presenting it only one goes ahead, and the deletion
// is in the audit trail before it is made.
func (h *Handler) serveRegistrationDelete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	old, oerr := h.registeredClient(r)
	if oerr != nil {
		h.writeRegistrationError(w, r, oerr)
		return
	}
	ch, oerr := h.changeRegistered(r, old, func(old *sigil.Client) (*sigil.Client, *Error) {
		c := *old
		return &c, nil
	})
	if oerr == nil {
		oerr = h.recordChange(ctx, audit.ClientDeleted, ch, nil)
	}
	if oerr != nil {
		h.writeRegistrationError(w, r, oerr)
		return
	}
	err := h.Store.DeleteClient(ctx, ch.client.ID)
	if err != nil && !errors.Is(err, sigil.ErrNotFound) { // not found: deleted by the operator meanwhile
		h.undoChange(ctx, ch)
		h.refusedDeletion(ctx, ch.client.ID, err)
		writeError(w, r, h.Log, internal(fmt.Errorf("delete registered client: %w", err)))
		return
	}
	h.Cache.Invalidate()
	httpx.NoStore(w)
	w.WriteHeader(http.StatusNoContent)
}

// refusedDeletion records that a deletion already in the audit trail
// failed in the store, so that the trail does not claim it alone.
func (h *Handler) refusedDeletion(ctx context.Context, clientID string, cause error) {
	err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: audit.ClientDeleted, Outcome: audit.Failure, Reason: CodeServerError, ClientID: clientID,
		Detail: map[string]string{"by": "registration"},
	}))
	if err != nil {
		h.Log.ErrorContext(ctx, "audit: failed deletion not recorded", "client_id", clientID, "cause", cause, "err", err)
	}
}

// registeredClient authenticates a request to a client configuration
// endpoint (RFC 7592 §2): the registration access token, as a Bearer
// token, of the client the path names. An unknown client (RFC 7592 §2.1:
// also one deleted since) and a wrong token get the same 401, and a
// token sent but wrong is recorded in the audit trail. Clients the
// operator created have no registration access token and cannot be
// managed here.
func (h *Handler) registeredClient(r *http.Request) (*sigil.Client, *Error) {
	tok, ok := bearer(r)
	if !ok {
		return nil, invalidToken(false, "send the registration access token as a Bearer token", nil)
	}
	presented := secret.New(tok)
	id := r.PathValue("client_id")
	// From the store, not the cache: the token may have been replaced on
	// another node a moment ago.
	c, err := h.Store.Client(r.Context(), id)
	if errors.Is(err, sigil.ErrNotFound) {
		h.Secrets.Equal(dummyHash, presented)
		h.refusedRegistration(r.Context(), "", "unknown client")
		return nil, invalidToken(true, "the registration access token is not valid", fmt.Errorf("unknown client %q", id))
	}
	if err != nil {
		return nil, internal(err)
	}
	if !h.Secrets.Equal(c.RegistrationTokenHash, presented) {
		h.refusedRegistration(r.Context(), c.ID, "wrong registration access token")
		return nil, invalidToken(true, "the registration access token is not valid", fmt.Errorf("client %q: wrong registration access token", id))
	}
	return c, nil
}

// clientFromMetadata turns requested client metadata into a client under
// rules and the SelfRegistered policy, validated as the admin service
// validates the clients the operator creates. Scopes outside the policy
// are dropped and the policy's audiences are given (RFC 7591 §2 allows
// both); anything else the client cannot have is refused.
func (h *Handler) clientFromMetadata(m *ClientMetadata, rules metadataRules) (*sigil.Client, *Error) {
	bad := func(format string, a ...any) (*sigil.Client, *Error) {
		return nil, badRequest(CodeInvalidClientMetadata, fmt.Sprintf(format, a...))
	}
	method := m.TokenEndpointAuthMethod
	if method == "" {
		method = sigil.AuthSecretBasic // RFC 7591 §2
	}
	if !slices.Contains(rules.methods, method) {
		return bad("token_endpoint_auth_method %q is not accepted here (accepted: %s)", method, strings.Join(rules.methods, ", "))
	}
	grants := m.GrantTypes
	if len(grants) == 0 {
		grants = []string{sigil.GrantAuthorizationCode} // RFC 7591 §2
	}
	for _, g := range grants {
		switch {
		case g == sigil.GrantAuthorizationCode, g == sigil.GrantRefreshToken:
		case g == sigil.GrantClientCredentials && rules.noClientCredentials == "":
		case g == sigil.GrantClientCredentials:
			return bad("%s", rules.noClientCredentials)
		default:
			return bad("grant type %q is not supported (supported: authorization_code, refresh_token, client_credentials)", g)
		}
	}
	code := slices.Contains(grants, sigil.GrantAuthorizationCode)
	if m.ResponseTypes != nil {
		for _, rt := range m.ResponseTypes {
			if rt != "code" {
				return bad("response type %q is not supported (only code)", rt)
			}
		}
		if slices.Contains(m.ResponseTypes, "code") != code {
			return bad("response_types and grant_types disagree: code goes with authorization_code (RFC 7591 §2.1)")
		}
	}
	if len(m.RedirectURIs) > maxRedirectURIs {
		return nil, badRequest(CodeInvalidRedirectURI, fmt.Sprintf("at most %d redirect URIs", maxRedirectURIs))
	}
	for _, ru := range m.RedirectURIs {
		if err := sigil.CheckRedirectURI(ru); err != nil {
			return nil, badRequest(CodeInvalidRedirectURI, fmt.Sprintf("redirect URI %q: %v", ru, err))
		}
		// The consent page shows the host a self-registered client sends
		// users to; only its ASCII form cannot pass for another.
		if !isASCII(uriHost(ru)) {
			return nil, badRequest(CodeInvalidRedirectURI, fmt.Sprintf("redirect URI %q: write the host in its ASCII (A-label, xn--) form", ru))
		}
	}
	if code && len(m.RedirectURIs) == 0 {
		return nil, badRequest(CodeInvalidRedirectURI, "authorization_code needs at least one redirect URI")
	}
	name := strings.TrimSpace(m.ClientName)
	jwks := m.JWKS
	if method != sigil.AuthPrivateKeyJWT || string(jwks) == "null" {
		jwks = nil // keys are only kept for private_key_jwt
	}
	if method == sigil.AuthPrivateKeyJWT && len(jwks) == 0 && m.JWKSURI != "" {
		return bad("jwks_uri is not supported: send the public keys by value, as jwks")
	}
	spec := admin.ClientSpec{
		Name:         name,
		GrantTypes:   grants,
		Scope:        strings.Join(h.selfRegisteredScopes(m.Scope), " "),
		Audience:     h.SelfRegistered.Audiences,
		RedirectURIs: m.RedirectURIs,
		AuthMethod:   method,
		JWKS:         jwks,
		DPoPBound:    m.DPoPBoundAccessTokens,
		RequirePAR:   m.RequirePAR,
	}
	if spec.Name == "" {
		// The admin rules want a name; an unnamed client is shown by its
		// client_id instead (RFC 7591 §2).
		spec.Name = "-"
	}
	c, err := admin.CheckClient(spec, h.MaxAccessTokenTTL)
	if admin.IsValidation(err) {
		return bad("%v", err)
	}
	if err != nil {
		return nil, internal(err)
	}
	c.Name = name
	return c, nil
}

// selfRegisteredScopes are the scopes a self-registered client gets: the
// requested ones the policy allows, in the order asked, or every allowed
// one when none is requested.
func (h *Handler) selfRegisteredScopes(requested string) []string {
	allowed := h.SelfRegistered.Scopes
	if len(allowed) == 0 {
		allowed = DefaultSelfRegisteredScopes
	}
	asked := token.SplitScope(requested)
	if len(asked) == 0 {
		return allowed
	}
	var out []string
	for _, s := range asked {
		if slices.Contains(allowed, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// readRegistration reads a registration or update request's JSON object.
// Unknown members are allowed (RFC 7591 §2: ignored).
func readRegistration(w http.ResponseWriter, r *http.Request, v any) *Error {
	if !httpx.HasMediaType(r, "application/json") {
		return invalidRequest("Content-Type must be application/json")
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return invalidRequest("request body too large")
	}
	if err != nil {
		return invalidRequest("the request body could not be read")
	}
	if b = bytes.TrimSpace(b); len(b) == 0 || b[0] != '{' {
		return badRequest(CodeInvalidClientMetadata, "the body must be a JSON object of client metadata")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest(CodeInvalidClientMetadata, "malformed client metadata: "+err.Error())
	}
	return nil
}

// writeClientInformation writes the client information response. sec is
// the client secret when one was issued now, rat the new registration
// access token.
func (h *Handler) writeClientInformation(w http.ResponseWriter, status int, c *sigil.Client, sec, rat secret.Value) {
	info := &ClientInformation{
		ClientID:                c.ID,
		ClientSecret:            sec.Reveal(),
		ClientIDIssuedAt:        c.CreatedAt.Unix(),
		RegistrationAccessToken: rat.Reveal(),
		RegistrationClientURI:   h.endpoint(PathRegister + "/" + c.ID),
		ClientMetadata: ClientMetadata{
			RedirectURIs:            c.RedirectURIs,
			TokenEndpointAuthMethod: c.AuthMethod,
			GrantTypes:              c.GrantTypes,
			ResponseTypes:           []string{},
			ClientName:              c.Name,
			Scope:                   strings.Join(c.Scopes, " "),
			JWKS:                    c.JWKS,
			DPoPBoundAccessTokens:   c.DPoPBound,
			RequirePAR:              c.RequirePAR,
		},
	}
	if c.HasGrant(sigil.GrantAuthorizationCode) {
		info.ResponseTypes = []string{"code"}
	}
	if sigil.UsesSecret(c.AuthMethod) {
		var never int64
		info.ClientSecretExpiresAt = &never // RFC 7591 §3.2.1: 0 is no expiry
	}
	httpx.NoStore(w)
	httpx.WriteJSON(w, status, info)
}

// writeRegistrationError writes an error of the registration endpoints:
// RFC 7591 §3.2.2 JSON, with a Bearer challenge (RFC 6750 §3) on a 401.
func (h *Handler) writeRegistrationError(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.Status == http.StatusUnauthorized {
		challenge := `Bearer realm="sigil"`
		if e.Code == CodeInvalidToken && e.Cause != nil {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	writeError(w, r, h.Log, e)
}

// invalidToken is a 401 for a missing or wrong Bearer token at the
// registration endpoints. A sent but wrong token has a cause, which the
// challenge names as invalid_token.
func invalidToken(sent bool, desc string, cause error) *Error {
	if sent && cause == nil {
		cause = errors.New(desc)
	}
	return &Error{Code: CodeInvalidToken, Description: desc, Status: http.StatusUnauthorized, Cause: cause}
}

// bearer returns the request's Bearer token (RFC 6750 §2.1).
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// registrationNotAllowed answers other methods at the registration
// endpoints with an RFC 6749 §5.2 body, not the mux's plain text.
func (h *Handler) registrationNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, r, h.Log, &Error{Code: CodeInvalidRequest, Description: "use " + allow, Status: http.StatusMethodNotAllowed})
	}
}
