// Package keys owns the issuer's signing keys: generation (ES256, EdDSA,
// RS256, PS256), encryption at rest, the life cycle next → active → retired,
// and the public JWK Set (RFC 7517) that relying parties verify with.
//
// Private keys are stored sealed with AES-256-GCM under the master key (see
// LoadMasterKey); the kid is bound into each ciphertext as additional data,
// so a sealed key cannot be swapped onto another kid. Decrypted keys live
// only in memory.
//
// Rotation never signs with a key relying parties could not yet have seen:
// a new key is created "next" and published in JWKS at once, and becomes
// "active" only after the pre-publication delay (Set.Prepublish). The JWKS
// response may be cached by clients for at most half that delay (see
// Set.JWKSMaxAge), so every client that refreshes on schedule holds the new
// key before any token is signed with it. The previous active key of the
// same algorithm is then "retired": still published, so tokens it signed
// keep verifying, and removed once the longest-lived of them has expired
// (Set.RetainRetired).
package keys
