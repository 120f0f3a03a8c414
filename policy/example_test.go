package policy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigil-sts/sigil/policy"
	"github.com/sigil-sts/sigil/policy/cedar"
	"github.com/sigil-sts/sigil/policy/rego"
)

// Example loads the Todo policies from a directory into a PDP and decides
// one AuthZEN request from the network.
func Example() {
	dir := "testdata/todo"
	pdp, err := policy.NewPDP(func() (policy.Engine, error) {
		return cedar.Load(os.DirFS(dir), cedar.Options{})
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	body := []byte(`{
		"subject": {"type": "user", "id": "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"},
		"action": {"name": "can_delete_todo"},
		"resource": {"type": "todo", "id": "7240d0db", "properties": {"ownerID": "morty@the-citadel.com"}}
	}`)
	req, err := policy.DecodeRequest(body, policy.Limits{})
	if err != nil {
		fmt.Println("400:", err)
		return
	}
	d, err := pdp.Evaluate(context.Background(), req)
	fmt.Println(d.Allow, d.Reasons, err)
	// Output: true [{editor-changes-own-todos permit }] <nil>
}

// TestReloadFromDisk breaks a policy file on disk: the reload reports the
// file and line, and the previous policy set keeps deciding.
func TestReloadFromDisk(t *testing.T) {
	for _, tc := range []struct {
		engine, file, good, bad string
		load                    func(dir string) (policy.Engine, error)
	}{
		{
			engine: "cedar", file: "p.cedar",
			good: "permit(principal, action == Action::\"read\", resource);\n",
			bad:  "permit(principal, action == Action::\"read\", resource);\n\nforbid(principal, action, resource) when { resource.x ==  };\n",
			load: func(dir string) (policy.Engine, error) { return cedar.Load(os.DirFS(dir), cedar.Options{}) },
		},
		{
			engine: "rego", file: "p.rego",
			good: "package sigil.authz\n\nallow if input.action.name == \"read\"\n",
			bad:  "package sigil.authz\n\nallow if input.action.name == \"read\"\n\nallow if {\n",
			load: func(dir string) (policy.Engine, error) { return rego.Load(os.DirFS(dir), rego.Options{}) },
		},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.good), 0o600); err != nil {
				t.Fatal(err)
			}
			pdp, err := policy.NewPDP(func() (policy.Engine, error) { return tc.load(dir) })
			if err != nil {
				t.Fatal(err)
			}
			req := policy.Request{Subject: policy.Subject{Type: "user", ID: "a"}, Action: policy.Action{Name: "read"}, Resource: policy.Resource{Type: "doc", ID: "1"}}
			if err := os.WriteFile(path, []byte(tc.bad), 0o600); err != nil {
				t.Fatal(err)
			}
			err = pdp.Reload()
			var le *policy.LoadError
			if !errors.As(err, &le) || le.File != tc.file || le.Line < 3 {
				t.Fatalf("Reload: %v; want a LoadError at %s:3 or later", err, tc.file)
			}
			t.Logf("reload error: %v", err)
			if d, err := pdp.Evaluate(context.Background(), req); err != nil || !d.Allow {
				t.Errorf("after a failed reload: %+v, %v; want the old set to allow", d, err)
			}
		})
	}
}
