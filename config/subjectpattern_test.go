package config

import "testing"

// TestSubjectPatternStaysAnchored: SubjectPattern wraps a rule as ^(?:p)$,
// but a pattern with an unbalanced ")" closes that group early and leaves
// unanchored alternatives: "A)|(B" becomes ^(?:A)|(B)$, i.e. "starts
// with A" or "ends with B". It compiles, so Validate accepts it, and the
// rule then maps subs the operator never wrote. Expected: refused, or
// still matching whole subs only.
func TestSubjectPatternStaysAnchored(t *testing.T) {
	p := "repo:org/app:ref:refs/heads/main)|(repo:org/app:ref:refs/tags/v1"
	c := Default()
	c.TrustedIssuers = []TrustedIssuer{{Issuer: "https://ci.example", JWKSURL: "https://ci.example/jwks",
		Rules: []FederationRule{{Subject: p, Client: "c"}}}}
	if err := c.Validate(); err != nil {
		return // refused: fine
	}
	re, err := SubjectPattern(p)
	if err != nil {
		return
	}
	for _, sub := range []string{
		"repo:org/app:ref:refs/heads/main-attacker-branch",
		"repo:evil/x:ref:refs/heads/repo:org/app:ref:refs/tags/v1",
	} {
		if re.MatchString(sub) {
			t.Errorf("accepted pattern %q (compiled %q) matches %q", p, re, sub)
		}
	}
}
