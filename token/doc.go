// Package token mints and parses the JWTs Sigil issues (RFC 7519, RFC 7515)
// on go-jose v4 with an explicit algorithm allow-list.
//
// Parse is the signature layer every verification goes through, at the
// issuer (introspection, revocation) and at resource servers (package
// verify). Its rules close the classic JWT attacks:
//
//   - The algorithm comes from the key, never from the token: the header's
//     alg must equal the alg registered for the kid, and the key must be of
//     the right type and size for it (keys.CheckPublic). So no "none", no
//     HS256 signed with a public key, no RS256/PS256 swap.
//   - Keys come only from the caller's key source, looked up by kid: a
//     header carrying jwk, jku, x5u, x5c or x5t is refused outright.
//   - Any crit header is refused: Sigil understands no extensions.
//   - Only the compact serialization, one signature, bounded size.
//
// Claim validation (iss, aud, exp, nbf, typ) is the caller's next step; see
// package verify.
package token
