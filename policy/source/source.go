package source

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sigil-sts/sigil/policy"
	"github.com/sigil-sts/sigil/policy/cedar"
	"github.com/sigil-sts/sigil/policy/rego"
)

// Engine names.
const (
	// Auto picks the engine from the files: Cedar if the directory holds
	// *.cedar files, Rego if it holds *.rego files.
	Auto  = ""
	Cedar = "cedar"
	Rego  = "rego"
)

// Engines are the engine names Load accepts besides Auto.
var Engines = []string{Cedar, Rego}

// Load reads and validates the policies in dir with the named engine (Auto
// detects it) and returns the engine. Errors in the files are
// *policy.LoadError values (file:line:column), joined with errors.Join.
func Load(dir, engine string) (policy.Engine, error) {
	fsys := os.DirFS(dir)
	if engine == Auto {
		var err error
		if engine, err = Detect(fsys); err != nil {
			return nil, fmt.Errorf("policy directory %s: %w", dir, err)
		}
	}
	switch engine {
	case Cedar:
		return cedar.Load(fsys, cedar.Options{})
	case Rego:
		return rego.Load(fsys, rego.Options{})
	}
	return nil, fmt.Errorf("policy engine %q is not one of %s", engine, strings.Join(Engines, ", "))
}

// Loader returns a policy.LoadFunc reading dir with Load.
func Loader(dir, engine string) policy.LoadFunc {
	return func() (policy.Engine, error) { return Load(dir, engine) }
}

// Detect returns the engine the files of fsys are written for: Cedar or
// Rego. A tree holding both, or neither, is an error.
func Detect(fsys fs.FS) (string, error) {
	var hasCedar, hasRego bool
	err := walk(fsys, func(path string, _ fs.FileInfo) {
		switch {
		case strings.HasSuffix(path, cedar.PolicySuffix):
			hasCedar = true
		case strings.HasSuffix(path, ".rego"):
			hasRego = true
		}
	})
	switch {
	case err != nil:
		return "", err
	case hasCedar && hasRego:
		return "", errors.New("holds both .cedar and .rego files; name the engine with --policy-engine cedar or rego")
	case hasCedar:
		return Cedar, nil
	case hasRego:
		return Rego, nil
	}
	return "", errors.New("holds no .cedar or .rego file")
}

// walk calls f for every regular file of fsys, skipping hidden files and
// directories as the engines do.
func walk(fsys fs.FS, f func(path string, info fs.FileInfo)) error {
	return policy.WalkFiles(fsys, func(path string, d fs.DirEntry) error {
		info, err := d.Info()
		if err != nil {
			return err
		}
		f(path, info)
		return nil
	})
}

// Fingerprint summarises the names, sizes and modification times of the
// files under dir; it changes when a file is added, removed or written.
func Fingerprint(dir string) (uint64, error) {
	h := fnv.New64a()
	err := walk(os.DirFS(dir), func(path string, info fs.FileInfo) {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", path, info.Size(), info.ModTime().UnixNano())
	})
	return h.Sum64(), err
}

// Watch polls dir every interval until ctx ends and reloads pdp when the
// files change from since: the Fingerprint taken before pdp loaded them,
// so that a change between that load and this call is not missed. A
// failed reload is logged, each error on its own line with its file:line,
// and not retried until the files change again; the previous policy set
// keeps serving meanwhile. onReload, when not nil, is called after every
// reload attempt with its result (tests use it).
func Watch(ctx context.Context, dir string, since uint64, interval time.Duration, pdp *policy.PDP, log *slog.Logger, onReload func(error)) {
	last := since
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp, err := Fingerprint(dir)
		if err != nil {
			log.Warn("policy directory unreadable; keeping the current policies", "dir", dir, "err", err)
			continue
		}
		if fp == last {
			continue
		}
		last = fp
		err = pdp.Reload()
		if err != nil {
			LogErrors(log, dir, err)
		} else {
			gen, _ := pdp.Generation()
			log.Info("policies reloaded", "dir", dir, "generation", gen)
		}
		if onReload != nil {
			onReload(err)
		}
	}
}

// LogErrors logs a failed load, one record per error (file:line: message).
func LogErrors(log *slog.Logger, dir string, err error) {
	for _, e := range Errors(err) {
		log.Error("policy reload failed; keeping the previous policies", "dir", dir, "err", e)
	}
}

// Errors splits a joined load error into its errors, each a line such as
// "todo.cedar:12:3: unexpected token".
func Errors(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	return strings.Split(err.Error(), "\n")
}
