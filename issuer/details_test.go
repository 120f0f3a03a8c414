package issuer_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/issuer"
)

const (
	codeInvalidDetails = "invalid_authorization_details"
	tool2URL           = "https://tools2.example/mcp"
)

// toolDetails is an authorization_details parameter for mcp_tool objects,
// resource then tools, separated by "|" between objects.
func toolDetails(objects ...[]string) string {
	var l authzdetails.List
	for _, o := range objects {
		l = append(l, authzdetails.Detail{Type: authzdetails.TypeMCPTool, Resource: o[0], Tools: o[1:]})
	}
	return l.Encode()
}

// detailsOf decodes a JSON member (a token response's, a claim, an
// introspection answer's) as authorization details.
func detailsOf(t testing.TB, v any) authzdetails.List {
	t.Helper()
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var l authzdetails.List
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("authorization_details %s: %v", b, err)
	}
	return l
}

func tools(resource string, names ...string) authzdetails.List {
	return authzdetails.List{{Type: authzdetails.TypeMCPTool, Resource: resource, Tools: names}}
}

// wantDetails checks that a token response, its access token and the
// token's introspection all carry want.
func wantDetails(t *testing.T, n *testNode, caller auth, r reply, want authzdetails.List) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	if got := detailsOf(t, m["authorization_details"]); !cmp.Equal(got, want) {
		t.Errorf("token response authorization_details = %v, want %v", got, want)
	}
	tok, _ := m["access_token"].(string)
	if got := detailsOf(t, claims(t, tok)["authorization_details"]); !cmp.Equal(got, want) {
		t.Errorf("access token authorization_details = %v, want %v", got, want)
	}
	in := n.introspect(t, caller, tok).json(t)
	if got := detailsOf(t, in["authorization_details"]); in["active"] != true || !cmp.Equal(got, want) {
		t.Errorf("introspection: active %v, authorization_details %v, want %v", in["active"], got, want)
	}
}

// TestClientCredentialsDetails: a client asks for tools on its own
// audiences; the token, the response and introspection carry them and
// aud is their resource. Every bad request is invalid_authorization_details.
func TestClientCredentialsDetails(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{Name: "agent", GrantTypes: []string{"client_credentials"},
		Scope: "read", Audience: []string{"https://api.example", toolURL, tool2URL}})
	cc := func(kv ...string) reply {
		form := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(kv); i += 2 {
			form.Add(kv[i], kv[i+1])
		}
		return n.postForm(t, "/token", form, basic(c))
	}

	t.Run("granted and addressed to the resource", func(t *testing.T) {
		r := cc("authorization_details", toolDetails([]string{toolURL, "search", "fetch"}))
		wantDetails(t, n, basic(c), r, tools(toolURL, "search", "fetch"))
		if aud := claims(t, r.str(t, "access_token"))["aud"]; aud != toolURL {
			t.Errorf("aud = %v, want the detail's resource %s", aud, toolURL)
		}
	})
	t.Run("two resources", func(t *testing.T) {
		r := cc("authorization_details", toolDetails([]string{toolURL, "search"}, []string{tool2URL, "x"}))
		if aud := strList(claims(t, r.str(t, "access_token"))["aud"]); !slices.Equal(aud, []string{toolURL, tool2URL}) {
			t.Errorf("aud = %v", aud)
		}
	})
	t.Run("resource parameters that include it", func(t *testing.T) {
		r := cc("authorization_details", toolDetails([]string{toolURL, "search"}), "resource", "https://api.example", "resource", toolURL)
		if aud := strList(claims(t, r.str(t, "access_token"))["aud"]); !slices.Equal(aud, []string{"https://api.example", toolURL}) {
			t.Errorf("aud = %v", aud)
		}
	})
	t.Run("none asked, none given", func(t *testing.T) {
		r := cc()
		m := r.json(t)
		if _, ok := m["authorization_details"]; ok {
			t.Errorf("response without a request has authorization_details: %s", r.body)
		}
		if _, ok := claims(t, m["access_token"].(string))["authorization_details"]; ok {
			t.Error("token without a request has authorization_details")
		}
	})
	t.Run("empty parameter is omitted", func(t *testing.T) {
		if r := cc("authorization_details", ""); r.status != http.StatusOK {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})
	for _, tc := range []struct{ name, details, resource string }{
		{"resource not the client's audience", toolDetails([]string{"https://evil.example/mcp", "search"}), ""},
		{"resource outside the resource parameters", toolDetails([]string{toolURL, "search"}), "https://api.example"},
		{"malformed", `[{"type":"mcp_tool"`, ""},
		{"unknown type", `[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"123.50"}}]`, ""},
		{"object", `{"type":"mcp_tool","resource":"` + toolURL + `","tools":["a"]}`, ""},
		{"repeated member", `[{"type":"mcp_tool","resource":"` + toolURL + `","tools":["a"],"tools":["b"]}]`, ""},
		{"wildcard tool", toolDetails([]string{toolURL, "*"}), ""},
		{"too large", toolDetails([]string{toolURL, strings.Repeat("a", 4100)}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := []string{"authorization_details", tc.details}
			if tc.resource != "" {
				kv = append(kv, "resource", tc.resource)
			}
			wantError(t, cc(kv...), http.StatusBadRequest, codeInvalidDetails)
		})
	}
	t.Run("repeated parameter", func(t *testing.T) {
		d := toolDetails([]string{toolURL, "search"})
		wantError(t, cc("authorization_details", d, "authorization_details", d), http.StatusBadRequest, "invalid_request")
	})
}

// exchangeFixture is a client that exchanges its own tokens and a
// sub-agent it may address them to.
type exchangeFixture struct {
	n    *testNode
	x, b *admin.ClientInfo
}

