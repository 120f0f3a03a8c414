package issuer_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// TestStatusListServed: every access token names an entry of a list the
// issuer serves as a signed Status List Token that an independent JOSE
// library verifies; the jti carries the same entry; tokens get distinct
// entries; bad list URLs get 404, historical requests 501; the
// aggregation endpoint and the metadata name the lists.
func TestStatusListServed(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.StatusListTTL = 42 * time.Second })
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	seen := map[int64]bool{}
	var uri string
	for range 50 {
		tok := n.token(t, c, nil)
		cl := claims(t, tok)
		sl, _ := cl["status"].(map[string]any)["status_list"].(map[string]any)
		idx := num(t, sl, "idx")
		uri, _ = sl["uri"].(string)
		if !strings.HasPrefix(uri, n.issuer+"/statuslists/") || seen[idx] {
			t.Fatalf("status claim %v: want a uri under %s/statuslists/ and a fresh idx", cl["status"], n.issuer)
		}
		seen[idx] = true
		_, list, jidx, ok := token.StatusOfJTI(cl["jti"].(string))
		if !ok || int64(jidx) != idx || n.issuer+"/statuslists/"+itoa(int64(list)) != uri {
			t.Fatalf("jti %v names list %d entry %d, the claim %s entry %v", cl["jti"], list, jidx, uri, idx)
		}
	}

	r := n.get(t, strings.TrimPrefix(uri, n.issuer))
	if r.status != http.StatusOK || r.header.Get("Content-Type") != statuslist.MediaType || r.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET %s: %d, Content-Type %q, Cache-Control %q", uri, r.status, r.header.Get("Content-Type"), r.header.Get("Cache-Control"))
	}
	lt := n.verifyJWX(t, string(r.body))
	if typ := header(t, string(r.body))["typ"]; typ != statuslist.TokenType {
		t.Errorf("typ %v, want %s", typ, statuslist.TokenType)
	}
	if sub, _ := lt.Subject(); sub != uri {
		t.Errorf("sub %q, want the list's uri %q", sub, uri)
	}
	lc := claims(t, string(r.body))
	if num(t, lc, "ttl") != 42 {
		t.Errorf("ttl %v, want 42", lc["ttl"])
	}
	if exp, iat := num(t, lc, "exp"), num(t, lc, "iat"); exp-iat != int64(statuslist.Validity.Seconds()) {
		t.Errorf("exp - iat = %d, want %v", exp-iat, statuslist.Validity)
	}

	for _, path := range []string{"/statuslists/999", "/statuslists/01", "/statuslists/+1", "/statuslists/x", "/statuslists/0", "/statuslists/-1", "/statuslists/99999999999999999999"} {
		if r := n.get(t, path); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", path, r.status, r.body)
		}
	}
	if r := n.get(t, strings.TrimPrefix(uri, n.issuer)+"?time=1700000000"); r.status != http.StatusNotImplemented {
		t.Errorf("historical status: %d, want 501", r.status)
	}
	agg := n.get(t, "/statuslists")
	if agg.status != http.StatusOK || !strings.Contains(string(agg.body), `"`+uri+`"`) {
		t.Errorf("aggregation: %d %s, want it to list %s", agg.status, agg.body, uri)
	}
	md := n.get(t, "/.well-known/oauth-authorization-server").json(t)
	if md["status_list_aggregation_endpoint"] != n.issuer+"/statuslists" {
		t.Errorf("status_list_aggregation_endpoint = %v", md["status_list_aggregation_endpoint"])
	}
}

// TestRevocationSetsStatus: RFC 7009 revocation by the client, and admin
// revocation by jti, client and subject, each set exactly the tokens'
// entries, as a resource server reading the lists sees them.
func TestRevocationSetsStatus(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.StatusListTTL = time.Second })
	n.admin().RevokeSettle = time.Millisecond
	a := n.newClient(t, admin.ClientSpec{Scope: "read"})
	b := n.newClient(t, admin.ClientSpec{Scope: "read"})
	toks := map[string]string{}
	for _, name := range []string{"a-rfc7009", "a-jti", "a-other"} {
		toks[name] = n.token(t, a, nil)
	}
	toks["b-1"], toks["b-2"] = n.token(t, b, nil), n.token(t, b, nil)
	status := func() map[string]error {
		sl := &verify.StatusLists{Keys: n.srv.Core.Keys, Issuer: n.issuer}
		out := map[string]error{}
		for name, tok := range toks {
			var c token.Claims
			if err := c.UnmarshalJSON(mustJSON(t, claims(t, tok))); err != nil {
				t.Fatal(err)
			}
			out[name] = sl.Check(context.Background(), c.StatusList())
		}
		return out
	}
	want := func(step string, revoked ...string) {
		t.Helper()
		for name, err := range status() {
			isRevoked := errors.Is(err, verify.ErrRevoked)
			wantRevoked := false
			for _, r := range revoked {
				wantRevoked = wantRevoked || r == name
			}
			if isRevoked != wantRevoked || (err != nil && !isRevoked) {
				t.Errorf("after %s: %s: %v, want revoked %v", step, name, err, wantRevoked)
			}
		}
	}
	want("issuance")
	if r := n.postForm(t, "/revoke", url.Values{"token": {toks["a-rfc7009"]}}, basic(a)); r.status != http.StatusOK {
		t.Fatalf("RFC 7009: %d %s", r.status, r.body)
	}
	want("RFC 7009", "a-rfc7009")
	res, err := n.admin().Revoke(context.Background(), claims(t, toks["a-jti"])["jti"].(string), "", "")
	if err != nil || res.StatusEntries != 1 {
		t.Fatalf("revoke jti: %+v, %v; want one entry", res, err)
	}
	want("revoke jti", "a-rfc7009", "a-jti")
	if res, err := n.admin().Revoke(context.Background(), "", b.ClientID, ""); err != nil || res.StatusEntries != 2 {
		t.Fatalf("revoke client: %+v, %v; want two entries", res, err)
	}
	want("revoke client", "a-rfc7009", "a-jti", "b-1", "b-2")
	if res, err := n.admin().Revoke(context.Background(), "", "", a.ClientID); err != nil || res.StatusEntries != 3 {
		t.Fatalf("revoke subject: %+v, %v; want three entries", res, err)
	}
	want("revoke subject", "a-rfc7009", "a-jti", "a-other", "b-1", "b-2")
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
