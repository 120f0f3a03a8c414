package cedar

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sigil-sts/sigil/policy"
)

func files(kv ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return m
}

func mustLoad(t *testing.T, fsys fstest.MapFS) *Engine {
	t.Helper()
	e, err := Load(fsys, Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return e
}

func TestLoadErrors(t *testing.T) {
	const schema = `entity user { dept: String }; entity doc; action read appliesTo { principal: user, resource: doc };`
	tests := []struct {
		name   string
		fsys   fstest.MapFS
		want   string // the LoadError's text, or a prefix of it
		file   string
		line   int
		column int
	}{
		{
			name: "syntax error",
			fsys: files("a.cedar", "permit(principal, action, resource);\n\npermit(principal, action, resource) when { principal.x == };\n"),
			file: "a.cedar", line: 3, column: 60, want: "a.cedar:3:60: parse error at",
		},
		{
			name: "unterminated string",
			fsys: files("p/b.cedar", "permit(principal, action, resource)\n when { \"abc"),
			file: "p/b.cedar", line: 2, column: 9, want: "p/b.cedar:2:9: literal not terminated",
		},
		{
			name: "schema syntax error",
			fsys: files("a.cedar", "permit(principal, action, resource);", "s.cedarschema", "entity User;\n\nentity Photo { owner User };"),
			file: "s.cedarschema", line: 3, column: 22, want: "s.cedarschema:3:22: expected ':'",
		},
		{
			name: "unknown attribute against the schema",
			fsys: files("s.cedarschema", schema, "a.cedar", "@id(\"dept\")\npermit(principal is user, action == Action::\"read\", resource)\nwhen { principal.department == \"eng\" };"),
			file: "a.cedar", line: 1, column: 1, want: `a.cedar:1:1: policy "dept" does not validate against s.cedarschema`,
		},
		{
			name: "unknown action against the schema",
			fsys: files("s.cedarschema", schema, "a.cedar", "permit(principal, action == Action::\"write\", resource);"),
			file: "a.cedar", line: 1, column: 1, want: `a.cedar:1:1: policy "a.cedar:1" does not validate`,
		},
		{
			name: "entity that does not fit the schema",
			fsys: files("s.cedarschema", schema, "a.cedar", "permit(principal, action, resource);",
				"u.entities.json", `[{"uid":{"type":"user","id":"alice"},"attrs":{"dept":7},"parents":[]}]`),
			file: "u.entities.json", want: `u.entities.json: entity user::"alice" does not validate`,
		},
		{
			name: "duplicate policy id",
			fsys: files("a.cedar", "@id(\"p\")\npermit(principal, action, resource);\n@id(\"p\")\nforbid(principal, action, resource);"),
			file: "a.cedar", line: 3, column: 1, want: `a.cedar:3:1: policy id "p" is already used at a.cedar:1`,
		},
		{
			name: "two schemas",
			fsys: files("a.cedar", "permit(principal, action, resource);", "a.cedarschema", schema, "b.cedarschema.json", "{}"),
			file: "b.cedarschema.json", want: "b.cedarschema.json: a second schema",
		},
		{
			name: "broken entities file",
			fsys: files("a.cedar", "permit(principal, action, resource);", "e.entities.json", `[{"uid":`),
			file: "e.entities.json", want: "e.entities.json: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.fsys, Options{})
			var le *policy.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %v (%T), want a *policy.LoadError", err, err)
			}
			if le.File != tt.file || le.Line != tt.line || le.Column != tt.column || !strings.HasPrefix(le.Error(), tt.want) {
				t.Errorf("error %q at %s:%d:%d, want %q at %s:%d:%d", le, le.File, le.Line, le.Column, tt.want, tt.file, tt.line, tt.column)
			}
		})
	}

	if _, err := Load(files("README.md", "no policies"), Options{}); err == nil || !strings.Contains(err.Error(), "no policies") {
		t.Errorf("empty source: %v", err)
	}
	// Hidden files (editor backups, .git) are not read.
	e, err := Load(files("a.cedar", "permit(principal, action, resource);", ".a.cedar.swp.cedar", "garbage", ".git/x.cedar", "garbage"), Options{})
	if err != nil || len(e.PolicyIDs()) != 1 {
		t.Errorf("hidden files: %v", err)
	}
}

