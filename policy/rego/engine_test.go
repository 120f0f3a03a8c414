package rego

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sigil-sts/sigil/policy"
)

func files(kv ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return m
}

func request(action string, props, context map[string]any) policy.Request {
	return policy.Request{
		Subject:  policy.Subject{Type: "user", ID: "alice", Properties: props},
		Action:   policy.Action{Name: action},
		Resource: policy.Resource{Type: "doc", ID: "d1"},
		Context:  context,
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name         string
		fsys         fstest.MapFS
		file         string
		line, column int
		want         string
	}{
		{
			name: "syntax error",
			fsys: files("authz/a.rego", "package sigil.authz\n\nallow if {\n  input.x ==\n}\n"),
			file: "authz/a.rego", line: 5, column: 1, want: "rego_parse_error: unexpected } token",
		},
		{
			name: "compile error: unknown function",
			fsys: files("a.rego", "package sigil.authz\n\nallow if nosuch(input.x)\n"),
			file: "a.rego", line: 3, column: 10, want: "rego_type_error: undefined function nosuch",
		},
		{
			name: "network built-in refused",
			fsys: files("a.rego", "package sigil.authz\n\nallow if http.send({\"method\": \"GET\", \"url\": \"http://example.com\"}).status_code == 200\n"),
			file: "a.rego", line: 3, want: "undefined function http.send",
		},
		{
			name: "environment built-in refused",
			fsys: files("a.rego", "package sigil.authz\n\nallow if opa.runtime().env.HOME\n"),
			file: "a.rego", line: 3, want: "undefined function opa.runtime",
		},
		{
			name: "broken data",
			fsys: files("a.rego", "package sigil.authz\nallow := true\n", "x/data.json", "{"),
			file: "x/data.json", want: "x/data.json: ",
		},
		{
			name: "data document not an object",
			fsys: files("a.rego", "package sigil.authz\nallow := true\n", "data.json", "[1]"),
			file: "data.json", want: "data.json: a data document must be a JSON object",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.fsys, Options{})
			var le *policy.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %v (%T), want a *policy.LoadError", err, err)
			}
			if le.File != tt.file || le.Line != tt.line || (tt.column != 0 && le.Column != tt.column) || !strings.Contains(le.Error(), tt.want) {
				t.Errorf("error %q at %s:%d:%d, want %q at %s:%d:%d", le, le.File, le.Line, le.Column, tt.want, tt.file, tt.line, tt.column)
			}
		})
	}
	if _, err := Load(files("a.cedar", "permit(principal, action, resource);"), Options{}); err == nil {
		t.Error("a source without modules loaded")
	}
	if _, err := Load(files("a.rego", "package p\nallow := true\n"), Options{Query: "allow; true"}); err == nil {
		t.Error("a query that is not a data reference was accepted")
	}
}

func TestEvaluate(t *testing.T) {
	fixed := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	e, err := Load(files(
		"authz.rego", `package sigil.authz

default allow := false

allow if count(reasons) > 0

reasons contains {"policy": "scope", "message": "token grants read:files"} if {
	input.action.name == "read"
	"read:files" in split(input.token.scope, " ")
	input.token.sub == input.subject.id
}

reasons contains "business hours" if {
	input.action.name == "write"
	data.config.open <= time.clock(time.now_ns())[0]
	time.clock(time.now_ns())[0] < data.config.close
}

reasons contains sprintf("department %s", [input.subject.properties.department]) if {
	input.action.name == "audit"
	input.subject.properties.department in data.config.auditors
	input.context.level >= 2
}
`,
		"config/data.json", `{"open": 9, "close": 17, "auditors": ["finance"]}`,
	), Options{Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		req    policy.Request
		allow  bool
		reason policy.Reason
	}{
		{"token claims", withToken(request("read", nil, nil), map[string]any{"sub": "alice", "scope": "openid read:files"}), true, policy.Reason{Policy: "scope", Message: "token grants read:files"}},
		{"token for someone else", withToken(request("read", nil, nil), map[string]any{"sub": "bob", "scope": "read:files"}), false, policy.Reason{}},
		{"no token", request("read", nil, nil), false, policy.Reason{}},
		{"injected clock", request("write", nil, nil), true, policy.Reason{Message: "business hours"}},
		{"properties, context and data", request("audit", map[string]any{"department": "finance"}, map[string]any{"level": json.Number("2")}), true, policy.Reason{Message: "department finance"}},
		{"context too low", request("audit", map[string]any{"department": "finance"}, map[string]any{"level": 1}), false, policy.Reason{}},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Evaluate(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow || len(d.Errors) != 0 {
				t.Fatalf("decision %+v, want allow=%v", d, tt.allow)
			}
			if tt.allow && (len(d.Reasons) != 1 || d.Reasons[0] != tt.reason) {
				t.Errorf("reasons %+v, want %+v", d.Reasons, tt.reason)
			}
		})
	}
}

// TestFailClosed covers the ways a Rego decision can be something other
// than a clean true.
func TestFailClosed(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		module string
		opts   Options
		errors bool
	}{
		{"undefined decision", "package sigil.authz\nallow if input.action.name == \"never\"\n", Options{}, false},
		{"non-boolean decision", "package sigil.authz\nallow := \"yes\"\n", Options{}, true},
		{"conflicting complete rules", "package sigil.authz\nallow := true if input.subject.id == \"alice\"\nallow := false if input.resource.id == \"d1\"\n", Options{}, true},
		// With lax built-in errors to_number would make the forbid
		// undefined and the allow stand.
		{"built-in error", "package sigil.authz\nallow if not forbidden\nforbidden if to_number(input.subject.id) > 0\n", Options{}, true},
		{"other query", "package acme\nallow := true\n", Options{Query: "data.acme.deny"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Load(files("a.rego", tt.module), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.Evaluate(ctx, request("read", nil, nil))
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow || (len(d.Errors) > 0) != tt.errors {
				t.Errorf("decision %+v, want a deny (errors: %v)", d, tt.errors)
			}
		})
	}
}

func TestEvaluateRejectsBadValues(t *testing.T) {
	e, err := Load(files("a.rego", "package sigil.authz\nallow := true\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	ctx := context.Background()
	for name, tt := range map[string]struct {
		req   policy.Request
		field string
	}{
		"cyclic map":         {request("read", nil, cyclic), "context"},
		"unsupported type":   {request("read", map[string]any{"f": func() {}}, nil), "subject.properties"},
		"bad number":         {request("read", nil, map[string]any{"n": json.Number("1e99999")}), "context"},
		"reserved token key": {request("read", nil, map[string]any{"token": map[string]any{"sub": "alice"}}), "context.token"},
	} {
		d, err := e.Evaluate(ctx, tt.req)
		var re *policy.RequestError
		if !errors.As(err, &re) || re.Field != tt.field || d.Allow {
			t.Errorf("%s: %+v, %v; want a *RequestError on %s", name, d, err, tt.field)
		}
	}
}

func TestEvaluateCanceled(t *testing.T) {
	e, err := Load(files("a.rego", "package sigil.authz\nallow := true\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d, err := e.Evaluate(ctx, request("read", nil, nil)); !errors.Is(err, context.Canceled) || d.Allow {
		t.Errorf("%+v, %v", d, err)
	}
}

func withToken(r policy.Request, claims map[string]any) policy.Request {
	r.Token = claims
	return r
}
