// Package verify is the library resource servers use to check Sigil access
// tokens without calling the issuer: a JWKS cache (RFC 7517) fed by the
// issuer's metadata (RFC 8414), and a Verifier that applies RFC 9068 §4 on
// top of the signature rules of package token.
//
// The issuer runs the same Verifier for introspection and revocation, so
// what a resource server accepts and what introspection calls active never
// differ.
//
// Middleware is the net/http front of a resource server: it accepts RFC
// 6750 Bearer tokens and RFC 9449 DPoP-bound tokens with their proofs
// (package dpop, with a MemoryReplay of proof jtis), answers failures with
// the WWW-Authenticate challenges both RFCs define, and hands the verified
// claims to the handler (ClaimsFrom); RequireScope adds scope checks.
//
// StatusLists checks token status (draft-ietf-oauth-status-list): each
// token's entry in a Status List Token the issuer signs, cached for the
// list's ttl and refreshed in the background, so a revoked token is
// refused within the ttl without a call to the issuer per request.
// ForIssuer builds a Verifier with all of it from an issuer URL.
package verify
