package policy_test

import (
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/sigil-sts/sigil/policy"
)

// TestWalkFiles: regular files in lexical order; hidden files and
// everything under hidden directories left out.
func TestWalkFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"b.cedar":            {},
		"a/z.rego":           {},
		"a/.swp":             {},
		".git/config":        {},
		"a/.hidden/x.cedar":  {},
		"a/data.json":        {},
		"c/d/e.cedarschema":  {},
		".hidden-file.cedar": {},
	}
	var got []string
	if err := policy.WalkFiles(fsys, func(path string, _ fs.DirEntry) error {
		got = append(got, path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a/data.json", "a/z.rego", "b.cedar", "c/d/e.cedarschema"}
	if !slices.Equal(got, want) {
		t.Errorf("WalkFiles visited %v, want %v", got, want)
	}
}
