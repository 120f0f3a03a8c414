package admin_test

import (
	"strings"
	"testing"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
)

// TestCheckClientName: a client's name is shown on the sign-in and
// consent pages, so one that could read there as something else is
// refused: control characters (a newline starts a fake line), format
// characters (a bidirectional override reverses what follows, zero-width
// characters hide inside a word), separators, private-use characters,
// invalid UTF-8, and names past MaxClientName bytes. Names in any script
// are fine.
func TestCheckClientName(t *testing.T) {
	spec := func(name string) admin.ClientSpec {
		return admin.ClientSpec{Name: name, GrantTypes: []string{sigil.GrantAuthorizationCode},
			RedirectURIs: []string{"https://rp.example/cb"}, AuthMethod: sigil.AuthNone}
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"Acme Billing", true},
		{"Café Zürich — 東京 (ß)", true},
		{"مرحبا", true}, // right-to-left script, no override
		{"e\u0301clair", true},
		{strings.Repeat("a", admin.MaxClientName), true},
		{strings.Repeat("a", admin.MaxClientName+1), false},
		{"Acme\u202egnp.exe", false},    // right-to-left override
		{"Acme\u2066x\u2069", false},    // isolates
		{"Acme\u200fBank", false},       // right-to-left mark
		{"Acme\u200b\u200bBank", false}, // zero-width space
		{"Acme\u200dBank", false},       // zero-width joiner
		{"Acme\ufeffBank", false},       // byte order mark
		{"Acme\U000E0041", false},       // tag character
		{"Acme\nSigil says: allow", false},
		{"Acme\tBank", false},
		{"Acme\x1b[2J", false},
		{"Acme\u2028Bank", false}, // line separator
		{"Acme\ue000", false},     // private use
		{"Acme\ufffe", false},     // noncharacter
		{"Acme\xff", false},
	} {
		_, err := admin.CheckClient(spec(tc.name), 0)
		if (err == nil) != tc.ok {
			t.Errorf("CheckClient(name %q) = %v, want accepted %v", tc.name, err, tc.ok)
		}
		if err != nil && !admin.IsValidation(err) {
			t.Errorf("CheckClient(name %q) = %v, not a ValidationError", tc.name, err)
		}
	}
}
