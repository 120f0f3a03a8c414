package source_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sigil-sts/sigil/policy"
	"github.com/sigil-sts/sigil/policy/source"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  string
		err   string
	}{
		{"cedar", []string{"a.cedar", "a.cedarschema", "e.entities.json"}, source.Cedar, ""},
		{"rego", []string{"p/a.rego", "p/data.json"}, source.Rego, ""},
		{"hidden rego ignored", []string{"a.cedar", ".old/a.rego"}, source.Cedar, ""},
		{"both", []string{"a.cedar", "a.rego"}, "", "both"},
		{"neither", []string{"README.md"}, "", "no .cedar or .rego"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tc.files {
				fsys[f] = &fstest.MapFile{Data: []byte("x")}
			}
			got, err := source.Detect(fsys)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Detect = %q, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Detect = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestLoadTodo loads the Todo set, which holds both languages, with each
// engine named.
func TestLoadTodo(t *testing.T) {
	dir := "../testdata/todo"
	if _, err := source.Load(dir, source.Auto); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("Load(auto) = %v; want the both-languages error", err)
	}
	for _, e := range source.Engines {
		if _, err := source.Load(dir, e); err != nil {
			t.Errorf("Load(%s): %v", e, err)
		}
	}
	if _, err := source.Load(dir, "xacml"); err == nil {
		t.Error("Load(xacml) succeeded")
	}
}

// TestWatch breaks the policy file under a watching PDP: the reload fails
// with file:line, the old set keeps allowing; a fix is picked up.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.cedar")
	// write replaces the file in one step, as editors do (a hidden
	// temporary file, then a rename): a watch that polls between a
	// truncation and a write would load an empty file, fail, and load the
	// whole file at its next poll, which this test cannot tell from a bug.
	write := func(s string) {
		t.Helper()
		tmp := filepath.Join(dir, ".p.cedar.tmp")
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		// Modification times may be coarse: move it so the change shows.
		mt := time.Now().Add(time.Duration(len(s)) * time.Second)
		if err := os.Chtimes(tmp, mt, mt); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(`permit(principal, action == Action::"read", resource);`)
	since, err := source.Fingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	pdp, err := policy.NewPDP(source.Loader(dir, source.Auto))
	if err != nil {
		t.Fatal(err)
	}
	reloads := make(chan error, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go source.Watch(ctx, dir, since, 10*time.Millisecond, pdp, slog.New(slog.NewTextHandler(io.Discard, nil)), func(err error) { reloads <- err })

	read := policy.Request{Subject: policy.Subject{Type: "user", ID: "a"}, Action: policy.Action{Name: "read"}, Resource: policy.Resource{Type: "doc", ID: "1"}}
	write("permit(principal, action == Action::\"read\", resource);\n\nforbid(principal, action, resource) when { resource.x == };\n")
	err = wait(t, reloads)
	var le *policy.LoadError
	if !errors.As(err, &le) || le.File != "p.cedar" || le.Line != 3 {
		t.Fatalf("reload error %v; want a LoadError at p.cedar:3", err)
	}
	if lines := source.Errors(err); len(lines) != 1 || !strings.HasPrefix(lines[0], "p.cedar:3:") {
		t.Errorf("Errors = %q", lines)
	}
	if d, _ := pdp.Evaluate(ctx, read); !d.Allow {
		t.Error("after a failed reload the old set no longer allows")
	}
	write(`forbid(principal, action, resource);`)
	if err := wait(t, reloads); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if d, _ := pdp.Evaluate(ctx, read); d.Allow {
		t.Error("the new set was not picked up")
	}
}

func wait(t *testing.T, c chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s")
		return nil
	}
}
