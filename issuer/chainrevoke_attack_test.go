package issuer_test

// Attack tests from the security review of revocation by delegation chain
// (package revocation). Each test states the behaviour a secure STS must
// show; each failed on main at the time of the review.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/issuer"
)

// TestAttackChainRevocationSurvivesHangUp: a replayed code revokes the
// tokens of its first redemption and, half a second later, the tokens
// exchanged from them. The request that triggers it may be the thief's,
// and the thief hangs up at once: the chain must be revoked all the same,
// since nothing will ever retry it (the code is spent, the family gone).
func TestAttackChainRevocationSurvivesHangUp(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	p := newPKCE()
	code := newBrowser(t, n).codeFor(d.a, d.a.authParams(p, "openid read:files"), "alice", alicePassword).Get("code")
	first := n.redeem(t, d.a, code, p.verifier)
	if first.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", first.status, first.body)
	}
	at := first.str(t, "access_token")
	r := d.exchange(t, d.a.auth(), with(subjectParams(at), "audience", issuer.ClientAudience(d.b.ClientID)))
	if r.status != http.StatusOK {
		t.Fatalf("A's exchange: %d %s", r.status, r.body)
	}
	exchanged := r.str(t, "access_token")

	// The replay, from a client that gives up after 100 ms.
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.verifier}, "redirect_uri": {d.a.redirectURI}}
	req, err := http.NewRequest(http.MethodPost, n.url("/token"), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(d.a.info.ClientID), url.QueryEscape(d.a.info.ClientSecret))
	if resp, err := (&http.Client{Timeout: 100 * time.Millisecond}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the replay was answered within 100 ms (%d): it no longer waits for the chain", resp.StatusCode)
	}

	if n.active(t, d.a.auth(), at) {
		t.Error("the replayed code's access token is active")
	}
	eventually(t, 5*time.Second, "the token exchanged from the replayed code's token to be revoked", func() bool {
		return !n.active(t, d.a.auth(), exchanged)
	})
}
