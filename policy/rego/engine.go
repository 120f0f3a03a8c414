package rego

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	oparego "github.com/open-policy-agent/opa/v1/rego"

	"github.com/sigil-sts/sigil/policy"
)

// Engine evaluates AuthZEN requests with a prepared Rego query. Build one
// with Load. It is immutable and safe for concurrent use.
type Engine struct {
	query     oparego.PreparedEvalQuery
	now       func() time.Time
	modules   []string
	queryText string
}

var _ policy.Engine = (*Engine)(nil)

// Modules returns the file names of the loaded modules, sorted.
func (e *Engine) Modules() []string { return slices.Clone(e.modules) }

// String describes the engine for logs.
func (e *Engine) String() string {
	return fmt.Sprintf("rego: %d modules, query %s", len(e.modules), e.queryText)
}

// Evaluate implements policy.Engine; the package documentation describes
// the input and the decision.
func (e *Engine) Evaluate(ctx context.Context, req policy.Request) (policy.Decision, error) {
	if err := req.Validate(); err != nil {
		return policy.Decision{}, err
	}
	if err := ctx.Err(); err != nil {
		return policy.Decision{}, err
	}
	input, err := inputValue(&req)
	if err != nil {
		return policy.Decision{}, err
	}
	rs, err := e.query.Eval(ctx, oparego.EvalParsedInput(input), oparego.EvalTime(e.now()))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return policy.Decision{}, ctxErr
		}
		return policy.Decision{Errors: []policy.EvalError{{Policy: e.queryText, Message: err.Error()}}}, nil
	}
	if len(rs) != 1 {
		return policy.Decision{Errors: []policy.EvalError{{Policy: e.queryText, Message: "the decision query has no result"}}}, nil
	}
	var d policy.Decision
	d.Reasons = reasons(rs[0].Bindings["__reasons__"])
	switch allow, _ := rs[0].Bindings["__allow__"].([]any); {
	case len(allow) == 0:
		// Undefined: deny, as the default rule would.
	case len(allow) == 1:
		b, ok := allow[0].(bool)
		if !ok {
			d.Errors = append(d.Errors, policy.EvalError{Policy: e.queryText, Message: fmt.Sprintf("the decision is a %T, not a boolean", allow[0])})
		}
		d.Allow = ok && b
	default:
		d.Errors = append(d.Errors, policy.EvalError{Policy: e.queryText, Message: "the decision has more than one value"})
	}
	return d, nil
}

// reasons converts the reasons document's elements.
func reasons(v any) []policy.Reason {
	list, _ := v.([]any)
	if len(list) == 0 {
		return nil
	}
	out := make([]policy.Reason, 0, len(list))
	for _, r := range list {
		switch x := r.(type) {
		case string:
			out = append(out, policy.Reason{Message: x})
		case map[string]any:
			p, _ := x["policy"].(string)
			m, _ := x["message"].(string)
			out = append(out, policy.Reason{Policy: p, Message: m})
		default:
			b, _ := json.Marshal(x)
			out = append(out, policy.Reason{Message: string(b)})
		}
	}
	return out
}

// maxValueDepth bounds conversion; see the same constant in policy/cedar.
const maxValueDepth = 64

// inputValue builds input without reflection or a JSON round trip.
func inputValue(r *policy.Request) (ast.Value, error) {
	obj := ast.NewObject()
	subject, err := entity("subject", "type", r.Subject.Type, "id", r.Subject.ID, r.Subject.Properties)
	if err != nil {
		return nil, err
	}
	action, err := entity("action", "name", r.Action.Name, "", "", r.Action.Properties)
	if err != nil {
		return nil, err
	}
	resource, err := entity("resource", "type", r.Resource.Type, "id", r.Resource.ID, r.Resource.Properties)
	if err != nil {
		return nil, err
	}
	obj.Insert(ast.InternedTerm("subject"), subject)
	obj.Insert(ast.InternedTerm("action"), action)
	obj.Insert(ast.InternedTerm("resource"), resource)
	for _, m := range []struct {
		name string
		v    map[string]any
	}{{"context", r.Context}, {policy.TokenKey, r.Token}} {
		if m.v == nil {
			continue
		}
		v, err := value(m.v, 1)
		if err != nil {
			return nil, &policy.RequestError{Field: m.name, Reason: "has a value Rego cannot represent", Err: err}
		}
		obj.Insert(ast.InternedTerm(m.name), ast.NewTerm(v))
	}
	return obj, nil
}

func entity(field, k1, v1, k2, v2 string, props map[string]any) (*ast.Term, error) {
	o := ast.NewObject([2]*ast.Term{ast.InternedTerm(k1), ast.StringTerm(v1)})
	if k2 != "" {
		o.Insert(ast.InternedTerm(k2), ast.StringTerm(v2))
	}
	if props != nil {
		v, err := value(props, 2)
		if err != nil {
			return nil, &policy.RequestError{Field: field + ".properties", Reason: "has a value Rego cannot represent", Err: err}
		}
		o.Insert(ast.InternedTerm("properties"), ast.NewTerm(v))
	}
	return ast.NewTerm(o), nil
}

// value converts a JSON value (UseNumber, or built in Go) to a Rego value.
func value(v any, depth int) (ast.Value, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("value nests deeper than %d levels", maxValueDepth)
	}
	switch x := v.(type) {
	case nil:
		return ast.Null{}, nil
	case string:
		return ast.String(x), nil
	case bool:
		return ast.Boolean(x), nil
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return nil, fmt.Errorf("number %.40q is out of range", string(x))
		}
		return ast.Number(x), nil
	case int:
		return ast.Number(strconv.Itoa(x)), nil
	case int64:
		return ast.Number(strconv.FormatInt(x, 10)), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("number %v is not a JSON value", x)
		}
		return ast.Number(strconv.FormatFloat(x, 'g', -1, 64)), nil
	case []string:
		ts := make([]*ast.Term, len(x))
		for i, s := range x {
			ts[i] = ast.StringTerm(s)
		}
		return ast.NewArray(ts...), nil
	case []any:
		ts := make([]*ast.Term, len(x))
		for i, e := range x {
			ev, err := value(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			ts[i] = ast.NewTerm(ev)
		}
		return ast.NewArray(ts...), nil
	case map[string]any:
		o := ast.NewObjectWithCapacity(len(x))
		for k, e := range x {
			ev, err := value(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			o.Insert(ast.StringTerm(k), ast.NewTerm(ev))
		}
		return o, nil
	case map[string]string:
		o := ast.NewObjectWithCapacity(len(x))
		for k, s := range x {
			o.Insert(ast.StringTerm(k), ast.StringTerm(s))
		}
		return o, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}
