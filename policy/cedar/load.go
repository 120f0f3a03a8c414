package cedar

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	cedargo "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/sigil-sts/sigil/policy"
)

// Options configures an Engine. The zero value is ready to use.
type Options struct {
	// Namespace, when set, qualifies the AuthZEN types: subject type
	// "user" is the Cedar type "Namespace::user" and actions are
	// "Namespace::Action". Empty by default: types are used verbatim.
	Namespace string
}

// File name suffixes Load reads.
const (
	PolicySuffix     = ".cedar"
	SchemaSuffix     = ".cedarschema"
	SchemaJSONSuffix = ".cedarschema.json"
	EntitiesSuffix   = ".entities.json"
)

// Load reads and validates the Cedar policies, schema and entities in
// fsys (see the package documentation for the files) and returns an
// Engine for them. Every problem found is reported, each as a
// *policy.LoadError with its position, joined with errors.Join; an error
// means no Engine. A source without any policy is an error: it would deny
// every request, which is more likely a wrong path than an intent.
func Load(fsys fs.FS, opts Options) (*Engine, error) {
	src, err := readSource(fsys)
	if err != nil {
		return nil, err
	}
	return compile(src, opts)
}

// source is the parsed content of a policy directory.
type source struct {
	policies     []parsedPolicy
	schema       *schema.Schema
	schemaFile   string
	entities     types.EntityMap
	entityOrigin map[types.EntityUID]string // entity → file, for errors
}

type parsedPolicy struct {
	id     string
	file   string
	policy *cedargo.Policy
}