func request(subjectProps, resourceProps, context map[string]any) policy.Request {
	return policy.Request{
		Subject:  policy.Subject{Type: "user", ID: "alice", Properties: subjectProps},
		Action:   policy.Action{Name: "read"},
		Resource: policy.Resource{Type: "doc", ID: "d1", Properties: resourceProps},
		Context:  context,
	}
}

func TestEvaluateMapping(t *testing.T) {
	e := mustLoad(t, files(
		"p.cedar", `
@id("props") permit(principal is user, action == Action::"read", resource is doc)
  when { principal has level && principal.level >= 3 && resource has owner && resource.owner == principal };
@id("decimal") permit(principal, action, resource)
  when { context has score && context.score.greaterThan(decimal("0.5")) };
@id("token") permit(principal, action, resource)
  when { context has token && context.token.scope.contains("read:files") && context.token.sub == principal.sub };
@id("directory") permit(principal, action, resource)
  when { principal in group::"admins" };
@id("forbid-banned") forbid(principal, action, resource)
  when { principal has banned && principal.banned };`,
		"d.entities.json", `[
  {"uid":{"type":"user","id":"root"},"attrs":{"sub":"root","banned":false},"parents":[{"type":"group","id":"admins"}]},
  {"uid":{"type":"group","id":"admins"},"attrs":{},"parents":[]}]`,
	))
	owner := map[string]any{"__entity": map[string]any{"type": "user", "id": "alice"}}
	tests := []struct {
		name   string
		req    policy.Request
		allow  bool
		reason string
	}{
		{"properties become attributes", request(map[string]any{"level": 3}, map[string]any{"owner": owner}, nil), true, "props"},
		{"numbers from JSON", request(map[string]any{"level": jsonNumber("4")}, map[string]any{"owner": owner}, nil), true, "props"},
		{"too low a level", request(map[string]any{"level": 2}, map[string]any{"owner": owner}, nil), false, ""},
		{"decimal context", request(nil, nil, map[string]any{"score": jsonNumber("0.75")}), true, "decimal"},
		{"float context", request(nil, nil, map[string]any{"score": 0.25}), false, ""},
		{"token claims", withToken(request(map[string]any{"sub": "alice"}, nil, nil), map[string]any{"sub": "alice", "scope": []any{"read:files"}}), true, "token"},
		{"token for someone else", withToken(request(map[string]any{"sub": "alice"}, nil, nil), map[string]any{"sub": "bob", "scope": []string{"read:files"}}), false, ""},
		{"no token", request(map[string]any{"sub": "alice"}, nil, nil), false, ""},
		{"entities from files", rootRequest(nil), true, "directory"},
		// The directory's attributes win over the request's: the caller
		// cannot un-ban a user or change who they are.
		{"file attributes win", rootRequest(map[string]any{"banned": true}), true, "directory"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Evaluate(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow {
				t.Fatalf("decision %+v, want allow=%v", d, tt.allow)
			}
			if tt.reason != "" && (len(d.Reasons) != 1 || d.Reasons[0].Policy != tt.reason || d.Reasons[0].Effect != "permit") {
				t.Errorf("reasons %+v, want %q", d.Reasons, tt.reason)
			}
		})
	}
}

func jsonNumber(s string) json.Number { return json.Number(s) }

func withToken(r policy.Request, claims map[string]any) policy.Request {
	r.Token = claims
	return r
}

func rootRequest(props map[string]any) policy.Request {
	r := request(props, nil, nil)
	r.Subject.ID = "root"
	return r
}

