package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/password"
	"github.com/sigil-sts/sigil/server"
)

// The user commands' behaviour is in testdata/script/user_*.txtar; these
// tests cover what a script cannot see: the exact password read from
// stdin, and the hash stored for it.

func TestReadPassword(t *testing.T) {
	long := strings.Repeat("x", password.MaxLength)
	for _, tc := range []struct {
		name, in, want string
		usage          bool
	}{
		{"newline", "correct horse\n", "correct horse", false},
		{"crlf", "correct horse\r\n", "correct horse", false},
		{"no-newline", "correct horse", "correct horse", false},
		{"first-line-only", "first line\nsecond line\n", "first line", false},
		{"spaces-kept", "  spaced out \t\n", "  spaced out \t", false},
		{"max-length", long + "\r\n", long, false},
		{"max-length-no-newline", long, long, false},
		{"empty", "", "", true},
		{"empty-line", "\n", "", true},
		{"too-long", long + "x\n", "", true},
		{"too-long-no-newline", long + "xyz", "", true},
		{"huge", strings.Repeat("x", 1<<20), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readPassword(strings.NewReader(tc.in))
			var ue *usageError
			if tc.usage != errors.As(err, &ue) || (err != nil && !tc.usage) {
				t.Fatalf("readPassword: %v; want a usage error: %v", err, tc.usage)
			}
			if got != tc.want {
				t.Errorf("readPassword = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("read-error", func(t *testing.T) {
		_, err := readPassword(iotest.ErrReader(errors.New("broken pipe")))
		var ue *usageError
		if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "broken pipe") {
			t.Errorf("readPassword on a failing reader: %v", err)
		}
	})
}

// TestUserPasswordStored creates a user and sets their password through
// Main with passwords on stdin, and checks the stored argon2id hashes
// against exactly those passwords.
func TestUserPasswordStored(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	run := func(stdin string, args ...string) string {
		t.Helper()
		var out, errb strings.Builder
		m := &Main{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		if code := m.Run(context.Background(), append(args, "--data-dir", dir)); code != 0 {
			t.Fatalf("sigil %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
		if strings.Contains(out.String(), "first pass") || strings.Contains(out.String(), "second pass") {
			t.Errorf("sigil %s printed the password: %s", strings.Join(args, " "), out.String())
		}
		return out.String()
	}
	var u struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(run(" first pass \r\nignored\n", "user", "create", "--username", "Zoe", "--password-stdin", "--json")), &u); err != nil {
		t.Fatal(err)
	}
	stored := func() string {
		t.Helper()
		cfg := config.Default()
		cfg.DataDir = dir
		core, err := server.OpenCore(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer core.Close()
		user, err := core.Store.UserByName(context.Background(), "zoe")
		if err != nil {
			t.Fatal(err)
		}
		if user.ID != u.ID {
			t.Errorf("stored user %s, created %s", user.ID, u.ID)
		}
		return user.PasswordHash
	}
	check := func(hash, right string, wrong ...string) {
		t.Helper()
		if ok, rehash, err := password.Verify(hash, right); !ok || rehash || err != nil {
			t.Errorf("Verify(%q) = %v, %v, %v", right, ok, rehash, err)
		}
		for _, w := range wrong {
			if ok, _, _ := password.Verify(hash, w); ok {
				t.Errorf("the stored hash matches %q", w)
			}
		}
	}
	check(stored(), " first pass ", "first pass", " first pass \r", " first pass \r\n")

	run("second pass\n", "user", "set-password", "ZOE", "--password-stdin")
	check(stored(), "second pass", " first pass ", "second pass\n")
}
