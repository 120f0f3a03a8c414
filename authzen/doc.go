// Package authzen serves the OpenID AuthZEN Authorization API 1.0 over a
// policy.PDP: the Access Evaluation API (POST /access/v1/evaluation, §6),
// the Access Evaluations API (POST /access/v1/evaluations, §7, with the
// execute_all, deny_on_first_deny and permit_on_first_permit semantics)
// and the PDP metadata document (GET /.well-known/authzen-configuration).
// The search APIs are not supported: the metadata leaves their
// endpoints out, which is how the spec says so, and a request to one gets
// 501 with a JSON message.
//
// # Callers
//
// The PEP authenticates with an access token of this issuer, as a Bearer
// token (RFC 6750) or a DPoP-bound token with its proof (RFC 9449),
// checked in-process: signature, iss, aud (the PDP's identifier, which is
// the issuer URL: RFC 9068 §4 has a resource server check its audience),
// exp, then Active (the issuer's revocation check), then the configured
// scope (default "authzen:evaluate"). Without a token the answer is 401
// with a WWW-Authenticate challenge; without the scope, 403
// insufficient_scope (RFC 6750 §3.1).
//
// The caller's token authenticates the PEP; it is not the subject of the
// decision, and its claims are not shown to policies (Request.Token stays
// empty). AuthZEN 1.0 defines no member that carries a subject's token,
// and a request context naming "token" is refused (package policy), so
// evaluating a user's token is left to a later, explicit extension.
//
// # Responses
//
// A decision is 200 with {"decision": true|false}; a deny is never an
// HTTP error (§12). The PDP fails closed. Policy evaluation errors are a
// deny (200). A request that is not valid JSON, not application/json,
// larger than Limits.MaxBytes, nested deeper than Limits.MaxDepth or
// missing a required member is 400; in a batch, an item that is incomplete
// once the defaults are applied is a deny carrying
// context.error {"status":400,"message":…} and the call is still 200
// (§7.2.1). Only a failure of the PDP itself (no policy set loaded, an
// engine panic) is 500, logged with the request id and never described to
// the caller. Errors are JSON: {"error":{"status":N,"message":"…"}}.
//
// Reasons are given only when asked: a request whose top-level "options"
// object has "include_reasons": true gets, on each decision, the
// decision's context {"reasons":[{"policy","effect","message"}],
// "errors":[{"policy","message"}]} naming the policies that decided and
// any evaluation errors. Other callers see only the decision. Output is
// deterministic: engines sort their reasons.
//
// When the PEP sends X-Request-ID, the response carries the same value,
// as the spec requires, replacing the server's own id in that header; the
// server's id still identifies the request in logs and audit records.
//
// Every decision goes to the audit trail when Audit is set, as an
// audit.PolicyDecision record naming the caller, the subject, action,
// resource and the deciding policies.
package authzen
