package server

import (
	"fmt"

	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/issuer"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// federation builds the issuer's Federation from the trusted issuers of
// cfg (checked by Validate), or nil when there are none. A jwks-url is
// fetched on first use and cached by verify.JWKS (refetched at most every
// 10s for an unknown kid), so a trusted issuer that is down at start does
// not stop the node.
func federation(cfg config.Config) (*issuer.Federation, error) {
	if len(cfg.TrustedIssuers) == 0 {
		return nil, nil
	}
	f := &issuer.Federation{}
	for i, ti := range cfg.TrustedIssuers {
		var src token.KeySource
		if ti.JWKSURL != "" {
			src = &verify.JWKS{URL: ti.JWKSURL}
		} else {
			set, err := verify.ParseJWKS([]byte(ti.JWKS))
			if err != nil {
				return nil, fmt.Errorf("server: %s[%d].jwks: %w", config.TrustedIssuersKey, i, err)
			}
			src = set
		}
		aud := ti.Audience
		if aud == "" {
			aud = cfg.IssuerURL()
		}
		t := issuer.TrustedIssuer{Issuer: ti.Issuer, Keys: src, Audience: aud, MaxAge: ti.MaxAge}
		for j, r := range ti.Rules {
			re, err := config.SubjectPattern(r.Subject)
			if err != nil {
				return nil, fmt.Errorf("server: %s[%d].rules[%d].subject: %w", config.TrustedIssuersKey, i, j, err)
			}
			t.Rules = append(t.Rules, issuer.MappingRule{Subject: re, Client: r.Client, Claims: r.Claims})
		}
		f.Issuers = append(f.Issuers, t)
	}
	return f, nil
}
