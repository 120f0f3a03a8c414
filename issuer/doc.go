// Package issuer is Sigil's OAuth 2.0 authorization server: the token
// endpoint (RFC 6749 §3.2) with client authentication (§2.3, RFC 7523 §2.2
// private_key_jwt), the grants (one file each behind the Grant interface),
// introspection (RFC 7662), revocation (RFC 7009), and the metadata
// documents (RFC 8414, OpenID Connect Discovery 1.0) with the JWKS.
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
// package token. Every error at these endpoints is RFC 6749 §5.2 JSON
// written by one writer (errors.go); unexpected failures become
// server_error with a request id and are logged, never shown.
package issuer
