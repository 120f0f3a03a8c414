package policy

import (
	"context"
	"errors"
	"fmt"
)

// Evaluation semantics of a batch (AuthZEN §7.1.2).
const (
	// ExecuteAll evaluates every item; the default.
	ExecuteAll = "execute_all"
	// DenyOnFirstDeny stops after the first deny and returns the
	// decisions so far, that deny included.
	DenyOnFirstDeny = "deny_on_first_deny"
	// PermitOnFirstPermit stops after the first permit.
	PermitOnFirstPermit = "permit_on_first_permit"
)

// EvaluationsRequest is an access evaluations (batch) request (§7.1). The
// top-level Subject, Action, Resource and Context are defaults that each
// item's own members override; an empty Evaluations list makes the
// request a single evaluation of the defaults.
type EvaluationsRequest struct {
	Subject     *Subject       `json:"subject,omitempty"`
	Action      *Action        `json:"action,omitempty"`
	Resource    *Resource      `json:"resource,omitempty"`
	Context     map[string]any `json:"context,omitempty"`
	Evaluations []Evaluation   `json:"evaluations,omitempty"`
	// Semantic is options.evaluations_semantic: ExecuteAll (also when
	// empty), DenyOnFirstDeny or PermitOnFirstPermit.
	Semantic string `json:"-"`

	// Token holds verified claims for every item, as in Request.Token.
	Token map[string]any `json:"-"`
}

// Evaluation is one item of a batch. A nil member takes the request's
// default; a non-nil Context replaces the default context as a whole.
type Evaluation struct {
	Subject  *Subject       `json:"subject,omitempty"`
	Action   *Action        `json:"action,omitempty"`
	Resource *Resource      `json:"resource,omitempty"`
	Context  map[string]any `json:"context,omitempty"`
}

// Requests expands the batch into one Request per item, defaults applied.
// An item that is invalid after expansion (a member missing from both the
// item and the defaults) gets a nil Request and its error in errs, so the
// caller can answer that item with a deny and go on (§7.2.1).
func (b *EvaluationsRequest) Requests() (reqs []Request, errs []error) {
	items := b.Evaluations
	if len(items) == 0 {
		items = []Evaluation{{}}
	}
	reqs = make([]Request, len(items))
	errs = make([]error, len(items))
	for i, it := range items {
		r := Request{Context: b.Context, Token: b.Token}
		if s := pick(it.Subject, b.Subject); s != nil {
			r.Subject = *s
		}
		if a := pick(it.Action, b.Action); a != nil {
			r.Action = *a
		}
		if res := pick(it.Resource, b.Resource); res != nil {
			r.Resource = *res
		}
		if it.Context != nil {
			r.Context = it.Context
		}
		if err := r.Validate(); err != nil {
			var re *RequestError
			if errors.As(err, &re) && len(b.Evaluations) > 0 {
				re.Field = fmt.Sprintf("evaluations[%d].%s", i, re.Field)
			}
			errs[i] = err
			continue
		}
		reqs[i] = r
	}
	return reqs, errs
}

// pick returns item unless it is nil or empty, else def. An empty object
// ("resource": {} in the Todo interop batch) means "not given".
func pick[T Subject | Action | Resource](item, def *T) *T {
	if item != nil && !isZero(item) {
		return item
	}
	return def
}

func isZero[T Subject | Action | Resource](v *T) bool {
	switch x := any(v).(type) {
	case *Subject:
		return x.Type == "" && x.ID == "" && len(x.Properties) == 0
	case *Resource:
		return x.Type == "" && x.ID == "" && len(x.Properties) == 0
	case *Action:
		return x.Name == "" && len(x.Properties) == 0
	}
	return false
}

