package policy

import (
	"context"
	"errors"
	"fmt"
)

// Subject is the user or machine principal of an access request
// (AuthZEN Authorization API 1.0 §5.1). Type and ID are required.
type Subject struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Resource is the target of an access request (§5.2). Type and ID are
// required.
type Resource struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Action is the operation the subject attempts on the resource (§5.3).
// Name is required.
type Action struct {
	Name       string         `json:"name"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Request is one access evaluation request (§6.1). Property and context
// values are what encoding/json produces for JSON with UseNumber: nil,
// bool, json.Number (or any Go integer or float), string, []any and
// map[string]any.
type Request struct {
	Subject  Subject        `json:"subject"`
	Action   Action         `json:"action"`
	Resource Resource       `json:"resource"`
	Context  map[string]any `json:"context,omitempty"`

	// Token holds the claims of an access token the caller verified, or
	// nil. It has no JSON name so that a request body can never supply
	// it; engines show it to policies as context.token (Cedar) and
	// input.token (Rego).
	Token map[string]any `json:"-"`
}

// TokenKey is the context member (Cedar) and input member (Rego) under
// which policies find Request.Token. A request context may not use it.
const TokenKey = "token"

// Validate reports whether r has every member the spec requires and does
// not use the reserved context member. Engines call it before evaluating;
// DecodeRequest has already called it for requests from the network.
func (r *Request) Validate() error {
	switch {
	case r.Subject.Type == "":
		return &RequestError{Field: "subject.type", Reason: "is required"}
	case r.Subject.ID == "":
		return &RequestError{Field: "subject.id", Reason: "is required"}
	case r.Action.Name == "":
		return &RequestError{Field: "action.name", Reason: "is required"}
	case r.Resource.Type == "":
		return &RequestError{Field: "resource.type", Reason: "is required"}
	case r.Resource.ID == "":
		return &RequestError{Field: "resource.id", Reason: "is required"}
	}
	// Security: context.token is where policies find verified claims. A
	// caller-supplied member of that name would let the request body pose
	// as a verified token, so it is refused rather than overwritten: a
	// silent overwrite would hide a confused or hostile PEP.
	if _, ok := r.Context[TokenKey]; ok {
		return &RequestError{Field: "context." + TokenKey, Reason: "is reserved for the verified token's claims"}
	}
	return nil
}

// RequestError reports a request that is malformed or exceeds a limit.
// The HTTP layer answers it with 400 Bad Request (AuthZEN §12); it is never
// an internal error.
type RequestError struct {
	// Field is the offending member as a dotted path ("subject.id",
	// "evaluations[3].action"), or "" for the body as a whole.
	Field string
	// Reason says what is wrong, in a form fit to show the caller.
	Reason string
	// Err is the underlying cause, if any (a JSON syntax error).
	Err error
}

// Error implements error.
func (e *RequestError) Error() string {
	if e.Field == "" {
		return "policy: invalid request: " + e.Reason
	}
	return fmt.Sprintf("policy: invalid request: %s %s", e.Field, e.Reason)
}

// Unwrap returns the underlying cause.
func (e *RequestError) Unwrap() error { return e.Err }

// ErrEngine marks an engine failure that is not the request's fault: a
// panic inside an engine, or no engine loaded. The decision returned with
// it is a deny; the HTTP layer answers 500.
var ErrEngine = errors.New("policy: engine failure")

// Engine evaluates AuthZEN requests against a loaded policy set.
//
// Evaluate returns Allow only when the policies permit the request and
// nothing failed. Its error is non-nil only for an invalid request
// (*RequestError), a done context (ctx.Err()) or an engine failure
// (ErrEngine), and the Decision returned with an error is a deny.
// Evaluation errors inside policies are not Go errors: they are reported
// in Decision.Errors, and the decision is then a deny unless the engine
// documents otherwise. Implementations are safe for concurrent use.
type Engine interface {
	Evaluate(ctx context.Context, req Request) (Decision, error)
}

// Decision is an engine's answer to one request. Its zero value is a deny.
type Decision struct {
	// Allow is true only when the policies permit the request.
	Allow bool `json:"decision"`
	// Reasons names what decided: the Cedar policies that permitted (on
	// Allow) or forbade (on a deny by a forbid policy), or the messages of
	// the Rego policy's reasons rule. A deny because nothing permitted has
	// no Cedar reasons. Sorted, so a decision is deterministic.
	Reasons []Reason `json:"reasons,omitempty"`
	// Errors lists evaluation errors. A decision with errors is a deny
	// unless the engine documents otherwise (Cedar ignores an erroring
	// permit policy, as the Cedar language specifies).
	Errors []EvalError `json:"errors,omitempty"`
}

// Reason is one policy that contributed to a decision.
type Reason struct {
	// Policy is the Cedar policy ID (its @id annotation, or file:line)
	// or, for Rego, the reasons rule's "policy" member if it gave one.
	Policy string `json:"policy,omitempty"`
	// Effect is "permit" or "forbid" for Cedar; empty for Rego.
	Effect string `json:"effect,omitempty"`
	// Message is a Rego reason's text (or its "message" member).
	Message string `json:"message,omitempty"`
}

// EvalError is an error raised while evaluating a policy.
type EvalError struct {
	// Policy is the policy that failed, when the engine knows it.
	Policy string `json:"policy,omitempty"`
	// Message describes the failure. It may name attributes and
	// policies, so show it to administrators, not to end users.
	Message string `json:"message"`
}

// deny returns a deny decision carrying err as its only error.
func deny(err error) Decision {
	return Decision{Errors: []EvalError{{Message: err.Error()}}}
}
