package issuer_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/issuer"
)

// largestDetails is an mcp_tool parameter for resource of exactly
// authzdetails.MaxBytes, written compactly: MaxTools tools, padded.
func largestDetails(resource string) string {
	names := make([]string, authzdetails.MaxTools)
	for i := range names {
		names[i] = fmt.Sprintf("t%02d", i)
	}
	build := func() string {
		return `[{"type":"mcp_tool","resource":"` + resource + `","tools":["` + strings.Join(names, `","`) + `"]}]`
	}
	for i := 0; len(build()) < authzdetails.MaxBytes; i++ {
		names[i] += strings.Repeat("x", min(authzdetails.MaxBytes-len(build()), authzdetails.MaxToolName-len(names[i])))
	}
	return build()
}

// TestCodeFlowLargestDetailsRedeem: details the authorization endpoint
// accepted, at the size limit, for a resource with a character
// encoding/json escapes for HTML ('&'), are read back from the stored
// code and the refresh family: the code redeems and the family refreshes,
// never a server_error after the user consented.
func TestCodeFlowLargestDetailsRedeem(t *testing.T) {
	n := startNode(t)
	c := newToolRP(t, n)
	newUser(t, n, "alice", alicePassword, nil)
	details := largestDetails(oddToolURL)
	want, err := authzdetails.Parse(details)
	if err != nil {
		t.Fatalf("the test's details: %v", err)
	}
	pk := newPKCE()
	params := c.authParams(pk, "openid offline_access")
	params.Set("authorization_details", details)
	code := newBrowser(t, n).codeFor(c, params, "alice", alicePassword).Get("code")
	r := n.redeem(t, c, code, pk.verifier)
	if r.status != http.StatusOK {
		t.Fatalf("redeeming the code: %d %s", r.status, r.body)
	}
	wantDetails(t, n, c.auth(), r, want)
	wantDetails(t, n, c.auth(), n.refresh(t, c, r.str(t, "refresh_token"), nil), want)
}

// TestRememberedDetailsConsentSheds: a consent the user gave to tools on
// a resource is not remembered as consent to that resource without them.
// A later request for the same scopes at the same resource, without
// authorization_details, would otherwise skip the page (or pass
// prompt=none) and get a token for the resource with no details, which
// a tool server may read as bounded by its scopes alone: every tool.
func TestRememberedDetailsConsentSheds(t *testing.T) {
	n := startNode(t)
	c := newToolRP(t, n)
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	params := c.authParams(newPKCE(), "openid")
	params.Set("authorization_details", toolDetails([]string{toolURL, "search"}))
	b.codeFor(c, params, "alice", alicePassword)

	for _, resource := range []string{"", toolURL} {
		t.Run("resource="+resource, func(t *testing.T) {
			pk := newPKCE()
			plain := c.authParams(pk, "openid")
			if resource != "" {
				plain.Set("resource", resource)
			}
			if p := b.authorize(plain); !p.isConsent() {
				t.Errorf("a request without details for the resource of a tools-only consent skipped the page: %d %.300s", p.status, p.body)
			}
			plain.Set("prompt", "none")
			resp := b.authorize(plain).response(t, c.redirectURI)
			if resp.Get("error") != "consent_required" {
				r := n.redeem(t, c, resp.Get("code"), pk.verifier)
				t.Errorf("prompt=none without details: %v; token claims %v", resp, claims(t, r.str(t, "access_token")))
			}
		})
	}
}

// TestIDTokenExchangeKeepsToolsBound: after a code flow in which alice
// allowed agent A only the tool search on the tool server, A's ID token
// for her cannot be exchanged for a token addressed to that tool server
// (which would carry no details: every tool, to a server reading scopes
// alone).
func TestIDTokenExchangeKeepsToolsBound(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic", func(s *admin.ClientSpec) {
		s.GrantTypes = append(s.GrantTypes, grantExchange)
		s.Audience = []string{"https://api.example.com", toolURL}
	})
	newUser(t, n, "alice", alicePassword, nil)
	pk := newPKCE()
	params := c.authParams(pk, "openid")
	params.Set("authorization_details", toolDetails([]string{toolURL, "search"}))
	r := n.redeem(t, c, newBrowser(t, n).codeFor(c, params, "alice", alicePassword).Get("code"), pk.verifier)
	if r.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", r.status, r.body)
	}
	idt := url.Values{"grant_type": {grantExchange}, "subject_token": {r.str(t, "id_token")},
		"subject_token_type": {issuer.TokenTypeIDToken}, "scope": {"openid"}}
	toTool := with(idt, "audience", toolURL)
	wantError(t, n.postForm(t, "/token", toTool, c.auth()), http.StatusBadRequest, "invalid_target")
}
