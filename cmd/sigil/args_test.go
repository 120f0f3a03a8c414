package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/oauth2"
)

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		args                    []string
		path, flags, positional []string
	}{
		{
			args:  []string{"client", "create", "--data-dir", "D", "--name", "N"},
			path:  []string{"client", "create"},
			flags: []string{"--data-dir", "D", "--name", "N"},
		},
		{
			args:  []string{"--data-dir", "D", "client", "create", "--name", "N"},
			path:  []string{"client", "create"},
			flags: []string{"--data-dir", "D", "--name", "N"},
		},
		{
			args:  []string{"client", "--data-dir", "D", "create"},
			path:  []string{"client", "create"},
			flags: []string{"--data-dir", "D"},
		},
		{
			args:       []string{"client", "get", "ID", "--json"},
			path:       []string{"client", "get"},
			flags:      []string{"--json"},
			positional: []string{"ID"},
		},
		{
			args:       []string{"client", "get", "--json", "ID"},
			path:       []string{"client", "get"},
			flags:      []string{"--json"},
			positional: []string{"ID"},
		},
		{
			args:  []string{"client", "create", "--dpop-bound", "--introspect", "--name", "N"},
			path:  []string{"client", "create"},
			flags: []string{"--dpop-bound", "--introspect", "--name", "N"},
		},
		{
			args:       []string{"client", "get", "--data-dir=D", "ID"},
			path:       []string{"client", "get"},
			flags:      []string{"--data-dir=D"},
			positional: []string{"ID"},
		},
		{
			args:       []string{"user", "update", "--disable", "alice", "--username", "bob"},
			path:       []string{"user", "update"},
			flags:      []string{"--disable", "--username", "bob"},
			positional: []string{"alice"},
		},
		{
			args:       []string{"decode", "-"},
			path:       []string{"decode"},
			positional: []string{"-"},
		},
		{
			args:       []string{"client", "get", "--json", "--", "-odd-id"},
			path:       []string{"client", "get"},
			flags:      []string{"--json"},
			positional: []string{"-odd-id"},
		},
		{
			args:  []string{"-h"},
			flags: []string{"-h"},
		},
		{
			args: []string{"bogus", "words"},
			path: []string{"bogus", "words"},
		},
	} {
		path, flags, positional := splitArgs(tc.args)
		if diff := cmp.Diff([]any{tc.path, tc.flags, tc.positional}, []any{path, flags, positional}, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("splitArgs(%q): (-want +got) [path flags positional]:\n%s", tc.args, diff)
		}
	}
}

// TestBoolFlags checks that every boolean flag of every command is known
// to splitArgs, so that the word after it is never taken as its value.
func TestBoolFlags(t *testing.T) {
	for _, name := range []string{"json", "dpop-bound", "introspect", "password-stdin", "disable", "enable", "help", "h"} {
		if !isBoolFlag(name) {
			t.Errorf("isBoolFlag(%q) = false", name)
		}
	}
	for _, name := range []string{"data-dir", "name", "alg", "jti", "issuer", "keys-prepublish", "username", "claims"} {
		if isBoolFlag(name) {
			t.Errorf("isBoolFlag(%q) = true", name)
		}
	}
}

func TestTokenJSON(t *testing.T) {
	raw := map[string]any{"access_token": "a.b.c", "token_type": "Bearer", "expires_in": float64(300)}
	tok := (&oauth2.Token{AccessToken: "a.b.c", TokenType: "Bearer", Expiry: time.Now().Add(299 * time.Second)}).WithExtra(raw)
	got := tokenJSON(tok, "read")
	want := map[string]any{"access_token": "a.b.c", "token_type": "Bearer", "expires_in": int64(300), "scope": "read"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tokenJSON without scope in the response (-want +got):\n%s", diff)
	}

	raw["scope"] = "read write"
	tok = tok.WithExtra(raw)
	if got := tokenJSON(tok, "read"); got["scope"] != "read write" {
		t.Errorf("scope = %v, want the granted scope from the response", got["scope"])
	}

	// No expires_in member: derived from the expiry.
	tok = (&oauth2.Token{AccessToken: "a.b.c", TokenType: "Bearer", Expiry: time.Now().Add(120 * time.Second)}).WithExtra(map[string]any{})
	if got := tokenJSON(tok, ""); got["expires_in"] != int64(120) || got["scope"] != "" {
		t.Errorf("tokenJSON without expires_in = %v, want expires_in 120 and scope \"\"", got)
	}
}
