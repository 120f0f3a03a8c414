package issuer_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
)

// Attack tests for federation from a review: each states the property it
// expects.

// TestFederationAuditNoUnverifiedIss: a token whose (unverified) iss is
// not trusted is refused with a fixed reason: anyone, without
// authentication, could otherwise write kilobytes of chosen text per
// request into the tamper-evident audit trail (the client_id of a failed
// authentication is capped at 256 bytes for the same reason).
func TestFederationAuditNoUnverifiedIss(t *testing.T) {
	s := newFedSetup(t)
	n := s.n
	junk := "https://attacker.example/" + strings.Repeat("A", 10000) + "\u202e<script>"
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"x"}`))
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":` + quote(junk) + `}`))
	r := s.bearer(t, hdr+"."+payload+".c2ln", auth{})
	wantError(t, r, http.StatusBadRequest, "invalid_grant")
	for _, rec := range records(t, n, sigil.AuditQuery{Event: string(audit.FederationRefused)}) {
		for k, v := range rec.Detail {
			if strings.Contains(v, "AAAAAAAAAA") {
				t.Errorf("federation.refused detail[%q] holds %d bytes of the unverified iss", k, len(v))
			}
		}
	}
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// TestFederationRefusalNamesNoClient: anyone holding a validly signed
// token of a trusted issuer (for a public CI provider: anyone) must not
// learn, without authenticating, the names of the clients the rules map
// to: the log has them, the response does not.
func TestFederationRefusalNamesNoClient(t *testing.T) {
	s := newFedSetup(t)
	r := s.bearer(t, s.ci.sign(t, with2(s.ci.claims("repo:org/ghost:x", s.n.issuer))), auth{})
	if d := r.str(t, "error_description"); strings.Contains(d, "no-such-client") {
		t.Errorf("unauthenticated refusal names the mapped client: %q", d)
	}
}
