package issuer_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sigil-sts/sigil/issuer"
)

// Bad input never yields a 5xx.
func TestExchangeMalformedNo5xx(t *testing.T) {
	n := startNode(t)
	d := newDelegation(t, n, nil)
	at := d.userAT.str(t, "access_token")
	idt := d.userAT.str(t, "id_token")
	rt := d.userAT.str(t, "refresh_token")
	cases := []url.Values{
		subjectParams("x"),
		subjectParams(strings.Repeat("a.", 30000)),
		subjectParams("\xff\xfe"),
		with(subjectParams(at), "subject_token_type", issuer.TokenTypeRefresh),
		with(subjectParams(rt), "subject_token_type", issuer.TokenTypeRefresh),
		subjectParams(rt),
		subjectParams(idt),
		with(subjectParams(idt), "subject_token_type", issuer.TokenTypeJWT),
		with(subjectParams(at), "actor_token", idt, "actor_token_type", issuer.TokenTypeIDToken),
		with(subjectParams(at), "actor_token", idt, "actor_token_type", issuer.TokenTypeJWT),
		with(subjectParams(at), "actor_token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "actor_token_type", issuer.TokenTypeJWT),
		with(subjectParams(at), "scope", "\x00"),
		with(subjectParams(at), "scope", "   "),
		with(subjectParams(at), "resource", "::"),
		with(subjectParams(at), "audience", "\xff"),
		with(subjectParams(at), "requested_token_type", ""),
		with(subjectParams(at), "actor_token", "", "actor_token_type", issuer.TokenTypeJWT),
	}
	for i, c := range cases {
		r := d.exchange(t, d.a.auth(), c)
		if r.status >= 500 {
			t.Errorf("case %d: %d %s", i, r.status, r.body)
		}
		t.Logf("case %d: %d %s", i, r.status, r.body)
	}
}
