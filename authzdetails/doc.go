// Package authzdetails parses, checks and narrows OAuth 2.0 Rich
// Authorization Requests (RFC 9396): the authorization_details parameter
// of authorization, token and token exchange requests, and the claim of
// the same name in access tokens and introspection responses.
//
// One type is supported, TypeMCPTool: the tools an agent may call on one
// MCP server,
//
//	{"type":"mcp_tool","resource":"https://mcp.example","tools":["search","fetch"]}
//
// Parse is the only way request input becomes a List. It refuses, with an
// error wrapping ErrInvalid (the invalid_authorization_details of RFC 9396
// §5), anything that is not a JSON array of one to MaxEntries objects, an
// object of an unknown type, a member the type does not define, a member
// repeated or differing from a defined one only in case, a resource that
// is not an absolute https URI (http on a loopback IP address for
// development), a tool name outside MCP's characters, duplicates, and
// input past the limits (MaxBytes, MaxEntries, MaxTools, MaxToolName).
// Every member is matched exactly: encoding/json's case-insensitive field
// matching, and its last-one-wins treatment of repeated members, would
// let a request read differently here and at a client or gateway.
//
// Narrowing: List.Within says whether a list asks for no more than
// another (same type and resource, tools a subset), which refresh, token
// exchange and the token request of the code grant require. Other types
// are not registered: a new type is a code change here, because the
// narrowing rule is per type.
//
// The package imports the standard library only.
package authzdetails
