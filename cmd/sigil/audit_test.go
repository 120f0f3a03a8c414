package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	_ "modernc.org/sqlite" // the driver, to edit the store's file behind its back
)

func init() {
	scriptCmds["sqlexec"] = cmdSQLExec
	scriptCmds["jsonl"] = cmdJSONL
}

// sqlExec runs statements on the SQLite file at path, as someone with
// write access to the file (and not to the master key) could.
func sqlExec(path string, stmts ...string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	for _, s := range stmts {
		res, err := db.Exec(s)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return fmt.Errorf("%s: no row changed", s)
		}
	}
	return nil
}

// sqlexec DB SQL runs one statement on a SQLite file, which must change
// at least one row.
func cmdSQLExec(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sqlexec DB SQL")
	}
	ts.Check(sqlExec(ts.MkAbs(args[0]), args[1]))
}

// jsonl FILE N [COND...] checks that every line of FILE is a JSON object
// and that exactly N of them meet every COND (as in jsoncount).
func cmdJSONL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: jsonl FILE N [NAME=VALUE|NAME~REGEXP|NAME@rfc3339...]")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	got := 0
	for i, line := range strings.Split(strings.TrimSuffix(ts.ReadFile(args[0]), "\n"), "\n") {
		if line == "" && want == 0 {
			continue
		}
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		var v map[string]any
		if err := d.Decode(&v); err != nil || d.More() {
			ts.Fatalf("%s line %d is not one JSON object: %q", args[0], i+1, line)
		}
		if matchAll(ts, v, args[2:]) {
			got++
		}
	}
	if got != want {
		ts.Fatalf("%s: %d lines meet %q, want %d", args[0], got, args[2:], want)
	}
}

// verifyReport is `sigil audit verify --json`.
type verifyReport struct {
	Intact         bool  `json:"intact"`
	Records        int64 `json:"records"`
	Checkpoints    int   `json:"checkpoints"`
	HeadSeq        int64 `json:"head_seq"`
	LastCheckpoint int64 `json:"last_checkpoint"`
	Problem        *struct {
		Seq  int64  `json:"seq"`
		What string `json:"what"`
	} `json:"problem"`
}

// exportLine is one line of `sigil audit export`: a record or, with
// --checkpoints, a checkpoint.
type exportLine struct {
	Type     string `json:"type"`
	Seq      int64  `json:"seq"`
	Prev     string `json:"prev"`
	Hash     string `json:"hash"`
	Event    string `json:"event"`
	ClientID string `json:"client_id"`
	JTI      string `json:"jti"`
	JWS      string `json:"jws"`
}

// parseJSONL decodes every line of out, failing on one that is not a JSON
// object.
func parseJSONL(t *testing.T, out string) []exportLine {
	t.Helper()
	var lines []exportLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l exportLine
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %d is not a JSON object: %v: %q", len(lines)+1, err, sc.Text())
		}
		json.Unmarshal(sc.Bytes(), &l)
		lines = append(lines, l)
	}
	return lines
}

// runVerify runs `sigil audit verify --json` in-process.
func runVerify(t *testing.T, dir string) (verifyReport, string, int) {
	t.Helper()
	out, errs, code := cli(t, "audit", "verify", "--data-dir", dir, "--json")
	var r verifyReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("verify --json: %v: %q (stderr %q)", err, out, errs)
	}
	return r, errs, code
}

// cliTrail writes a trail of six records with CLI commands (deleting the
// client revokes its tokens first: two records).
func cliTrail(t *testing.T, dir string) {
	t.Helper()
	var c struct {
		ClientID string `json:"client_id"`
	}
	mustCLI(t, &c, "client", "create", "--data-dir", dir, "--name", "svc", "--scopes", "read", "--json")
	mustCLI(t, nil, "client", "rotate-secret", c.ClientID, "--data-dir", dir)
	mustCLI(t, nil, "keys", "rotate", "--data-dir", dir)
	mustCLI(t, nil, "revoke", "--data-dir", dir, "--subject", "alice")
	mustCLI(t, nil, "client", "delete", c.ClientID, "--data-dir", dir)
}

