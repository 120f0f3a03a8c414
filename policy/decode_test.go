package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		want  Request
		field string // the RequestError's field, when an error is expected
		err   string // a substring of the error
	}{
		{
			name: "spec example",
			body: `{"subject":{"type":"user","id":"alice@acmecorp.com"},"resource":{"type":"account","id":"123"},"action":{"name":"can_read","properties":{"method":"GET"}},"context":{"time":"1985-10-26T01:22-07:00"}}`,
			want: Request{
				Subject:  Subject{Type: "user", ID: "alice@acmecorp.com"},
				Resource: Resource{Type: "account", ID: "123"},
				Action:   Action{Name: "can_read", Properties: map[string]any{"method": "GET"}},
				Context:  map[string]any{"time": "1985-10-26T01:22-07:00"},
			},
		},
		{
			name: "unknown members are ignored, numbers kept exact",
			body: `{"subject":{"type":"user","id":"a","extra":1,"properties":{"n":12345678901234567890}},"action":{"name":"r"},"resource":{"type":"t","id":"1"},"future":{"x":[1]}}`,
			want: Request{
				Subject:  Subject{Type: "user", ID: "a", Properties: map[string]any{"n": json.Number("12345678901234567890")}},
				Action:   Action{Name: "r"},
				Resource: Resource{Type: "t", ID: "1"},
			},
		},
		{name: "member names are case-sensitive", body: `{"Subject":{"type":"user","id":"a"},"action":{"name":"r"},"resource":{"type":"t","id":"1"}}`, field: "subject"},
		{name: "missing subject", body: `{"action":{"name":"r"},"resource":{"type":"t","id":"1"}}`, field: "subject"},
		{name: "missing resource", body: `{"subject":{"type":"user","id":"a"},"action":{"name":"r"}}`, field: "resource"},
		{name: "null action", body: `{"subject":{"type":"user","id":"a"},"action":null,"resource":{"type":"t","id":"1"}}`, field: "action"},
		{name: "missing subject id", body: `{"subject":{"type":"user"},"action":{"name":"r"},"resource":{"type":"t","id":"1"}}`, field: "subject.id"},
		{name: "empty resource type", body: `{"subject":{"type":"user","id":"a"},"action":{"name":"r"},"resource":{"type":"","id":"1"}}`, field: "resource.type"},
		{name: "subject as a string", body: `{"subject":"alice","action":{"name":"r"},"resource":{"type":"t","id":"1"}}`, field: "subject"},
		{name: "action name a number", body: `{"subject":{"type":"user","id":"a"},"action":{"name":123},"resource":{"type":"t","id":"1"}}`, field: "action.name"},
		{name: "properties an array", body: `{"subject":{"type":"user","id":"a","properties":[]},"action":{"name":"r"},"resource":{"type":"t","id":"1"}}`, field: "subject.properties"},
		{name: "context a string", body: `{"subject":{"type":"user","id":"a"},"action":{"name":"r"},"resource":{"type":"t","id":"1"},"context":"x"}`, field: "context"},
		{name: "context.token is reserved", body: `{"subject":{"type":"user","id":"a"},"action":{"name":"r"},"resource":{"type":"t","id":"1"},"context":{"token":{"scope":"admin"}}}`, field: "context.token"},
		{name: "empty body", body: ``, err: "is empty"},
		{name: "not JSON", body: `{"subject":`, err: "not valid JSON"},
		{name: "an array", body: `[]`, err: "not a JSON object"},
		{name: "two documents", body: `{} {}`, err: "data after"},
		{name: "too deep", body: `{"subject":{"type":"user","id":"a"},"action":{"name":"r"},"resource":{"type":"t","id":"1"},"context":{"a":` + strings.Repeat(`[`, 20) + strings.Repeat(`]`, 20) + `}}`, err: "nests deeper than 16"},
		{name: "too large", body: `{"context":"` + strings.Repeat("x", DefaultMaxBytes) + `"}`, err: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tt.body), Limits{})
			if tt.field == "" && tt.err == "" {
				if err != nil {
					t.Fatalf("DecodeRequest: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T), want a *RequestError", err, err)
			}
			if re.Field != tt.field || !strings.Contains(re.Error(), tt.err) {
				t.Errorf("error %q (field %q), want field %q and %q", re, re.Field, tt.field, tt.err)
			}
		})
	}
}

