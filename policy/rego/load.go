package rego

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	oparego "github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/sigil-sts/sigil/policy"
)

// Options configures an Engine. The zero value is ready to use.
type Options struct {
	// Query is the reference to the decision document. Default
	// DefaultQuery.
	Query string
	// Reasons is the reference to the reasons document, which may be
	// undefined. Default DefaultReasons.
	Reasons string
	// Now is the clock behind time.now_ns. Default time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultQuery   = "data.sigil.authz.allow"
	DefaultReasons = "data.sigil.authz.reasons"
)

// File names Load reads.
const (
	ModuleSuffix = ".rego"
	DataFile     = "data.json"
)

// denied lists the built-ins removed from the capabilities: they reach the
// network or the environment, or are random, and a decision must depend
// only on the policy, its data and the request.
var denied = []string{"http.send", "net.lookup_ip_addr", "opa.runtime", "rand.intn", "uuid.rfc4122"}

// Load reads, compiles and prepares the Rego modules and data in fsys
// (see the package documentation) and returns an Engine. Every problem is
// a *policy.LoadError with its position, joined with errors.Join; an error
// means no Engine. A source without any module is an error.
func Load(fsys fs.FS, opts Options) (*Engine, error) {
	if opts.Query == "" {
		opts.Query = DefaultQuery
	}
	if opts.Reasons == "" {
		opts.Reasons = DefaultReasons
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	query, err := decisionQuery(opts.Query, opts.Reasons)
	if err != nil {
		return nil, err
	}
	modules, data, err := readSource(fsys)
	if err != nil {
		return nil, err
	}
	caps := capabilities()
	compiler := ast.NewCompiler().WithCapabilities(caps).WithEnablePrintStatements(false)
	compiler.Compile(modules)
	if compiler.Failed() {
		return nil, astErrors("", compiler.Errors)
	}
	pq, err := oparego.New(
		oparego.Compiler(compiler),
		oparego.Store(inmem.NewFromObject(data)),
		oparego.ParsedQuery(query),
		oparego.Capabilities(caps),
		oparego.StrictBuiltinErrors(true),
	).PrepareForEval(context.Background())
	if err != nil {
		return nil, fmt.Errorf("rego: prepare %s: %w", opts.Query, err)
	}
	names := make([]string, 0, len(modules))
	for name := range modules {
		names = append(names, name)
	}
	slices.Sort(names)
	return &Engine{query: pq, now: opts.Now, modules: names, queryText: opts.Query}, nil
}

// decisionQuery builds the one query evaluated per request:
//
//	allow := [x | x := <Query>]; reasons := [r | some r in <Reasons>]
//
// Both are comprehensions, so the query always has one result and the
// reasons survive an undefined decision.
func decisionQuery(query, reasons string) (ast.Body, error) {
	for _, ref := range []string{query, reasons} {
		r, err := ast.ParseRef(ref)
		if err != nil || !r.HasPrefix(ast.DefaultRootRef) {
			return nil, fmt.Errorf("rego: %q is not a reference into data (data.pkg.rule)", ref)
		}
	}
	return ast.ParseBody(fmt.Sprintf("__allow__ := [x | x := %s]; __reasons__ := [r | some r in %s]", query, reasons))
}

func capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool {
		return slices.Contains(denied, b.Name)
	})
	return caps
}

func readSource(fsys fs.FS) (map[string]*ast.Module, map[string]any, error) {
	modules := map[string]*ast.Module{}
	data := map[string]any{}
	var errs []error
	walkErr := policy.WalkFiles(fsys, func(p string, _ fs.DirEntry) error {
		switch {
		case strings.HasSuffix(p, ModuleSuffix):
			src, err := fs.ReadFile(fsys, p)
			if err != nil {
				errs = append(errs, &policy.LoadError{File: p, Err: err})
				return nil
			}
			m, err := ast.ParseModuleWithOpts(p, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				errs = append(errs, astErrors(p, err))
				return nil
			}
			modules[p] = m
		case path.Base(p) == DataFile:
			if err := addData(fsys, p, data); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	if walkErr != nil {
		return nil, nil, fmt.Errorf("rego: read policies: %w", walkErr)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	if len(modules) == 0 {
		return nil, nil, errors.New("rego: no modules (*.rego files) found")
	}
	return modules, data, nil
}

// addData merges the document in file p into data at p's directory.
func addData(fsys fs.FS, p string, data map[string]any) error {
	raw, err := fs.ReadFile(fsys, p)
	if err != nil {
		return &policy.LoadError{File: p, Err: err}
	}
	var doc any
	if err := util.UnmarshalJSON(raw, &doc); err != nil {
		return &policy.LoadError{File: p, Err: err}
	}
	node := data
	if dir := path.Dir(p); dir != "." {
		for _, key := range strings.Split(dir, "/") {
			next, ok := node[key].(map[string]any)
			if !ok {
				if _, exists := node[key]; exists {
					return &policy.LoadError{File: p, Err: fmt.Errorf("data.%s is already a value", strings.ReplaceAll(dir, "/", "."))}
				}
				next = map[string]any{}
				node[key] = next
			}
			node = next
		}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return &policy.LoadError{File: p, Err: errors.New("a data document must be a JSON object")}
	}
	for k, v := range obj {
		if _, exists := node[k]; exists {
			return &policy.LoadError{File: p, Err: fmt.Errorf("member %q is defined by another data file", k)}
		}
		node[k] = v
	}
	return nil
}

// astErrors turns OPA's parse or compile errors into LoadErrors.
func astErrors(file string, err error) error {
	var list ast.Errors
	if !errors.As(err, &list) {
		return &policy.LoadError{File: file, Err: err}
	}
	errs := make([]error, 0, len(list))
	for _, e := range list {
		le := &policy.LoadError{File: file, Err: fmt.Errorf("%s: %s", e.Code, e.Message)}
		if e.Location != nil {
			if e.Location.File != "" {
				le.File = e.Location.File
			}
			le.Line, le.Column = e.Location.Row, e.Location.Col
		}
		errs = append(errs, le)
	}
	return errors.Join(errs...)
}
