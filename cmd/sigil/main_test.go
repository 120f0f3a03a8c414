package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary stand in for the sigil command: the
// scripts' `exec sigil …` runs a copy of this binary, which calls the real
// main (Main.Run with os.Stdin, os.Stdout, os.Stderr and os.Getenv, and
// SIGINT/SIGTERM handling).
func TestMain(m *testing.M) {
	testscript.Main(cleanupM{m}, map[string]func(){"sigil": main})
}

// cleanupM removes what the tests built once for the whole run (the real
// binary) after every test has finished.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	code := c.m.Run()
	removeBuiltBinary()
	return code
}

// TestScript runs the CLI contract scripts in testdata/script. Each script
// uses its own data directory under $WORK.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds:                scriptCmds,
	})
}

// scriptCmds are the commands the scripts add to testscript's own.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"status":    cmdStatus,
	"errline":   cmdErrline,
	"jsonfield": cmdJSONField,
	"jsonmatch": cmdJSONMatch,
	"jsoncount": cmdJSONCount,
	"jsonget":   cmdJSONGet,
	"perm":      cmdPerm,
	"freeport":  cmdFreePort,
	"waitready": cmdWaitReady,
}

// status N PROG [ARGS...] runs PROG like exec and checks that it exits
// with status N; stdout and stderr are kept for the commands that follow.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status: %q is not an exit status", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("status: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// errline [REGEXP] checks that stderr is exactly one line that starts with
// "sigil: " (CONTRACT.md: errors are one line) and, if given, matches
// REGEXP.
func cmdErrline(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: errline [REGEXP]")
	}
	s := ts.ReadFile("stderr")
	if !strings.HasPrefix(s, "sigil: ") || !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		ts.Fatalf("stderr is not one line starting with \"sigil: \": %q", s)
	}
	if len(args) == 1 {
		re, err := regexp.Compile(args[0])
		ts.Check(err)
		if !re.MatchString(s) {
			ts.Fatalf("stderr %q does not match %q", s, args[0])
		}
	}
}

// jsonfield FILE PATH [VALUE] checks that the JSON document in FILE
// (stdout, stderr or a file) has a member at PATH, and, with VALUE, that
// it equals VALUE: a string member compares with VALUE as is, any other
// member by its compact JSON encoding (true, 120, ["a","b"]). With !, the
// member is absent, or (with VALUE) absent or different.
//
// PATH is dot-separated member names and array indexes (jwks.keys.0.kid);
// "." is the whole document.
func cmdJSONField(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && len(args) != 3 {
		ts.Fatalf("usage: jsonfield FILE PATH [VALUE]")
	}
	v, ok := lookup(readJSON(ts, args[0]), args[1])
	switch {
	case len(args) == 2 && ok == neg:
		if neg {
			ts.Fatalf("%s: unexpected member %s = %s", args[0], args[1], render(v))
		}
		ts.Fatalf("%s: no member %s", args[0], args[1])
	case len(args) == 3 && !neg && !ok:
		ts.Fatalf("%s: no member %s (want %q)", args[0], args[1], args[2])
	case len(args) == 3 && ok && (render(v) == args[2]) == neg:
		if neg {
			ts.Fatalf("%s: %s is %q, want anything else", args[0], args[1], render(v))
		}
		ts.Fatalf("%s: %s is %q, want %q", args[0], args[1], render(v), args[2])
	}
}

// jsonmatch FILE PATH REGEXP checks that the member at PATH exists and
// that its value (rendered as by jsonfield) matches REGEXP.
func cmdJSONMatch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: jsonmatch FILE PATH REGEXP")
	}
	v, ok := lookup(readJSON(ts, args[0]), args[1])
	if !ok {
		ts.Fatalf("%s: no member %s", args[0], args[1])
	}
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	if !re.MatchString(render(v)) {
		ts.Fatalf("%s: %s is %q, which does not match %q", args[0], args[1], render(v), args[2])
	}
}

