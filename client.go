package sigil

import (
	"context"
	"slices"
	"time"
)

// Client authentication methods (RFC 7591 §2, token_endpoint_auth_method).
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthNone          = "none"
)

// Grant types this release understands (RFC 7591 §2, grant_types).
const (
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	// GrantTokenExchange is OAuth 2.0 Token Exchange (RFC 8693).
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// GrantDeviceCode is the OAuth 2.0 Device Authorization Grant
	// (RFC 8628 §3.4).
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// Client is a registered OAuth client: a service, an agent, or an
// application acting for users through the authorization code flow. The
// zero value is not a usable client; the admin layer fills in defaults
// before creating one.
type Client struct {
	// ID is the client_id, unique and immutable.
	ID string
	// Name is a human label.
	Name string
	// SecretHash is the keyed hash of the client secret (see package
	// secret); empty for methods that use no secret.
	SecretHash []byte
	// AuthMethod is the one token_endpoint_auth_method this client uses.
	AuthMethod string
	// GrantTypes lists the grants the client may use.
	GrantTypes []string
	// Scopes lists the scopes the client may be granted.
	Scopes []string
	// DefaultScopes are granted when a request names no scope; a subset of
	// Scopes.
	DefaultScopes []string
	// Audiences are the resource indicators (RFC 8707) the client may ask
	// tokens for. The first is the default audience.
	Audiences []string
	// RedirectURIs are the registered redirect URIs of the authorization
	// code flow, matched exactly; a post_logout_redirect_uri must be one
	// of them too.
	RedirectURIs []string
	// JWKS is the client's public JWK Set, as JSON, for private_key_jwt.
	JWKS []byte
	// Claims are extra claims (ABAC entitlements) put into every access
	// token the client gets for itself. They never hold registered claims.
	Claims map[string]any
	// AccessTokenTTL is the access-token lifetime; zero means the server
	// default.
	AccessTokenTTL time.Duration
	// DPoPBound marks clients that must send a DPoP proof with every token
	// request, so that all their access tokens are DPoP-bound (RFC 9449
	// §5.2, dpop_bound_access_tokens); the token endpoint refuses a
	// request without one.
	DPoPBound bool
	// Introspect marks a resource server that may introspect any token whose
	// audience includes one of its Audiences.
	Introspect bool
	// RequirePAR makes the client push every authorization request
	// (RFC 9126 §6, require_pushed_authorization_requests).
	RequirePAR bool
	// RegistrationTokenHash is the keyed hash of the registration access
	// token (RFC 7592) of a dynamically registered client; empty for
	// clients the operator created.
	RegistrationTokenHash []byte
	// RegisteredOpen marks a client registered dynamically without an
	// initial access token (RFC 7591 §3, open registration). Nobody vetted
	// it, so it never gains what only a vetted client may have
	// (client_credentials), whatever the server's settings are later.
	// False for the operator's clients and for registrations made with an
	// initial access token.
	RegisteredOpen bool
	// CreatedAt and UpdatedAt are set by the store. Every update moves
	// UpdatedAt forward, by a microsecond at least, so it also tells one
	// version of a client from the next (UpdateClientIf).
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UsesSecret reports whether authentication method uses a client secret.
func UsesSecret(method string) bool { return method == AuthSecretBasic || method == AuthSecretPost }

// HasGrant reports whether the client may use grant type g.
func (c *Client) HasGrant(g string) bool { return slices.Contains(c.GrantTypes, g) }

// HasAudience reports whether aud is one of the client's audiences.
func (c *Client) HasAudience(aud string) bool { return slices.Contains(c.Audiences, aud) }

// ClientStore persists clients.
type ClientStore interface {
	// CreateClient stores a new client; ErrConflict if the ID exists.
	CreateClient(ctx context.Context, c *Client) error
	// Client returns one client; ErrNotFound if there is none.
	Client(ctx context.Context, id string) (*Client, error)
	// Clients returns every client, ordered by ID.
	Clients(ctx context.Context) ([]*Client, error)
	// UpdateClient replaces a stored client's fields; ErrNotFound if absent.
	UpdateClient(ctx context.Context, c *Client) error
	// UpdateClientIf is UpdateClient as a compare-and-swap: it replaces
	// the stored client only while it is the version c was read as (its
	// UpdatedAt is still c.UpdatedAt) and its registration token hash is
	// still registrationTokenHash (empty matches none); ErrConflict
	// otherwise, ErrNotFound if absent. Of several writers that read the
	// same version, one succeeds: a registration access token (RFC 7592)
	// is used once, and no change overwrites one it did not see.
	UpdateClientIf(ctx context.Context, c *Client, registrationTokenHash []byte) error
	// DeleteClient removes a client; ErrNotFound if absent.
	DeleteClient(ctx context.Context, id string) error
}
