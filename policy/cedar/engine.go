package cedar

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	cedargo "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/sigil-sts/sigil/policy"
)

// Engine evaluates AuthZEN requests against a Cedar policy set. Build one
// with Load. It is immutable and safe for concurrent use.
type Engine struct {
	policies  *cedargo.PolicySet
	effects   map[cedargo.PolicyID]types.Effect
	entities  types.EntityMap
	validator *validate.Validator // nil without a schema
	namespace string
	ids       []string
}

var _ policy.Engine = (*Engine)(nil)

// PolicyIDs returns the IDs of the loaded policies in load order.
func (e *Engine) PolicyIDs() []string { return slices.Clone(e.ids) }

// HasSchema reports whether policies were validated against a schema.
func (e *Engine) HasSchema() bool { return e.validator != nil }

// Evaluate implements policy.Engine; the package documentation describes
// the mapping and the decision.
func (e *Engine) Evaluate(ctx context.Context, req policy.Request) (policy.Decision, error) {
	if err := req.Validate(); err != nil {
		return policy.Decision{}, err
	}
	if err := ctx.Err(); err != nil {
		return policy.Decision{}, err
	}
	in, err := e.request(&req)
	if err != nil {
		return policy.Decision{}, err
	}
	if e.validator != nil {
		if err := e.validator.Request(in.req); err != nil {
			return policy.Decision{Errors: []policy.EvalError{{
				Message: "the request does not conform to the schema: " + err.Error(),
			}}}, nil
		}
	}
	if req.Token != nil {
		claims, err := tokenRecord(req.Token)
		if err != nil {
			return policy.Decision{}, &policy.RequestError{Field: "token", Reason: "has a claim Cedar cannot represent", Err: err}
		}
		rm := maps.Collect(in.req.Context.All())
		if rm == nil {
			rm = types.RecordMap{}
		}
		rm[policy.TokenKey] = claims
		in.req.Context = types.NewRecord(rm)
	}
	dec, diag := e.policies.IsAuthorized(&in.entities, in.req)
	return e.decision(dec, diag), nil
}

// tokenRecord converts verified claims. The space-delimited "scope" claim
// (RFC 8693 §4.2, RFC 9068 §2.2.3) becomes a set of scopes: Cedar cannot
// split strings, and `scope.contains("read:files")` is exact where a
// `like "*read:files*"` pattern would also match "read:filesystem".
func tokenRecord(claims map[string]any) (types.Record, error) {
	scope, ok := claims["scope"].(string)
	if !ok {
		return record(claims, 1)
	}
	rest := maps.Clone(claims)
	delete(rest, "scope")
	r, err := record(rest, 1)
	if err != nil {
		return types.Record{}, err
	}
	fields := strings.Fields(scope)
	vs := make([]types.Value, len(fields))
	for i, f := range fields {
		vs[i] = types.String(f)
	}
	rm := maps.Collect(r.All())
	if rm == nil {
		rm = types.RecordMap{}
	}
	rm["scope"] = types.NewSet(vs...)
	return types.NewRecord(rm), nil
}

// decision turns Cedar's answer into a policy.Decision, denying when a
// forbid policy errored (see the package documentation).
func (e *Engine) decision(dec types.Decision, diag types.Diagnostic) policy.Decision {
	d := policy.Decision{Allow: dec == types.Allow}
	for _, r := range diag.Reasons {
		effect := "permit"
		if e.effects[r.PolicyID] == types.Forbid {
			effect = "forbid"
		}
		d.Reasons = append(d.Reasons, policy.Reason{Policy: string(r.PolicyID), Effect: effect})
	}
	for _, de := range diag.Errors {
		if e.effects[de.PolicyID] == types.Forbid {
			// Fail closed: a forbid that could not be evaluated might
			// have applied.
			d.Allow = false
		}
		d.Errors = append(d.Errors, policy.EvalError{Policy: string(de.PolicyID), Message: de.Message})
	}
	slices.SortFunc(d.Reasons, func(a, b policy.Reason) int { return cmp.Compare(a.Policy, b.Policy) })
	slices.SortFunc(d.Errors, func(a, b policy.EvalError) int { return cmp.Compare(a.Policy, b.Policy) })
	return d
}

