package issuer_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/sigil-sts/sigil/admin"
)

// TestEmptyResourceIsOmitted: RFC 6749 §3.2 — a parameter sent without a
// value counts as omitted, so resource= gets the default audience rather
// than invalid_target.
func TestEmptyResourceIsOmitted(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{Scope: "read", Audience: []string{"https://api.example", "https://other.example"}})
	for _, form := range []url.Values{
		{"grant_type": {"client_credentials"}, "resource": {""}},
		{"grant_type": {"client_credentials"}, "resource": {"", "https://other.example"}},
	} {
		r := n.postForm(t, "/token", form, basic(c))
		if r.status != http.StatusOK {
			t.Fatalf("%v: status %d %s", form, r.status, r.body)
		}
		want := "https://api.example"
		if len(form["resource"]) == 2 {
			want = "https://other.example"
		}
		if aud := claims(t, r.json(t)["access_token"].(string))["aud"]; aud != want {
			t.Errorf("%v: aud = %v, want %s", form, aud, want)
		}
	}
}