func newExchangeFixture(t *testing.T, bAudiences ...string) exchangeFixture {
	n := startNode(t)
	b := n.newClient(t, admin.ClientSpec{Name: "sub-agent", GrantTypes: []string{"client_credentials", grantExchange},
		Scope: "read", Audience: bAudiences})
	x := n.newClient(t, admin.ClientSpec{Name: "agent", GrantTypes: []string{"client_credentials", grantExchange},
		Scope: "read", Audience: []string{toolURL, tool2URL, issuer.ClientAudience(b.ClientID)}})
	return exchangeFixture{n: n, x: x, b: b}
}

func (f exchangeFixture) exchange(t *testing.T, caller *admin.ClientInfo, subject string, kv ...string) reply {
	t.Helper()
	form := url.Values{"grant_type": {grantExchange}, "subject_token": {subject}, "subject_token_type": {issuer.TokenTypeAccessToken}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Add(kv[i], kv[i+1])
	}
	return f.n.postForm(t, "/token", form, basic(caller))
}

// TestExchangeNarrowsDetails: every exchange keeps or narrows the subject
// token's authorization details, never widens them, however many hops.
func TestExchangeNarrowsDetails(t *testing.T) {
	f := newExchangeFixture(t, toolURL)
	subject := f.n.token(t, f.x, url.Values{"scope": {"read"}, "authorization_details": {toolDetails([]string{toolURL, "search", "fetch"})}})
	plain := f.n.token(t, f.x, url.Values{"scope": {"read"}})

	t.Run("carried over", func(t *testing.T) {
		wantDetails(t, f.n, basic(f.x), f.exchange(t, f.x, subject), tools(toolURL, "search", "fetch"))
	})
	t.Run("subset", func(t *testing.T) {
		r := f.exchange(t, f.x, subject, "authorization_details", toolDetails([]string{toolURL, "fetch"}))
		wantDetails(t, f.n, basic(f.x), r, tools(toolURL, "fetch"))
		if aud := claims(t, r.str(t, "access_token"))["aud"]; aud != toolURL {
			t.Errorf("aud = %v, want %s", aud, toolURL)
		}
	})
	t.Run("no subject details", func(t *testing.T) {
		r := f.exchange(t, f.x, plain)
		if r.status != http.StatusOK || r.json(t)["authorization_details"] != nil {
			t.Errorf("exchange of a token without details: %d %s", r.status, r.body)
		}
	})
	for _, tc := range []struct{ name, subject, details string }{
		{"superset", subject, toolDetails([]string{toolURL, "search", "fetch", "delete"})},
		{"other tool", subject, toolDetails([]string{toolURL, "delete"})},
		{"other resource of the client", subject, toolDetails([]string{tool2URL, "search"})},
		{"extra resource", subject, toolDetails([]string{toolURL, "search"}, []string{tool2URL, "search"})},
		{"resource outside the client's audiences", subject, toolDetails([]string{"https://evil.example", "search"})},
		{"added to a token without", plain, toolDetails([]string{toolURL, "search"})},
		{"malformed", subject, `[{"type":"mcp_tool","resource":"` + toolURL + `","tools":"search"}]`},
		{"empty array", subject, `[]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, f.exchange(t, f.x, tc.subject, "authorization_details", tc.details), http.StatusBadRequest, codeInvalidDetails)
		})
	}

	t.Run("no widening on the second hop", func(t *testing.T) {
		// X narrows to fetch and addresses the token to B; B cannot get
		// search back, but keeps fetch, at the tool.
		first := f.exchange(t, f.x, subject, "audience", issuer.ClientAudience(f.b.ClientID),
			"authorization_details", toolDetails([]string{toolURL, "fetch"}))
		if first.status != http.StatusOK {
			t.Fatalf("first hop: %d %s", first.status, first.body)
		}
		t1 := first.str(t, "access_token")
		if aud := claims(t, t1)["aud"]; aud != issuer.ClientAudience(f.b.ClientID) {
			t.Errorf("first hop aud = %v", aud)
		}
		wantError(t, f.exchange(t, f.b, t1, "authorization_details", toolDetails([]string{toolURL, "search", "fetch"})),
			http.StatusBadRequest, codeInvalidDetails)
		second := f.exchange(t, f.b, t1, "resource", toolURL)
		wantDetails(t, f.n, basic(f.b), second, tools(toolURL, "fetch"))
	})
}

// TestExchangeDetailsOutsideClientAudiences: a client gets only the
// subject token's details for its own audiences; if none is left the
// exchange is refused rather than issuing a token without details.
func TestExchangeDetailsOutsideClientAudiences(t *testing.T) {
	f := newExchangeFixture(t, tool2URL)
	subject := f.n.token(t, f.x, url.Values{"scope": {"read"}, "authorization_details": {toolDetails([]string{toolURL, "search"}, []string{tool2URL, "x"})}})
	toB := f.exchange(t, f.x, subject, "audience", issuer.ClientAudience(f.b.ClientID))
	if toB.status != http.StatusOK {
		t.Fatalf("X addresses the token to B: %d %s", toB.status, toB.body)
	}
	wantDetails(t, f.n, basic(f.b), f.exchange(t, f.b, toB.str(t, "access_token")), tools(tool2URL, "x"))

	only := f.n.token(t, f.x, url.Values{"scope": {"read"}, "authorization_details": {toolDetails([]string{toolURL, "search"})}})
	toB = f.exchange(t, f.x, only, "audience", issuer.ClientAudience(f.b.ClientID))
	if toB.status != http.StatusOK {
		t.Fatalf("X addresses the token to B: %d %s", toB.status, toB.body)
	}
	wantError(t, f.exchange(t, f.b, toB.str(t, "access_token")), http.StatusBadRequest, codeInvalidDetails)
}