func TestJSONDepth(t *testing.T) {
	for body, want := range map[string]int{
		`1`:                         0,
		`{}`:                        1,
		`{"a":[{"b":[]}]}`:          4,
		`{"a":"[[[[{{{{"}`:          1,
		`{"a":"\"[[[","b":[]}`:      2,
		`{"a":"\\","b":[[]]}`:       3,
		`["\\\"[",{"x":"]]]]]]]"}]`: 2,
	} {
		if got := jsonDepth([]byte(body)); got != want {
			t.Errorf("jsonDepth(%s) = %d, want %d", body, got, want)
		}
	}
}

func TestDecodeEvaluations(t *testing.T) {
	body := `{"subject":{"type":"user","id":"bob"},"resource":{"type":"record","id":"record-1"},"context":{"ip":"10.0.0.1"},
		"evaluations":[{"action":{"name":"read"}},{"action":{"name":"write"},"context":{"ip":"10.0.0.2"}},{"subject":{"type":"user","id":"alice"}},{}],
		"options":{"evaluations_semantic":"deny_on_first_deny","other":true}}`
	b, err := DecodeEvaluations([]byte(body), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Semantic != DenyOnFirstDeny {
		t.Errorf("semantic %q", b.Semantic)
	}
	reqs, errs := b.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests", len(reqs))
	}
	want := Request{Subject: Subject{Type: "user", ID: "bob"}, Action: Action{Name: "write"},
		Resource: Resource{Type: "record", ID: "record-1"}, Context: map[string]any{"ip": "10.0.0.2"}}
	if diff := cmp.Diff(want, reqs[1]); diff != "" || errs[1] != nil {
		t.Errorf("item 1 (-want +got):\n%s%v", diff, errs[1])
	}
	if reqs[0].Action.Name != "read" || reqs[0].Context["ip"] != "10.0.0.1" || errs[0] != nil {
		t.Errorf("item 0 = %+v, %v", reqs[0], errs[0])
	}
	// Items 2 and 3 have no action, neither has the batch: invalid items,
	// not an invalid batch.
	for _, i := range []int{2, 3} {
		var re *RequestError
		if !errors.As(errs[i], &re) || re.Field != "evaluations["+string(rune('0'+i))+"].action.name" {
			t.Errorf("item %d error %v", i, errs[i])
		}
	}

	for name, body := range map[string]string{
		"unknown semantic":   `{"evaluations":[],"options":{"evaluations_semantic":"first"}}`,
		"evaluations object": `{"evaluations":{}}`,
		"item a string":      `{"evaluations":["x"]}`,
		"item subject wrong": `{"evaluations":[{"subject":"alice"}]}`,
		"too many":           `{"evaluations":[` + strings.Repeat(`{},`, DefaultMaxEvaluations) + `{}]}`,
	} {
		var re *RequestError
		if _, err := DecodeEvaluations([]byte(body), Limits{}); !errors.As(err, &re) {
			t.Errorf("%s: error %v, want a *RequestError", name, err)
		}
	}
}

// FuzzDecode feeds hostile bodies to both decoders: they must never
// panic, must return a RequestError for anything they refuse, and what
// they accept must be valid.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`,
		`{"subject":{"type":"user","id":"bob"},"resource":{"type":"record","id":"record-1"},"evaluations":[{"action":{"name":"read"}},{"action":{"name":"write"}}]}`,
		`{"subject":{"type":"user","id":"a","properties":{"n":1e400,"s":"\u0000","x":[null,{"__entity":{"type":"t","id":"i"}}]}},"action":{"name":"r"},"resource":{"type":"t","id":"1"},"context":{"a":{"b":{"c":[]}}}}`,
		`{"evaluations":[{}],"options":{"evaluations_semantic":"permit_on_first_permit"}}`,
		`[[[[[[[[[[[[[[[[[[[[`, `"\`, `{"a":"\\"}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		lim := Limits{MaxBytes: 4096, MaxDepth: 8, MaxEvaluations: 8}
		var re *RequestError
		r, err := DecodeRequest(body, lim)
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("DecodeRequest error %v is not a *RequestError", err)
		}
		if err == nil {
			if verr := r.Validate(); verr != nil {
				t.Fatalf("accepted an invalid request: %v", verr)
			}
		}
		b, err := DecodeEvaluations(body, lim)
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("DecodeEvaluations error %v is not a *RequestError", err)
		}
		if err == nil {
			if len(b.Evaluations) > lim.MaxEvaluations {
				t.Fatalf("accepted %d items", len(b.Evaluations))
			}
			b.Requests()
		}
	})
}
