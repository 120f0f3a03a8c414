package policy_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/sigil-sts/sigil/policy"
	"github.com/sigil-sts/sigil/policy/cedar"
	"github.com/sigil-sts/sigil/policy/rego"
)

// engines loads the Todo policy set in both languages.
func engines(t testing.TB) map[string]policy.Engine {
	t.Helper()
	fsys := os.DirFS("testdata/todo")
	c, err := cedar.Load(fsys, cedar.Options{})
	if err != nil {
		t.Fatalf("cedar.Load: %v", err)
	}
	r, err := rego.Load(fsys, rego.Options{})
	if err != nil {
		t.Fatalf("rego.Load: %v", err)
	}
	return map[string]policy.Engine{"cedar": c, "rego": r}
}

// decisionsFile is the shape of testdata/todo/decisions.json, which is
// that of the AuthZEN interop decisions files.
type decisionsFile struct {
	Evaluation []struct {
		Request  json.RawMessage `json:"request"`
		Expected bool            `json:"expected"`
	} `json:"evaluation"`
	Evaluations []struct {
		Request  json.RawMessage `json:"request"`
		Expected []struct {
			Decision bool `json:"decision"`
		} `json:"expected"`
	} `json:"evaluations"`
}

func loadDecisions(t testing.TB) decisionsFile {
	t.Helper()
	raw, err := os.ReadFile("testdata/todo/decisions.json")
	if err != nil {
		t.Fatal(err)
	}
	var f decisionsFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Evaluation) != 40 || len(f.Evaluations) != 3 {
		t.Fatalf("decisions.json has %d evaluation and %d evaluations cases, want 40 and 3", len(f.Evaluation), len(f.Evaluations))
	}
	return f
}

// names returns the reasons of d as one list of names: Cedar policy IDs,
// Rego messages. The Todo policies use the same names in both languages.
func names(d policy.Decision) []string {
	var out []string
	for _, r := range d.Reasons {
		out = append(out, r.Policy+r.Message)
	}
	return out
}

// TestTodoInterop runs every decision of the AuthZEN Todo interop scenario
// against both engines, decoding each request as the HTTP layer will.
func TestTodoInterop(t *testing.T) {
	f := loadDecisions(t)
	ctx := context.Background()
	all := engines(t)
	for name, e := range all {
		t.Run(name, func(t *testing.T) {
			for i, c := range f.Evaluation {
				req, err := policy.DecodeRequest(c.Request, policy.Limits{})
				if err != nil {
					t.Fatalf("evaluation %d: DecodeRequest: %v", i, err)
				}
				d, err := e.Evaluate(ctx, req)
				if err != nil {
					t.Fatalf("evaluation %d: %v", i, err)
				}
				if d.Allow != c.Expected || len(d.Errors) > 0 {
					t.Errorf("evaluation %d: %s %s %s/%s %v: got %+v, want decision %v",
						i, req.Subject.ID[:8], req.Action.Name, req.Resource.Type, req.Resource.ID, req.Resource.Properties, d, c.Expected)
				}
				if d.Allow && len(d.Reasons) == 0 {
					t.Errorf("evaluation %d: allowed without a reason", i)
				}
				// Both languages must allow for the same reasons.
				other, _ := all["rego"].Evaluate(ctx, req)
				if got, want := names(d), names(other); !slices.Equal(got, want) {
					t.Errorf("evaluation %d: %s reasons %q, rego reasons %q", i, name, got, want)
				}
			}
			for i, c := range f.Evaluations {
				b, err := policy.DecodeEvaluations(c.Request, policy.Limits{})
				if err != nil {
					t.Fatalf("evaluations %d: DecodeEvaluations: %v", i, err)
				}
				ds, err := policy.EvaluateBatch(ctx, e, b)
				if err != nil {
					t.Fatalf("evaluations %d: %v", i, err)
				}
				if len(ds) != len(c.Expected) {
					t.Fatalf("evaluations %d: %d decisions, want %d", i, len(ds), len(c.Expected))
				}
				for j := range ds {
					if ds[j].Allow != c.Expected[j].Decision {
						t.Errorf("evaluations %d item %d: got %+v, want %v", i, j, ds[j], c.Expected[j].Decision)
					}
				}
			}
		})
	}
}
