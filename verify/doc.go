// Package verify is the library resource servers use to check Sigil access
// tokens without calling the issuer: a JWKS cache (RFC 7517) fed by the
// issuer's metadata (RFC 8414), and a Verifier that applies RFC 9068 §4 on
// top of the signature rules of package token.
//
// The issuer runs the same Verifier for introspection and revocation, so
// what a resource server accepts and what introspection calls active never
// differ.
//
// Later releases add DPoP (RFC 9449), token status lists and net/http
// middleware here.
package verify