func readSource(fsys fs.FS) (*source, error) {
	src := &source{entities: types.EntityMap{}, entityOrigin: map[types.EntityUID]string{}}
	var errs []error
	walkErr := policy.WalkFiles(fsys, func(path string, _ fs.DirEntry) error {
		switch {
		case strings.HasSuffix(path, PolicySuffix):
			errs = append(errs, src.addPolicies(fsys, path)...)
		case strings.HasSuffix(path, SchemaSuffix), strings.HasSuffix(path, SchemaJSONSuffix):
			if err := src.setSchema(fsys, path); err != nil {
				errs = append(errs, err)
			}
		case strings.HasSuffix(path, EntitiesSuffix):
			if err := src.addEntities(fsys, path); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	if walkErr != nil {
		return nil, fmt.Errorf("cedar: read policies: %w", walkErr)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(src.policies) == 0 {
		return nil, errors.New("cedar: no policies (*.cedar files) found")
	}
	return src, nil
}

func (s *source) addPolicies(fsys fs.FS, path string) []error {
	data, err := fs.ReadFile(fsys, path)
	if err != nil {
		return []error{&policy.LoadError{File: path, Err: err}}
	}
	list, err := cedargo.NewPolicyListFromBytes(path, data)
	if err != nil {
		return []error{parseError(path, err)}
	}
	for _, p := range list {
		pos := p.Position()
		id := fmt.Sprintf("%s:%d", path, pos.Line)
		if v, ok := p.Annotations()["id"]; ok {
			id = string(v)
		}
		s.policies = append(s.policies, parsedPolicy{id: id, file: path, policy: p})
	}
	return nil
}

func (s *source) setSchema(fsys fs.FS, path string) error {
	if s.schema != nil {
		return &policy.LoadError{File: path, Err: fmt.Errorf("a second schema; %s is already the schema", s.schemaFile)}
	}
	data, err := fs.ReadFile(fsys, path)
	if err != nil {
		return &policy.LoadError{File: path, Err: err}
	}
	var sch schema.Schema
	sch.SetFilename(path)
	if strings.HasSuffix(path, SchemaJSONSuffix) {
		err = sch.UnmarshalJSON(data)
	} else {
		err = sch.UnmarshalCedar(data)
	}
	if err != nil {
		return parseError(path, err)
	}
	s.schema, s.schemaFile = &sch, path
	return nil
}

func (s *source) addEntities(fsys fs.FS, path string) error {
	data, err := fs.ReadFile(fsys, path)
	if err != nil {
		return &policy.LoadError{File: path, Err: err}
	}
	var m types.EntityMap
	if err := m.UnmarshalJSON(data); err != nil {
		return &policy.LoadError{File: path, Err: err}
	}
	for uid, e := range m {
		if prev, ok := s.entityOrigin[uid]; ok {
			return &policy.LoadError{File: path, Err: fmt.Errorf("entity %s is also defined in %s", uid, prev)}
		}
		s.entities[uid] = e
		s.entityOrigin[uid] = path
	}
	return nil
}

// compile builds the policy set and, with a schema, validates policies and
// entities against it.
func compile(src *source, opts Options) (*Engine, error) {
	var errs []error
	ps := cedargo.NewPolicySet()
	effects := make(map[cedargo.PolicyID]types.Effect, len(src.policies))
	for _, p := range src.policies {
		id := cedargo.PolicyID(p.id)
		if prev := ps.Get(id); prev != nil {
			pos := p.policy.Position()
			errs = append(errs, &policy.LoadError{File: p.file, Line: pos.Line, Column: pos.Column,
				Err: fmt.Errorf("policy id %q is already used at %s:%d", p.id, prev.Position().Filename, prev.Position().Line)})
			continue
		}
		ps.Add(id, p.policy)
		effects[id] = p.policy.Effect()
	}
	e := &Engine{policies: ps, effects: effects, entities: src.entities, namespace: opts.Namespace}
	if src.schema != nil {
		resolved, err := src.schema.Resolve()
		if err != nil {
			errs = append(errs, &policy.LoadError{File: src.schemaFile, Err: err})
			return nil, errors.Join(errs...)
		}
		v := validate.New(resolved, validate.WithStrict())
		for _, p := range src.policies {
			if err := v.Policy(p.id, (*xast.Policy)(p.policy.AST())); err != nil {
				pos := p.policy.Position()
				errs = append(errs, &policy.LoadError{File: p.file, Line: pos.Line, Column: pos.Column,
					Err: fmt.Errorf("policy %q does not validate against %s: %w", p.id, src.schemaFile, err)})
			}
		}
		for _, uid := range sortedUIDs(src.entities) {
			if err := v.Entity(src.entities[uid]); err != nil {
				errs = append(errs, &policy.LoadError{File: src.entityOrigin[uid],
					Err: fmt.Errorf("entity %s does not validate against %s: %w", uid, src.schemaFile, err)})
			}
		}
		e.validator = v
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	e.ids = make([]string, 0, len(src.policies))
	for _, p := range src.policies {
		e.ids = append(e.ids, p.id)
	}
	return e, nil
}

// inputPos matches the position cedar-go's policy parser puts in its
// errors; it does not know the file name, which we add.
var inputPos = regexp.MustCompile(`<input>:(\d+):(\d+):? ?`)

// filePos matches the "file:line:column: " prefix of schema parse errors.
var filePos = regexp.MustCompile(`^[^:]*:(\d+):(\d+): `)

// parseError turns a cedar-go parse error into a LoadError with the
// file, line and column it names.
func parseError(path string, err error) error {
	msg := err.Error()
	le := &policy.LoadError{File: path}
	m := inputPos.FindStringSubmatchIndex(msg)
	if m == nil && strings.HasPrefix(msg, path+":") {
		m = filePos.FindStringSubmatchIndex(msg)
	}
	if m != nil {
		le.Line, _ = strconv.Atoi(msg[m[2]:m[3]])
		le.Column, _ = strconv.Atoi(msg[m[4]:m[5]])
		msg = msg[:m[0]] + msg[m[1]:]
	}
	msg = strings.TrimPrefix(msg, "parser error: ")
	le.Err = errors.New(strings.TrimSpace(msg))
	return le
}