// jsoncount FILE PATH N [COND...] checks that the array at PATH has
// exactly N elements meeting every COND: NAME=VALUE (as jsonfield),
// NAME~REGEXP (as jsonmatch) or NAME@rfc3339 (a string that parses as an
// RFC 3339 time). Without COND it checks the array's length.
func cmdJSONCount(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: jsoncount FILE PATH N [NAME=VALUE|NAME~REGEXP|NAME@rfc3339...]")
	}
	v, ok := lookup(readJSON(ts, args[0]), args[1])
	arr, isArr := v.([]any)
	if !ok || !isArr {
		ts.Fatalf("%s: %s is not an array", args[0], args[1])
	}
	want, err := strconv.Atoi(args[2])
	ts.Check(err)
	got := 0
	for _, e := range arr {
		if matchAll(ts, e, args[3:]) {
			got++
		}
	}
	if got != want {
		ts.Fatalf("%s: %d elements of %s meet %q, want %d", args[0], got, args[1], args[3:], want)
	}
}

func matchAll(ts *testscript.TestScript, e any, conds []string) bool {
	for _, c := range conds {
		i := strings.IndexAny(c, "=~@")
		if i < 1 {
			ts.Fatalf("jsoncount: condition %q is not NAME=VALUE, NAME~REGEXP or NAME@rfc3339", c)
		}
		v, ok := lookup(e, c[:i])
		if !ok {
			return false
		}
		switch arg := c[i+1:]; c[i] {
		case '=':
			if render(v) != arg {
				return false
			}
		case '~':
			re, err := regexp.Compile(arg)
			ts.Check(err)
			if !re.MatchString(render(v)) {
				return false
			}
		case '@':
			if arg != "rfc3339" {
				ts.Fatalf("jsoncount: unknown format %q", arg)
			}
			s, isStr := v.(string)
			if _, err := time.Parse(time.RFC3339, s); !isStr || err != nil {
				return false
			}
		}
	}
	return true
}

// jsonget FILE PATH VAR sets the environment variable VAR to the member
// at PATH (rendered as by jsonfield), for later commands to use as $VAR.
func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: jsonget FILE PATH VAR")
	}
	v, ok := lookup(readJSON(ts, args[0]), args[1])
	if !ok {
		ts.Fatalf("%s: no member %s", args[0], args[1])
	}
	ts.Setenv(args[2], render(v))
}

// perm MODE PATH checks a file's permission bits (octal, e.g. 0600).
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: perm MODE PATH")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	if got := fi.Mode().Perm(); uint64(got) != want {
		ts.Fatalf("%s has mode %#o, want %#o", args[1], got, want)
	}
}

// freeport VAR sets VAR to a loopback host:port that was free a moment
// ago.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	addr, err := freeAddr()
	ts.Check(err)
	ts.Setenv(args[0], addr)
}

// waitready URL waits (up to 20s) until GET URL answers 200.
func cmdWaitReady(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitready URL")
	}
	if err := waitHTTP(args[0], 20*time.Second, nil); err != nil {
		ts.Fatalf("%v", err)
	}
}

func readJSON(ts *testscript.TestScript, file string) any {
	d := json.NewDecoder(strings.NewReader(ts.ReadFile(file)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		ts.Fatalf("%s is not JSON: %v", file, err)
	}
	if d.More() {
		ts.Fatalf("%s holds more than one JSON value", file)
	}
	return v
}

// lookup follows a dot-separated path of member names and array indexes.
func lookup(v any, path string) (any, bool) {
	if path == "." || path == "" {
		return v, true
	}
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// render is a string as is, anything else as compact JSON.
func render(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls GET url (every 2ms, so that BenchmarkStartup resolves
// start-up time finely) until it answers 200, the timeout passes, or
// stopped (when not nil) is closed or receives.
func waitHTTP(url string, timeout time.Duration, stopped <-chan int) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s: no 200 within %s (last: %v)", url, timeout, statusOrErr(resp, err))
		}
		select {
		case code := <-stopped:
			return fmt.Errorf("GET %s: server exited with status %d before it was ready", url, code)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func statusOrErr(resp *http.Response, err error) any {
	if err != nil {
		return err
	}
	return resp.Status
}