// TestForbidErrorDenies checks the one place this engine is stricter than
// Cedar: a forbid policy that errors denies instead of being skipped.
func TestForbidErrorDenies(t *testing.T) {
	e := mustLoad(t, files("p.cedar", `
@id("all") permit(principal, action, resource);
@id("no-interns") forbid(principal, action, resource) when { principal.role == "intern" };
@id("broken-permit") permit(principal, action, resource) when { principal.nope };`))
	ctx := context.Background()
	// No role attribute: the forbid errors.
	d, err := e.Evaluate(ctx, request(nil, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || len(d.Errors) != 2 {
		t.Fatalf("decision %+v, want a deny with both policy errors", d)
	}
	if d.Errors[0].Policy != "broken-permit" || d.Errors[1].Policy != "no-interns" {
		t.Errorf("errors not sorted by policy: %+v", d.Errors)
	}
	// With the attribute the forbid evaluates; the erroring permit alone
	// does not block an allow, as in Cedar.
	d, _ = e.Evaluate(ctx, request(map[string]any{"role": "staff"}, nil, nil))
	if !d.Allow || len(d.Errors) != 1 {
		t.Errorf("decision %+v, want allow with the permit's error", d)
	}
	d, _ = e.Evaluate(ctx, request(map[string]any{"role": "intern"}, nil, nil))
	if d.Allow || len(d.Reasons) != 1 || d.Reasons[0] != (policy.Reason{Policy: "no-interns", Effect: "forbid"}) {
		t.Errorf("decision %+v, want a deny by no-interns", d)
	}
}

func TestSchemaRequestValidation(t *testing.T) {
	e := mustLoad(t, files(
		"s.cedarschema", `entity user; entity doc; action read appliesTo { principal: user, resource: doc, context: { ip?: String, token?: { sub: String } } };`,
		"p.cedar", `permit(principal is user, action == Action::"read", resource is doc) when { context has token && context.token.sub == "alice" };`,
	))
	if !e.HasSchema() {
		t.Fatal("schema not loaded")
	}
	ctx := context.Background()
	ok := withToken(request(nil, nil, map[string]any{"ip": "10.0.0.1"}), map[string]any{"sub": "alice"})
	if d, err := e.Evaluate(ctx, ok); err != nil || !d.Allow {
		t.Fatalf("conforming request: %+v, %v", d, err)
	}
	for name, r := range map[string]policy.Request{
		"unknown action":       func() policy.Request { r := ok; r.Action.Name = "fly"; return r }(),
		"wrong principal type": func() policy.Request { r := ok; r.Subject.Type = "robot"; return r }(),
		"context of wrong type": func() policy.Request {
			r := ok
			r.Context = map[string]any{"ip": 10}
			return r
		}(),
	} {
		d, err := e.Evaluate(ctx, r)
		if err != nil || d.Allow || len(d.Errors) != 1 || !strings.Contains(d.Errors[0].Message, "does not conform to the schema") {
			t.Errorf("%s: %+v, %v; want a deny with a schema error", name, d, err)
		}
	}
}

func TestEvaluateRejectsBadValues(t *testing.T) {
	e := mustLoad(t, files("p.cedar", `permit(principal, action, resource);`))
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	ctx := context.Background()
	for name, tt := range map[string]struct {
		req   policy.Request
		field string
	}{
		"null in a set":      {request(map[string]any{"tags": []any{"a", nil}}, nil, nil), "subject.properties"},
		"huge number":        {request(nil, map[string]any{"n": jsonNumber("1e400")}, nil), "resource.properties"},
		"too precise":        {request(nil, nil, map[string]any{"n": jsonNumber("0.123456789")}), "context"},
		"cyclic map":         {request(nil, nil, cyclic), "context"},
		"unsupported type":   {request(nil, nil, map[string]any{"c": make(chan int)}), "context"},
		"bad entity escape":  {request(nil, nil, map[string]any{"e": map[string]any{"__entity": "x"}}), "context"},
		"reserved token key": {request(nil, nil, map[string]any{"token": "forged"}), "context.token"},
	} {
		d, err := e.Evaluate(ctx, tt.req)
		var re *policy.RequestError
		if !errors.As(err, &re) || re.Field != tt.field || d.Allow {
			t.Errorf("%s: %+v, %v; want a *RequestError on %s", name, d, err, tt.field)
		}
	}
}

func TestNamespace(t *testing.T) {
	e, err := Load(files("p.cedar", `permit(principal is Acme::user, action == Acme::Action::"read", resource is Acme::doc);`), Options{Namespace: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Evaluate(context.Background(), request(nil, nil, nil)); !d.Allow {
		t.Errorf("namespaced request denied: %+v", d)
	}
}
