package issuer_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// postDPoP posts a token request with a DPoP proof ("" for none).
func postDPoP(t *testing.T, n *testNode, form url.Values, proof string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.url("/token"), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return n.do(t, req)
}

// TestRefreshDPoPBoundFamily: a public client's family bound at the code
// redemption stays bound through rotations: no proof, or another key's,
// is refused each time.
func TestRefreshDPoPBoundFamily(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "none")
	newUser(t, n, "alice", alicePassword, nil)
	k1, k2 := newDPoPKey(t, "ES256"), newDPoPKey(t, "ES256")
	htu := n.tokenEndpoint(t)
	p := newPKCE()
	resp := newBrowser(t, n).codeFor(c, c.authParams(p, "openid offline_access"), "alice", alicePassword)
	tr := postDPoP(t, n, url.Values{"grant_type": {"authorization_code"}, "code": {resp.Get("code")},
		"code_verifier": {p.verifier}, "redirect_uri": {c.redirectURI}, "client_id": {c.info.ClientID}}, k1.proof(t, htu))
	if tr.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", tr.status, tr.body)
	}
	rt := tr.str(t, "refresh_token")
	form := func(rt string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.info.ClientID}}
	}
	for range 3 {
		wantError(t, postDPoP(t, n, form(rt), ""), http.StatusBadRequest, "invalid_dpop_proof")
		wantError(t, postDPoP(t, n, form(rt), k2.proof(t, htu)), http.StatusBadRequest, "invalid_dpop_proof")
		r := postDPoP(t, n, form(rt), k1.proof(t, htu))
		wantBound(t, n, r, k1)
		rt = r.str(t, "refresh_token")
	}
}
