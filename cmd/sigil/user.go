package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/password"
)

// A password is never a flag value: flags show in ps, shell history and
// the environment of child processes. --password-stdin reads it from the
// first line of standard input instead.

func userCreateFlags(fs *flag.FlagSet, o *options) {
	storeFlags(fs, o)
	fs.StringVar(&o.username, "username", "", "sign-in name (required): letters, digits, '.', '_', '-', '@'; stored lower case")
	fs.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from the first line of standard input (required)")
	fs.StringVar(&o.claims, "claims", "", `the user's claims as a JSON object, e.g. '{"email":"a@example.com","groups":["staff"]}'`)
}

func userSetPasswordFlags(fs *flag.FlagSet, o *options) {
	storeFlags(fs, o)
	fs.BoolVar(&o.passwordStdin, "password-stdin", false, "read the new password from the first line of standard input (required)")
}

func userUpdateFlags(fs *flag.FlagSet, o *options) {
	storeFlags(fs, o)
	fs.StringVar(&o.username, "username", "", "new sign-in name")
	fs.StringVar(&o.claims, "claims", "", `replace the user's claims with this JSON object ('{}' clears them)`)
	fs.BoolVar(&o.disable, "disable", false, "disable the user: no sign-in, and the tokens issued so far are revoked")
	fs.BoolVar(&o.enable, "enable", false, "enable a disabled user")
}

// readPassword reads the first line of r, without its line ending ("\n"
// or "\r\n"); nothing else is trimmed, so spaces are part of the password.
func readPassword(r io.Reader) (string, error) {
	// Room for the longest password and its line ending, plus one byte to
	// tell a longer line apart without reading all of a huge one.
	limit := password.MaxLength + 3
	line, err := bufio.NewReader(io.LimitReader(r, int64(limit))).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if len(line) > password.MaxLength {
		return "", usagef("the password on stdin is longer than %d bytes", password.MaxLength)
	}
	if line == "" {
		return "", usagef("--password-stdin read no password; pipe it in, e.g. printf '%%s\\n' \"$PASSWORD\" | sigil ...")
	}
	return line, nil
}

// stdinPassword reads the password that --password-stdin promises.
func stdinPassword(m *Main, o *options, cmd string) (string, error) {
	if !o.passwordStdin {
		return "", usagef("%s needs --password-stdin: the password is read from the first line of standard input, never from a flag", cmd)
	}
	return readPassword(m.Stdin)
}

// parseClaims reads --claims as a JSON object.
func parseClaims(s string) (map[string]any, error) {
	var claims map[string]any
	if err := json.Unmarshal([]byte(s), &claims); err != nil || claims == nil {
		if err == nil {
			err = errors.New("got null")
		}
		return nil, usagef("--claims must be a JSON object: %v", err)
	}
	return claims, nil
}

// userError turns a missing user (named idOrName) or a taken username
// (username) into an error that says what to do.
func userError(idOrName, username string, err error) error {
	switch {
	case errors.Is(err, sigil.ErrNotFound):
		return fmt.Errorf("user %q not found; \"sigil user list\" shows the users", idOrName)
	case errors.Is(err, sigil.ErrConflict):
		return fmt.Errorf("username %q is taken; choose another", strings.ToLower(username))
	}
	return err
}

// printUserThenFail prints a user that was changed even when err reports
// that what follows the change (its audit record, a revocation) failed.
func printUserThenFail(m *Main, o *options, u *admin.UserInfo, err error) error {
	if u != nil {
		if perr := printUser(m.Stdout, o.json, u); perr != nil {
			return perr
		}
	}
	return err
}

func printUser(w io.Writer, asJSON bool, u *admin.UserInfo) error {
	if asJSON {
		return json.NewEncoder(w).Encode(u)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\n", u.ID)
	fmt.Fprintf(tw, "username\t%s\n", u.Username)
	fmt.Fprintf(tw, "disabled\t%t\n", u.Disabled)
	if len(u.Claims) > 0 {
		b, _ := json.Marshal(u.Claims)
		fmt.Fprintf(tw, "claims\t%s\n", b)
	}
	fmt.Fprintf(tw, "created\t%s\n", u.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "updated\t%s\n", u.UpdatedAt.Format(time.RFC3339))
	return tw.Flush()
}

func runUserCreate(ctx context.Context, m *Main, o *options) error {
	if o.username == "" {
		return usagef("user create needs --username")
	}
	spec := admin.UserSpec{Username: o.username}
	if o.claims != "" {
		var err error
		if spec.Claims, err = parseClaims(o.claims); err != nil {
			return err
		}
	}
	pw, err := stdinPassword(m, o, "user create")
	if err != nil {
		return err
	}
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	u, err := core.Admin.CreateUser(ctx, spec, pw)
	return printUserThenFail(m, o, u, userError(o.username, o.username, err))
}

func runUserList(ctx context.Context, m *Main, o *options) error {
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	us, err := core.Admin.Users(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(m.Stdout).Encode(us)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSERNAME\tDISABLED\tCREATED")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\n", u.ID, u.Username, u.Disabled, u.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func runUserGet(ctx context.Context, m *Main, o *options) error {
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	u, err := core.Admin.User(ctx, o.args[0])
	if err != nil {
		return userError(o.args[0], o.username, err)
	}
	return printUser(m.Stdout, o.json, u)
}

func runUserDelete(ctx context.Context, m *Main, o *options) error {
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	u, err := core.Admin.DeleteUser(ctx, o.args[0])
	if u == nil {
		return userError(o.args[0], o.username, err)
	}
	if o.json {
		if perr := json.NewEncoder(m.Stdout).Encode(map[string]any{"id": u.ID, "username": u.Username, "deleted": true}); perr != nil {
			return perr
		}
	} else {
		fmt.Fprintf(m.Stdout, "deleted user %s (%s); their tokens are revoked\n", u.Username, u.ID)
	}
	return err
}

func runUserSetPassword(ctx context.Context, m *Main, o *options) error {
	pw, err := stdinPassword(m, o, "user set-password")
	if err != nil {
		return err
	}
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	u, err := core.Admin.SetPassword(ctx, o.args[0], pw)
	if u == nil {
		return userError(o.args[0], o.username, err)
	}
	if o.json {
		return printUserThenFail(m, o, u, err)
	}
	fmt.Fprintf(m.Stdout, "password set for user %s (%s)\n", u.Username, u.ID)
	return err
}

func runUserUpdate(ctx context.Context, m *Main, o *options) error {
	var upd admin.UserUpdate
	if o.username != "" {
		upd.Username = &o.username
	}
	if o.claims != "" {
		var err error
		if upd.Claims, err = parseClaims(o.claims); err != nil {
			return err
		}
	}
	switch {
	case o.disable && o.enable:
		return usagef("user update takes --disable or --enable, not both")
	case o.disable || o.enable:
		upd.Disabled = &o.disable
	case upd.Username == nil && upd.Claims == nil:
		return usagef("user update needs --claims, --username, --disable or --enable")
	}
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	u, err := core.Admin.UpdateUser(ctx, o.args[0], upd)
	return printUserThenFail(m, o, u, userError(o.args[0], o.username, err))
}