var problemLine = regexp.MustCompile(`^sigil: audit record (\d+): \S.*\n$`)

// TestAuditVerifyTamper edits the SQLite file behind the store's back:
// verify exits 1 with one stderr line naming the first bad record.
func TestAuditVerifyTamper(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stmts []string
		seq   int64
		what  string
	}{
		{"edit-body", []string{`UPDATE audit SET body = replace(body, '"alice"', '"mallory"') WHERE seq = 4`}, 4, "altered"},
		{"edit-body-first", []string{`UPDATE audit SET body = replace(body, '"svc"', '"evil"') WHERE seq = 1`}, 1, "altered"},
		{"edit-hash", []string{`UPDATE audit SET hash = zeroblob(32) WHERE seq = 3`}, 3, "altered"},
		{"edit-prev", []string{`UPDATE audit SET prev = zeroblob(32) WHERE seq = 2`}, 2, "altered"},
		{"delete", []string{`DELETE FROM audit WHERE seq = 3`}, 3, "missing"},
		{"delete-first", []string{`DELETE FROM audit WHERE seq = 1`}, 1, "missing"},
		{"swap", []string{`UPDATE audit SET body = CASE seq WHEN 2 THEN (SELECT body FROM audit WHERE seq = 3) ELSE (SELECT body FROM audit WHERE seq = 2) END WHERE seq IN (2, 3)`}, 2, "altered"},
		{"renumber", []string{`UPDATE audit SET seq = 9 WHERE seq = 5`}, 5, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cliTrail(t, dir)
			if r, errs, code := runVerify(t, dir); code != 0 || !r.Intact || r.Records != 6 || r.HeadSeq != 6 {
				t.Fatalf("before tampering: exit %d, %+v, stderr %q", code, r, errs)
			}
			if err := sqlExec(filepath.Join(dir, "sigil.db"), tc.stmts...); err != nil {
				t.Fatal(err)
			}
			out, errs, code := cli(t, "audit", "verify", "--data-dir", dir)
			if code != 1 || out != "" {
				t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, out)
			}
			m := problemLine.FindStringSubmatch(errs)
			if m == nil || !strings.Contains(errs, tc.what) {
				t.Fatalf("stderr %q: want one line \"sigil: audit record %d: …%s…\"", errs, tc.seq, tc.what)
			}
			if m[1] != strconv.FormatInt(tc.seq, 10) {
				t.Errorf("stderr names record %s, want %d: %q", m[1], tc.seq, errs)
			}
			r, errs, code := runVerify(t, dir)
			if code != 1 || r.Intact || r.Problem == nil || r.Problem.Seq != tc.seq || !problemLine.MatchString(errs) {
				t.Errorf("--json: exit %d, %+v, stderr %q; want 1 naming record %d", code, r, errs, tc.seq)
			}
		})
	}
}

// servedTrail runs `sigil serve` in-process on dir, gets n tokens, stops it
// gracefully and returns the tokens' jtis.
func servedTrail(t *testing.T, dir string, n int) []string {
	t.Helper()
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	mustCLI(t, &c, "client", "create", "--data-dir", dir, "--name", "svc", "--scopes", "read", "--json")
	node := startNode(t, "serve", "--data-dir", dir, "--keys-prepublish", "0s")
	var jtis []string
	for range n {
		tr := cliToken(t, node.issuer, c.ClientID, c.ClientSecret)
		_, cl := claimsOf(t, tr.AccessToken)
		jtis = append(jtis, cl["jti"].(string))
	}
	node.stop(t)
	return jtis
}

