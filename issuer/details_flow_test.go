package issuer_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil/admin"
	"golang.org/x/oauth2"
)

// toolRP is a confidential code-flow client whose audiences are two tool
// servers, one with characters HTML must escape.
const oddToolURL = "https://tools.example/a&b'c"

func newToolRP(t *testing.T, n *testNode) rp {
	return newRP(t, n, "client_secret_basic", func(s *admin.ClientSpec) {
		s.Audience = []string{toolURL, oddToolURL}
	})
}

// TestCodeFlowDetails runs the code flow with golang.org/x/oauth2 as the
// client: the consent page names the tools in plain, escaped words; the
// code's tokens carry them (the token response, the access token,
// introspection) and aud is their resource; refresh keeps them, narrows
// them for one access token without changing the family's, and never
// widens or adds them.
func TestCodeFlowDetails(t *testing.T) {
	n := startNode(t)
	c := newToolRP(t, n)
	newUser(t, n, "alice", alicePassword, nil)
	details := toolDetails([]string{toolURL, "search", "fetch"}, []string{oddToolURL, "x"})
	cfg := oauth2.Config{
		ClientID: c.info.ClientID, ClientSecret: c.info.ClientSecret, RedirectURL: c.redirectURI,
		Endpoint: oauth2.Endpoint{AuthURL: n.url("/authorize"), TokenURL: n.url("/token"), AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "offline_access"},
	}
	verifier := oauth2.GenerateVerifier()
	b := newBrowser(t, n)
	p := b.get(cfg.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("authorization_details", details)))
	p = b.signIn(p, "alice", alicePassword)
	if !p.isConsent() {
		t.Fatalf("no consent page: %d %.300s", p.status, p.body)
	}
	for _, want := range []string{
		"Use the tools <code>search</code>, <code>fetch</code> on <code>https://tools.example/mcp</code>",
		"Use the tool <code>x</code> on <code>https://tools.example/a&amp;b&#39;c</code>",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("consent page lacks %q:\n%s", want, p.body)
		}
	}
	resp := b.decide(p, "allow").response(t, c.redirectURI)
	ctx, _ := oauthClient(t)
	tok, err := cfg.Exchange(ctx, resp.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	want := append(tools(toolURL, "search", "fetch"), tools(oddToolURL, "x")...)
	if got := detailsOf(t, tok.Extra("authorization_details")); !cmp.Equal(got, want) {
		t.Errorf("token response authorization_details = %v, want %v", got, want)
	}
	m := claims(t, tok.AccessToken)
	if got := detailsOf(t, m["authorization_details"]); !cmp.Equal(got, want) {
		t.Errorf("access token authorization_details = %v", got)
	}
	if aud := strList(m["aud"]); !cmp.Equal(aud, []string{toolURL, oddToolURL}) {
		t.Errorf("aud = %v, want the details' resources", aud)
	}
	if in := n.introspect(t, c.auth(), tok.AccessToken).json(t); !cmp.Equal(detailsOf(t, in["authorization_details"]), want) {
		t.Errorf("introspection = %v", in)
	}

	// Refresh: all of it by default; narrowed on request, for that access
	// token only; never more, never another resource.
	rt := tok.RefreshToken
	refresh := func(kv ...string) reply {
		extra := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			extra.Set(kv[i], kv[i+1])
		}
		r := n.refresh(t, c, rt, extra)
		if r.status == http.StatusOK {
			rt = r.str(t, "refresh_token")
		}
		return r
	}
	narrowed := refresh("authorization_details", toolDetails([]string{toolURL, "fetch"}))
	wantDetails(t, n, c.auth(), narrowed, tools(toolURL, "fetch"))
	wantDetails(t, n, c.auth(), refresh(), want)
	for _, tc := range []struct{ name, details string }{
		{"wider", toolDetails([]string{toolURL, "search", "fetch", "delete"})},
		{"other resource", toolDetails([]string{"https://tools2.example/mcp", "search"})},
		{"malformed", `[{"type":"mcp_tool","resource":"` + toolURL + `","tools":["search"],"Tools":["delete"]}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, refresh("authorization_details", tc.details), http.StatusBadRequest, codeInvalidDetails)
		})
	}
	// The refused requests spent nothing: the family still refreshes,
	// with everything granted.
	wantDetails(t, n, c.auth(), refresh(), want)

	// A remembered consent never grants details silently: the same
	// request shows the consent page again, and prompt=none is refused.
	again := b.get(cfg.AuthCodeURL("st-2", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("authorization_details", details)))
	if !again.isConsent() {
		t.Errorf("second request with details skipped the consent page: %d %.200s", again.status, again.body)
	}
	none := b.get(cfg.AuthCodeURL("st-3", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("authorization_details", details), oauth2.SetAuthURLParam("prompt", "none")))
	if got := none.response(t, c.redirectURI).Get("error"); got != "consent_required" {
		t.Errorf("prompt=none with details: error %q, want consent_required", got)
	}
	// Nor is it consent to the tool servers without details: a request
	// addressed there without them (aud defaults to the client's first
	// audience, toolURL) is asked again (TestRememberedDetailsConsentSheds).
	plain := b.get(cfg.AuthCodeURL("st-4", oauth2.S256ChallengeOption(verifier)))
	if !plain.isConsent() {
		t.Error("a request without details for a tools-only consent's resource skipped the page")
	}
}

// TestCodeFlowDetailsNarrowedAtRedemption: the token request of the code
// grant may narrow the details the user allowed (RFC 9396 §6.1), not
// widen them; the refresh family keeps what the user allowed.
func TestCodeFlowDetailsNarrowedAtRedemption(t *testing.T) {
	n := startNode(t)
	c := newToolRP(t, n)
	newUser(t, n, "alice", alicePassword, nil)
	code := func() (string, pkce) {
		pk := newPKCE()
		params := c.authParams(pk, "openid offline_access")
		params.Set("authorization_details", toolDetails([]string{toolURL, "search", "fetch"}))
		return newBrowser(t, n).codeFor(c, params, "alice", alicePassword).Get("code"), pk
	}
	redeem := func(code string, pk pkce, details string) reply {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {pk.verifier},
			"redirect_uri": {c.redirectURI}, "authorization_details": {details}}
		return n.postForm(t, "/token", form, c.auth())
	}
	k, pk := code()
	wantError(t, redeem(k, pk, toolDetails([]string{toolURL, "search", "delete"})), http.StatusBadRequest, codeInvalidDetails)

	k, pk = code()
	r := redeem(k, pk, toolDetails([]string{toolURL, "search"}))
	wantDetails(t, n, c.auth(), r, tools(toolURL, "search"))
	wantDetails(t, n, c.auth(), n.refresh(t, c, r.str(t, "refresh_token"), nil), tools(toolURL, "search", "fetch"))
}

// TestAuthorizeDetailsRefused: bad details at the authorization endpoint
// go back to the client as invalid_authorization_details (RFC 9396 §5),
// with state and iss; nothing reaches a page.
func TestAuthorizeDetailsRefused(t *testing.T) {
	n := startNode(t)
	c := newToolRP(t, n)
	for _, tc := range []struct{ name, details, resource string }{
		{"malformed", `[{"type":"mcp_tool"`, ""},
		{"unknown type", `[{"type":"account_information","actions":["list_accounts"]}]`, ""},
		{"not the client's audience", toolDetails([]string{"https://evil.example/mcp", "search"}), ""},
		{"outside the resource parameter", toolDetails([]string{toolURL, "search"}), oddToolURL},
		{"script in a tool name", `[{"type":"mcp_tool","resource":"` + toolURL + `","tools":["<script>alert(1)</script>"]}]`, ""},
		{"too large", toolDetails([]string{toolURL, strings.Repeat("a", 5000)}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := c.authParams(newPKCE(), "openid")
			params.Set("authorization_details", tc.details)
			if tc.resource != "" {
				params.Set("resource", tc.resource)
			}
			resp := newBrowser(t, n).authorize(params).response(t, c.redirectURI)
			if resp.Get("error") != codeInvalidDetails || resp.Get("state") != params.Get("state") || resp.Get("iss") != n.issuer {
				t.Errorf("response = %v", resp)
			}
		})
	}
}

// TestPARDetails: details pushed with the request reach the consent page
// and the tokens; bad ones are refused at the PAR endpoint.
func TestPARDetails(t *testing.T) {
	n := startNode(t)
	c := newToolRP(t, n)
	newUser(t, n, "alice", alicePassword, nil)
	pk := newPKCE()
	params := c.authParams(pk, "openid")
	params.Set("authorization_details", toolDetails([]string{toolURL, "search"}))
	pushed := n.postForm(t, "/par", params, c.auth())
	if pushed.status != http.StatusCreated {
		t.Fatalf("PAR: %d %s", pushed.status, pushed.body)
	}
	b := newBrowser(t, n)
	p := b.authorize(url.Values{"client_id": {c.info.ClientID}, "request_uri": {pushed.str(t, "request_uri")}})
	p = b.signIn(p, "alice", alicePassword)
	if !strings.Contains(p.body, "Use the tool <code>search</code> on <code>"+toolURL+"</code>") {
		t.Errorf("consent page lacks the pushed tools: %.500s", p.body)
	}
	resp := b.decide(p, "allow").response(t, c.redirectURI)
	wantDetails(t, n, c.auth(), n.redeem(t, c, resp.Get("code"), pk.verifier), tools(toolURL, "search"))

	params.Set("authorization_details", `[{"type":"mcp_tool","resource":"`+toolURL+`","tools":[]}]`)
	wantError(t, n.postForm(t, "/par", params, c.auth()), http.StatusBadRequest, codeInvalidDetails)

	// The largest details fit a pushed request.
	var names []string
	for i := 0; i < 32; i++ {
		names = append(names, strings.Repeat("t", 100)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	params.Set("authorization_details", toolDetails(append([]string{toolURL}, names...)))
	if len(params.Get("authorization_details")) > 4096 {
		params.Set("authorization_details", toolDetails(append([]string{toolURL}, names[:30]...)))
	}
	if r := n.postForm(t, "/par", params, c.auth()); r.status != http.StatusCreated {
		t.Errorf("PAR with large details: %d %s", r.status, r.body)
	}
}

// TestDeviceRefusesDetails: the device flow does not carry details, so it
// refuses them instead of issuing a token without.
func TestDeviceRefusesDetails(t *testing.T) {
	n := startNode(t, fastDevice)
	d := newDevice(t, n, "client_secret_basic")
	r := d.post(t, "/device_authorization", url.Values{"scope": {"openid"}, "authorization_details": {toolDetails([]string{toolURL, "search"})}})
	wantError(t, r, http.StatusBadRequest, codeInvalidDetails)
}