// EvaluateBatch evaluates every item of b with e under b's semantics and
// returns the decisions in request order; a short-circuit semantic
// returns the truncated list (§7.1.2). An invalid item, or one whose
// evaluation fails, is a deny carrying the error (§7.2.1). The error is
// non-nil only when ctx is done; the decisions so far are returned with it.
func EvaluateBatch(ctx context.Context, e Engine, b *EvaluationsRequest) ([]Decision, error) {
	switch b.Semantic {
	case "", ExecuteAll, DenyOnFirstDeny, PermitOnFirstPermit:
	default:
		// DecodeEvaluations already refused this; a Go caller gets a
		// deny for every item rather than a guess.
		return nil, &RequestError{Field: "options.evaluations_semantic", Reason: "is not a known semantic"}
	}
	reqs, errs := b.Requests()
	out := make([]Decision, 0, len(reqs))
	for i, r := range reqs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		var d Decision
		if errs[i] != nil {
			d = deny(errs[i])
		} else {
			var err error
			d, err = e.Evaluate(ctx, r)
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					return out, ctxErr
				}
				d = deny(err)
			}
		}
		out = append(out, d)
		if (b.Semantic == DenyOnFirstDeny && !d.Allow) || (b.Semantic == PermitOnFirstPermit && d.Allow) {
			break
		}
	}
	return out, nil
}

// DecodeEvaluations parses an access evaluations request body (§7.1)
// within the limits. Items are not validated here: an incomplete item is a
// deny for that item alone (EvaluateBatch), not a 400 for the batch. Every
// failure is a *RequestError.
func DecodeEvaluations(body []byte, lim Limits) (*EvaluationsRequest, error) {
	lim = lim.withDefaults()
	obj, err := decodeObject(body, lim)
	if err != nil {
		return nil, err
	}
	b := &EvaluationsRequest{}
	if b.Subject, err = optional(subjectFrom(obj, "subject", false)); err != nil {
		return nil, err
	}
	if b.Action, err = optional(actionFrom(obj, "action", false)); err != nil {
		return nil, err
	}
	if b.Resource, err = optional(resourceFrom(obj, "resource", false)); err != nil {
		return nil, err
	}
	if b.Context, err = objectMember(obj, "context", "context"); err != nil {
		return nil, err
	}
	if err := decodeOptions(obj, b); err != nil {
		return nil, err
	}
	raw, ok := obj["evaluations"]
	if !ok || raw == nil {
		return b, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, &RequestError{Field: "evaluations", Reason: "must be an array"}
	}
	if len(list) > lim.MaxEvaluations {
		return nil, &RequestError{Field: "evaluations", Reason: fmt.Sprintf("has more than %d items", lim.MaxEvaluations)}
	}
	b.Evaluations = make([]Evaluation, len(list))
	for i, v := range list {
		field := fmt.Sprintf("evaluations[%d]", i)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, &RequestError{Field: field, Reason: "must be an object"}
		}
		it := &b.Evaluations[i]
		if it.Subject, err = optional(subjectFrom(m, field+".subject", false)); err != nil {
			return nil, err
		}
		if it.Action, err = optional(actionFrom(m, field+".action", false)); err != nil {
			return nil, err
		}
		if it.Resource, err = optional(resourceFrom(m, field+".resource", false)); err != nil {
			return nil, err
		}
		if it.Context, err = objectMember(m, "context", field+".context"); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func decodeOptions(obj map[string]any, b *EvaluationsRequest) error {
	opts, err := objectMember(obj, "options", "options")
	if err != nil || opts == nil {
		return err
	}
	if b.Semantic, err = stringMember(opts, "evaluations_semantic", "options.evaluations_semantic"); err != nil {
		return err
	}
	switch b.Semantic {
	case "", ExecuteAll, DenyOnFirstDeny, PermitOnFirstPermit:
		return nil
	}
	return &RequestError{Field: "options.evaluations_semantic", Reason: "must be execute_all, deny_on_first_deny or permit_on_first_permit"}
}

// optional turns a decoded member into a pointer: nil when it was absent
// (the zero value, since subjectFrom and friends return zero for absent).
func optional[T Subject | Action | Resource](v T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	if isZero(&v) {
		return nil, nil
	}
	return &v, nil
}