// TestAuditVerifyCheckpoints: a server's trail ends with a checkpoint
// over its head (written on shutdown); truncating the tail, or forging
// the checkpoint, is then caught and named.
func TestAuditVerifyCheckpoints(t *testing.T) {
	dir := t.TempDir()
	servedTrail(t, dir, 5)
	r, errs, code := runVerify(t, dir)
	if code != 0 || !r.Intact || r.Checkpoints < 1 || r.HeadSeq != 6 || r.LastCheckpoint != r.HeadSeq {
		t.Fatalf("exit %d, %+v, stderr %q; want intact, head 6 and a checkpoint at the head", code, r, errs)
	}
	db := filepath.Join(dir, "sigil.db")

	t.Run("truncate-tail", func(t *testing.T) {
		d := copyDir(t, dir)
		if err := sqlExec(filepath.Join(d, "sigil.db"), `DELETE FROM audit WHERE seq >= 5`); err != nil {
			t.Fatal(err)
		}
		_, errs, code := cli(t, "audit", "verify", "--data-dir", d)
		if m := problemLine.FindStringSubmatch(errs); code != 1 || m == nil || m[1] != "5" || !strings.Contains(errs, "truncated") {
			t.Errorf("exit %d, stderr %q; want 1 naming record 5 as truncated", code, errs)
		}
	})
	t.Run("forged-checkpoint", func(t *testing.T) {
		d := copyDir(t, dir)
		if err := sqlExec(filepath.Join(d, "sigil.db"), `UPDATE audit_checkpoints SET jws = jws || 'A' WHERE seq = 6`); err != nil {
			t.Fatal(err)
		}
		_, errs, code := cli(t, "audit", "verify", "--data-dir", d)
		if m := problemLine.FindStringSubmatch(errs); code != 1 || m == nil || m[1] != "6" || !strings.Contains(errs, "checkpoint") {
			t.Errorf("exit %d, stderr %q; want 1 naming the checkpoint of record 6", code, errs)
		}
	})
	t.Run("untouched", func(t *testing.T) {
		if _, _, code := cli(t, "audit", "verify", "--data-dir", dir); code != 0 {
			t.Errorf("the original store no longer verifies (%s)", db)
		}
	})
}

