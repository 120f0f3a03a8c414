// Package admin is the management layer: registering and changing clients,
// listing and rotating keys, and revoking tokens. Service holds the logic
// and validation; the CLI calls it directly against the store, and Handler
// exposes the same operations as a JSON API on the admin listener, behind
// the admin bearer token. Client documents use the RFC 7591 member names.
package admin
