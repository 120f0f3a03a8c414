// Package issuer is Sigil's OAuth 2.0 authorization server and OpenID
// Provider: the token endpoint (RFC 6749 §3.2) with client authentication
// (§2.3, RFC 7523 §2.2 private_key_jwt, none for public clients), the
// grants (one file each behind the Grant interface: client credentials
// §4.4, authorization code §4.1.3, refresh token §6), introspection
// (RFC 7662), revocation (RFC 7009), and the metadata documents (RFC 8414,
// OpenID Connect Discovery 1.0) with the JWKS.
//
// The browser flow is the authorization code flow (RFC 6749 §4.1) with
// PKCE (RFC 7636, S256 only) and OpenID Connect Core 1.0: the
// authorization endpoint (authorize.go; RFC 9207 iss in every response),
// the sign-in and consent pages (signin.go, consent.go, pages.go and
// templates/), ID tokens (idtoken.go) and UserInfo (userinfo.go, OpenID
// Connect Core §5.3), refresh tokens rotated on every use with reuse
// detection (refresh.go, RFC 9700 §4.14), pushed authorization requests
// (par.go, RFC 9126), logout (logout.go, OpenID Connect RP-Initiated
// Logout 1.0) and the account page where users withdraw consents
// (account.go). Rich authorization requests (RFC 9396, the mcp_tool
// type of package authzdetails) follow one set of rules at every
// endpoint, kept in details.go. Between pages the request travels
// sealed, and codes, sessions and refresh tokens are stored as keyed
// hashes, under keys derived from Handler.StateKey (flowstate.go).
//
// Clients may also register themselves, when the operator allows it:
// dynamic registration and its management (RFC 7591, RFC 7592;
// register.go, registered.go: single-use registration access tokens by
// compare-and-swap, durable audit), and client metadata documents
// (draft-ietf-oauth-client-id-metadata-document; clientdoc.go), fetched
// through an SSRF-guarded HTTP client with per-host and total slots
// (fetch.go) and cached with bounds and stale-if-error (doccache.go).
// Both hold such clients to the operator's ClientPolicy and to the admin
// service's client rules.
//
// Access tokens are JWTs per RFC 9068, signed by package keys through
// package token. Errors at the OAuth endpoints (token, introspection,
// revocation, PAR, registration) are RFC 6749 §5.2 JSON written by one
// writer (errors.go); unexpected failures become server_error with a
// request id and are logged, never shown. The browser endpoints answer
// otherwise. The authorization endpoint, and the sign-in and consent forms
// that continue its request, send errors back to the client's redirect
// URI (RFC 6749 §4.1.2.1: access_denied, login_required, …) once the
// client and that URI are known, and render an HTML error page when they
// are not or when a form cannot be trusted; logout and the account page
// render HTML error pages too. UserInfo answers refusals with RFC 6750
// WWW-Authenticate challenges (RFC 9449 for DPoP-bound tokens).
package issuer
