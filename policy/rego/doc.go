// Package rego is Sigil's second policy engine: Rego policies evaluated
// by OPA's rego package, for teams that already write Rego. It is the only
// package of Sigil that imports OPA (policy's dependency test checks).
//
// # How a request appears to policies
//
// input is the AuthZEN request exactly as it travels on the wire, plus the
// verified token's claims:
//
//	input.subject   {"type", "id", "properties"?}
//	input.action    {"name", "properties"?}
//	input.resource  {"type", "id", "properties"?}
//	input.context   the request context, if any
//	input.token     the verified access token's claims, if a token was given
//
// input.token never comes from the request body (see package policy), so a
// rule that reads it reads claims Sigil verified.
//
// # The decision
//
// Options.Query names the decision document, data.sigil.authz.allow by
// default: the request is allowed only when it is defined and exactly
// true. Undefined, false, a non-boolean value or an evaluation error (a
// conflict between complete rules, a built-in function's error: built-in
// errors are strict here, so a failed check cannot quietly make a rule
// undefined) is a deny. Options.Reasons names an optional reasons document,
// data.sigil.authz.reasons by default, read in the same evaluation: a set
// or array of strings (each a Reason.Message) or of objects with "policy"
// and "message" members.
//
// # Files
//
// Load reads, from a directory tree (an fs.FS): *.rego modules (Rego v1
// syntax) and data.json documents, placed in data by their directory as in
// an OPA bundle (dir/sub/data.json is data.dir.sub). Hidden files and
// directories are skipped. Parse and compile errors are *policy.LoadError
// values with file, line and column. The query is compiled and prepared
// once at load; each Evaluate only binds input.
//
// # Determinism and reach
//
// Policies run with OPA's capabilities minus the built-ins that reach
// outside the process or are random: http.send, net.lookup_ip_addr,
// opa.runtime (which exposes the environment), rand.intn and uuid.rfc4122.
// A module calling one fails to load. time.now_ns reads Options.Now, so
// tests can fix the clock. print is disabled.
//
// An Engine is immutable once loaded and safe for concurrent use.
package rego
