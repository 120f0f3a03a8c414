package sigil_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRootImportsStandardLibraryOnly keeps the domain package free of
// dependencies: every package it pulls in must be in the standard library
// (whose import paths have no dot in their first element).
func TestRootImportsStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "github.com/sigil-sts/sigil" {
			continue
		}
		first, _, _ := strings.Cut(pkg, "/")
		if strings.Contains(first, ".") {
			t.Errorf("the root package depends on %s; it may import the standard library only", pkg)
		}
	}
}
