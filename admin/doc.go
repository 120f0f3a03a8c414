// Package admin is the management layer: registering and changing clients
// and users, listing and rotating keys, and revoking tokens. Service holds
// the logic and validation; the CLI calls it directly against the store,
// and Handler exposes the same operations as a JSON API on the admin
// listener, behind the admin bearer token. Client documents use the
// RFC 7591 member names. User passwords are stored as argon2id hashes
// (package password) and never shown, not even as hashes.
package admin
