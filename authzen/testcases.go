package authzen

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/sigil-sts/sigil/policy"
)

// TestFile is a file of policy test cases, in the shape of the AuthZEN
// interop decisions files: single requests with their expected decision
// and batch requests with their expected list of decisions.
type TestFile struct {
	Evaluation []struct {
		Name     string          `json:"name,omitempty"`
		Request  json.RawMessage `json:"request"`
		Expected bool            `json:"expected"`
	} `json:"evaluation"`
	Evaluations []struct {
		Name     string          `json:"name,omitempty"`
		Request  json.RawMessage `json:"request"`
		Expected []struct {
			Decision bool `json:"decision"`
		} `json:"expected"`
	} `json:"evaluations"`
}

// TestResult is the outcome of one test case.
type TestResult struct {
	File string // path of the file within the tests directory
	Case string // "evaluation[3]" or "evaluations[0]", with the case's name
	// Failure says what went wrong; "" when the case passed.
	Failure string
}

// RunTests runs every case of the *.json files under fsys (hidden files
// and directories skipped) on e and returns the results in file and case
// order. An error means a file could not be read or is not a test file;
// a request that is not valid fails its case.
func RunTests(ctx context.Context, e policy.Engine, fsys fs.FS) ([]TestResult, error) {
	var files []string
	err := policy.WalkFiles(fsys, func(path string, _ fs.DirEntry) error {
		if strings.HasSuffix(path, ".json") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.json test file found")
	}
	slices.Sort(files)
	var out []TestResult
	for _, f := range files {
		res, err := runFile(ctx, e, fsys, f)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func runFile(ctx context.Context, e policy.Engine, fsys fs.FS, path string) ([]TestResult, error) {
	b, err := fs.ReadFile(fsys, path)
	if err != nil {
		return nil, err
	}
	var tf TestFile
	if err := json.Unmarshal(b, &tf); err != nil {
		return nil, fmt.Errorf("%s: not a test file: %v", path, err)
	}
	if len(tf.Evaluation) == 0 && len(tf.Evaluations) == 0 {
		return nil, fmt.Errorf("%s: not a test file: it has no \"evaluation\" or \"evaluations\" cases", path)
	}
	var out []TestResult
	name := func(kind string, i int, n string) string {
		s := fmt.Sprintf("%s[%d]", kind, i)
		if n != "" {
			s += " " + n
		}
		return s
	}
	for i, c := range tf.Evaluation {
		r := TestResult{File: path, Case: name("evaluation", i, c.Name)}
		got, err := Evaluate(ctx, e, c.Request, false)
		d, ok := got.(Decision)
		switch {
		case err != nil:
			r.Failure = err.Error()
		case !ok:
			r.Failure = "the request is a batch; put it under \"evaluations\""
		case d.Decision != c.Expected:
			r.Failure = fmt.Sprintf("decision %v, want %v", d.Decision, c.Expected)
		}
		out = append(out, r)
	}
	for i, c := range tf.Evaluations {
		r := TestResult{File: path, Case: name("evaluations", i, c.Name)}
		b, err := policy.DecodeEvaluations(c.Request, policy.Limits{})
		var resp *EvaluationsResponse
		if err == nil {
			resp, err = evaluateBatch(ctx, e, b, false, nil)
		}
		if err != nil {
			r.Failure = err.Error()
			out = append(out, r)
			continue
		}
		got := make([]bool, len(resp.Evaluations))
		for j, d := range resp.Evaluations {
			got[j] = d.Decision
		}
		want := make([]bool, len(c.Expected))
		for j, d := range c.Expected {
			want[j] = d.Decision
		}
		if !slices.Equal(got, want) {
			r.Failure = fmt.Sprintf("decisions %v, want %v", got, want)
		}
		out = append(out, r)
	}
	return out, nil
}
