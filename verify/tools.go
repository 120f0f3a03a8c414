package verify

import "github.com/sigil-sts/sigil/token"

// AllowsTool reports whether verified claims grant calling tool on the
// tool server resource: the token's authorization_details (RFC 9396)
// hold an mcp_tool object for exactly resource that lists exactly tool.
// Both are compared byte for byte, as aud is: pass the server's canonical
// URI, the same string the Verifier's Audience holds, and the tool name
// as the JSON-RPC tools/call request names it.
//
// Claims without authorization details (nil included) allow no tool.
// Whether such a token may call tools on its scopes alone is the
// gateway's policy to decide; a token issued with mcp_tool details never
// loses them through refresh or token exchange, so a missing claim never
// stands for a narrowed one. Check aud first (Verify does): the details
// of a token addressed to another client for further exchange may name
// tool servers outside its aud.
func AllowsTool(c *token.Claims, resource, tool string) bool {
	return c != nil && c.AuthorizationDetails.AllowsTool(resource, tool)
}
