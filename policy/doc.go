// Package policy is Sigil's policy decision point (PDP): the engine
// interface that Cedar and Rego policies sit behind, the OpenID AuthZEN
// Authorization API 1.0 request and batch shapes they evaluate, and the
// fail-closed, hot-swappable PDP that callers hold.
//
// The engine input is an AuthZEN access evaluation request (§5–§6:
// subject, action, resource and context; subject and resource are typed
// entities with an id and properties) plus, when the caller verified an
// access token, the token's claims in Request.Token. Claims never come from
// the request body: Request.Token has no JSON name, and a request whose
// context carries a "token" member is rejected, so a policy that reads
// the token reads claims Sigil verified. How each engine shows the request
// and the claims to policies is documented in its package: policy/cedar
// (the default engine) and policy/rego (OPA; the only package that
// imports OPA).
//
// Decisions fail closed. An Engine returns Allow only when its policies
// permit and nothing went wrong; an evaluation error, a panic inside an
// engine, a canceled context or a malformed request is a deny. Evaluate
// returns a non-nil error only for a request that is not valid
// (*RequestError: the HTTP layer answers 400), a canceled context, or an
// engine failure (ErrEngine: 500); the Decision it returns alongside is
// always a deny.
//
// Requests from the network are decoded with DecodeRequest or
// DecodeEvaluations, which bound the body's size, its JSON nesting and the
// number of batch items (Limits), match member names exactly as the spec
// requires, ignore unknown members and never panic.
//
// PDP holds the current engine behind an atomic pointer: Reload builds a
// new engine from its source and swaps it in only if it loaded and
// validated, so a broken policy file keeps the previous policy set
// serving. Evaluations in flight finish on the engine they started with.
//
// The HTTP endpoints (/access/v1/evaluation, /access/v1/evaluations, the
// metadata document) live in package authzen; this package speaks no HTTP.
package policy
