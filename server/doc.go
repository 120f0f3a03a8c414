// Package server assembles a Sigil node from its parts: it opens the store,
// loads the master key, the signing keys and the admin token, builds the
// issuer and admin handlers, runs the listeners and the background loops
// (change polling, key promotion, purging), and shuts down gracefully.
//
// cmd/sigil calls it for `sigil serve` and `sigil dev`; tests and the load
// tool call it to run a real node in-process.
package server
