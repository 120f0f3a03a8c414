package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sigil-sts/sigil/authzen"
	"github.com/sigil-sts/sigil/policy"
	"github.com/sigil-sts/sigil/policy/source"
)

// loadPolicies loads --policy-dir, printing each load error on its own
// stderr line (file:line:column: message) before failing.
func (m *Main) loadPolicies(o *options) (policy.Engine, error) {
	if o.cfg.PolicyDir == "" {
		return nil, usagef("--policy-dir is required")
	}
	e, err := source.Load(o.cfg.PolicyDir, o.cfg.PolicyEngine)
	if err != nil {
		lines := source.Errors(err)
		for _, l := range lines {
			fmt.Fprintln(m.Stderr, l)
		}
		return nil, fmt.Errorf("policy directory %s: %d error(s); fix them and run again", o.cfg.PolicyDir, len(lines))
	}
	return e, nil
}

func runPolicyValidate(ctx context.Context, m *Main, o *options) error {
	if _, err := m.loadPolicies(o); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%s: valid\n", o.cfg.PolicyDir)
	return nil
}

func runPolicyEval(ctx context.Context, m *Main, o *options) error {
	if o.request == "" {
		return usagef("--request FILE (or - for stdin) is required")
	}
	e, err := m.loadPolicies(o)
	if err != nil {
		return err
	}
	var body []byte
	if o.request == "-" {
		body, err = io.ReadAll(io.LimitReader(m.Stdin, policy.DefaultMaxBytes+1))
	} else {
		body, err = os.ReadFile(o.request)
	}
	if err != nil {
		return fmt.Errorf("read the request: %w", err)
	}
	// The command line shows why: reasons are always included.
	resp, err := authzen.Evaluate(ctx, e, body, true)
	var re *policy.RequestError
	if errors.As(err, &re) {
		return fmt.Errorf("%s: %s", o.request, re.Error())
	}
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(resp, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%s\n", out)
	return nil
}

func runPolicyTest(ctx context.Context, m *Main, o *options) error {
	e, err := m.loadPolicies(o)
	if err != nil {
		return err
	}
	dir := o.args[0]
	results, err := authzen.RunTests(ctx, e, os.DirFS(dir))
	if err != nil {
		return fmt.Errorf("tests %s: %w", dir, err)
	}
	failed := 0
	for _, r := range results {
		if r.Failure != "" {
			failed++
			fmt.Fprintf(m.Stdout, "FAIL %s %s: %s\n", r.File, r.Case, r.Failure)
		}
	}
	if failed > 0 {
		fmt.Fprintf(m.Stdout, "FAIL: %d/%d\n", failed, len(results))
		return fmt.Errorf("%d of %d policy tests failed", failed, len(results))
	}
	fmt.Fprintf(m.Stdout, "PASS: %d/%d\n", len(results), len(results))
	return nil
}