// input is a request in Cedar's terms.
type input struct {
	req      types.Request
	entities overlay
}

func (e *Engine) request(r *policy.Request) (*input, error) {
	in := &input{}
	in.req.Principal = types.NewEntityUID(e.typeName(r.Subject.Type), types.String(r.Subject.ID))
	in.req.Action = types.NewEntityUID(e.typeName("Action"), types.String(r.Action.Name))
	in.req.Resource = types.NewEntityUID(e.typeName(r.Resource.Type), types.String(r.Resource.ID))
	var err error
	if in.req.Context, err = record(r.Context, 1); err != nil {
		return nil, &policy.RequestError{Field: "context", Reason: "has a value Cedar cannot represent", Err: err}
	}
	in.entities.static = e.entities
	parts := []struct {
		uid   types.EntityUID
		props map[string]any
		field string
	}{
		{in.req.Principal, r.Subject.Properties, "subject.properties"},
		{in.req.Action, r.Action.Properties, "action.properties"},
		{in.req.Resource, r.Resource.Properties, "resource.properties"},
	}
	for _, p := range parts {
		attrs, err := record(p.props, 1)
		if err != nil {
			return nil, &policy.RequestError{Field: p.field, Reason: "has a value Cedar cannot represent", Err: err}
		}
		in.entities.add(p.uid, attrs)
	}
	return in, nil
}

func (e *Engine) typeName(t string) types.EntityType {
	if e.namespace == "" {
		return types.EntityType(t)
	}
	return types.EntityType(e.namespace + "::" + t)
}

// overlay is the entity store of one request: the principal, action and
// resource built from the request over the entities loaded from files.
// It avoids copying the loaded entities for every request.
type overlay struct {
	static types.EntityMap
	n      int
	own    [3]types.Entity
}

// add records a request entity. A loaded entity of the same UID keeps its
// parents and attributes; the request's attributes only fill in names it
// lacks. Two request entities of one UID (a subject acting on itself)
// merge the same way, the first one winning.
func (o *overlay) add(uid types.EntityUID, attrs types.Record) {
	for i := 0; i < o.n; i++ {
		if o.own[i].UID == uid {
			o.own[i].Attributes = merge(o.own[i].Attributes, attrs)
			return
		}
	}
	ent, ok := o.static[uid]
	if ok {
		if attrs.Len() == 0 {
			return // the loaded entity serves as it is
		}
		ent.Attributes = merge(ent.Attributes, attrs)
	} else {
		ent = types.Entity{UID: uid, Attributes: attrs}
	}
	o.own[o.n] = ent
	o.n++
}

// Get implements types.EntityGetter.
func (o *overlay) Get(uid types.EntityUID) (types.Entity, bool) {
	for i := 0; i < o.n; i++ {
		if o.own[i].UID == uid {
			return o.own[i], true
		}
	}
	ent, ok := o.static[uid]
	return ent, ok
}

// merge returns base with the members of extra that base lacks.
func merge(base, extra types.Record) types.Record {
	if extra.Len() == 0 {
		return base
	}
	if base.Len() == 0 {
		return extra
	}
	rm := maps.Collect(base.All())
	for k, v := range extra.All() {
		if _, ok := rm[k]; !ok {
			rm[k] = v
		}
	}
	return types.NewRecord(rm)
}

func sortedUIDs(m types.EntityMap) []types.EntityUID {
	uids := slices.Collect(maps.Keys(m))
	slices.SortFunc(uids, func(a, b types.EntityUID) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID))
	})
	return uids
}

// String describes the engine for logs: how many policies and entities,
// and whether a schema validated them.
func (e *Engine) String() string {
	schema := "no schema"
	if e.validator != nil {
		schema = "schema-validated"
	}
	return fmt.Sprintf("cedar: %d policies, %d entities, %s", len(e.ids), len(e.entities), schema)
}
