package policy_test

import (
	"os/exec"
	"strings"
	"testing"
)

const opa = "github.com/open-policy-agent/opa"

// TestOPAOnlyInRego keeps OPA out of everything but policy/rego: the
// policy package and the Cedar engine must build without it, and no other
// package of the module may import it directly.
func TestOPAOnlyInRego(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "./cedar").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, opa) {
			t.Errorf("policy or policy/cedar depends on %s", pkg)
		}
	}
	out, err = exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/sigil-sts/sigil/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		if pkg == "github.com/sigil-sts/sigil/policy/rego" {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, opa) {
				t.Errorf("%s imports %s; only policy/rego may import OPA", pkg, imp)
			}
		}
	}
}