// copyDir copies a stopped store's directory with SQLite's own backup
// (VACUUM INTO), so tests can spoil the copy.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	d := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "sigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`VACUUM INTO ?`, filepath.Join(d, "sigil.db")); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), "sigil.db") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// TestAuditExport: jsonl has one JSON object per record, in chain order,
// the count equal to the head's seq; --checkpoints adds the signed
// checkpoints; other formats are bad usage.
func TestAuditExport(t *testing.T) {
	dir := t.TempDir()
	jtis := servedTrail(t, dir, 3)
	mustCLI(t, nil, "revoke", "--data-dir", dir, "--jti", jtis[0])
	r, _, code := runVerify(t, dir)
	if code != 0 || r.HeadSeq != 5 {
		t.Fatalf("verify: exit %d, %+v", code, r)
	}

	out := mustCLI(t, nil, "audit", "export", "--data-dir", dir, "--format", "jsonl")
	lines := parseJSONL(t, out)
	if int64(len(lines)) != r.HeadSeq {
		t.Fatalf("%d lines, want %d (the head's seq)", len(lines), r.HeadSeq)
	}
	for i, l := range lines {
		if l.Seq != int64(i+1) || l.Type != "" || len(l.Hash) != 64 || len(l.Prev) != 64 || l.Event == "" {
			t.Errorf("line %d: %+v", i+1, l)
		}
		if i > 0 && l.Prev != lines[i-1].Hash {
			t.Errorf("line %d does not link to line %d", i+1, i)
		}
	}
	issued := map[string]bool{}
	for _, l := range lines {
		if l.Event == "token.issued" {
			issued[l.JTI] = true
		}
	}
	for _, j := range jtis {
		if !issued[j] {
			t.Errorf("issued token %s has no token.issued line", j)
		}
	}
	if lines[len(lines)-1].Event != "token.revoked" || lines[len(lines)-1].JTI != jtis[0] {
		t.Errorf("last line %+v, want the CLI's revocation of %s", lines[len(lines)-1], jtis[0])
	}

	t.Run("checkpoints", func(t *testing.T) {
		all := parseJSONL(t, mustCLI(t, nil, "audit", "export", "--data-dir", dir, "--checkpoints"))
		var cps []exportLine
		for _, l := range all[len(lines):] {
			if l.Type != "checkpoint" {
				t.Errorf("after the records: %+v, want checkpoints only", l)
			}
			cps = append(cps, l)
		}
		if len(cps) != r.Checkpoints || len(cps) == 0 {
			t.Fatalf("%d checkpoint lines, want %d", len(cps), r.Checkpoints)
		}
		for _, cp := range cps {
			if cp.Seq < 1 || cp.Seq > r.HeadSeq || cp.Hash != lines[cp.Seq-1].Hash || strings.Count(cp.JWS, ".") != 2 {
				t.Errorf("checkpoint %+v does not match record %d", cp, cp.Seq)
			}
		}
	})
	t.Run("filters", func(t *testing.T) {
		got := parseJSONL(t, mustCLI(t, nil, "audit", "export", "--data-dir", dir, "--event", "token.issued", "--after", "2"))
		if len(got) != 2 || got[0].Seq != 3 || got[1].Seq != 4 {
			t.Errorf("--event token.issued --after 2: %+v, want records 3 and 4", got)
		}
		got = parseJSONL(t, mustCLI(t, nil, "audit", "export", "--data-dir", dir, "--jti", jtis[0]))
		if len(got) != 2 || got[0].Event != "token.issued" || got[1].Event != "token.revoked" {
			t.Errorf("--jti: %+v", got)
		}
		if out := mustCLI(t, nil, "audit", "export", "--data-dir", dir, "--until", "2000-01-01T00:00:00Z"); out != "" {
			t.Errorf("--until 2000: %q", out)
		}
	})
	t.Run("bad-usage", func(t *testing.T) {
		for _, args := range [][]string{{"--format", "csv"}, {"--format", "json"}, {"--since", "yesterday"}, {"--until", "-5m"}} {
			out, errs, code := cli(t, append([]string{"audit", "export", "--data-dir", dir}, args...)...)
			if code != 2 || out != "" || !strings.HasPrefix(errs, "sigil: ") || strings.Count(errs, "\n") != 1 {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and one line", args, code, out, errs)
			}
		}
	})
}

// TestAuditTailFollow runs `sigil audit tail --follow --json` in-process
// and writes a record after it started: it is printed, and cancelling the
// context (SIGINT) ends the command with exit 0.
func TestAuditTailFollow(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, nil, "client", "create", "--data-dir", dir, "--name", "before", "--json")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := new(syncBuffer), new(syncBuffer)
	m := &Main{Stdin: strings.NewReader(""), Stdout: out, Stderr: errb, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- m.Run(ctx, []string{"audit", "tail", "--follow", "--json", "--data-dir", dir}) }()

	eventually(t, 10*time.Second, "the existing record", func() bool { return strings.Count(out.String(), "\n") == 1 })
	var c struct {
		ClientID string `json:"client_id"`
	}
	mustCLI(t, &c, "client", "create", "--data-dir", dir, "--name", "after", "--json")
	eventually(t, 10*time.Second, "the new record", func() bool { return strings.Contains(out.String(), c.ClientID) })

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after cancel; stderr %q", code, errb)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail --follow did not stop after cancel")
	}
	lines := parseJSONL(t, out.String())
	if len(lines) != 2 || lines[0].Seq != 1 || lines[1].Seq != 2 || lines[1].Event != "client.created" || lines[1].ClientID != c.ClientID {
		t.Errorf("followed output: %+v", lines)
	}
	if lines[1].Prev != lines[0].Hash {
		t.Errorf("record 2 does not link to record 1")
	}
}
