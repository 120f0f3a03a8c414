package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// TrustedIssuer is an external issuer whose JWTs Sigil accepts through the
// JWT bearer grant (RFC 7523 §2.1) and as token exchange subject tokens:
// workload identity (a Kubernetes service account, a CI provider's OIDC
// token). It is written in the config file as one element of the list
// federation.trusted-issuers, and given on the command line or in
// SIGIL_FEDERATION_TRUSTED_ISSUERS as that whole list in JSON (or YAML
// flow syntax); see ParseTrustedIssuers.
type TrustedIssuer struct {
	// Issuer is the issuer's iss, matched exactly.
	Issuer string `yaml:"issuer" json:"issuer"`
	// JWKSURL is where its JWK Set is fetched (https; http only for a
	// loopback host). Exactly one of JWKSURL and JWKS is set.
	JWKSURL string `yaml:"jwks-url" json:"jwks-url,omitempty"`
	// JWKS is a static JWK Set, as JSON. In YAML it may also be written
	// as a mapping ({keys: [...]}).
	JWKS InlineJSON `yaml:"jwks" json:"jwks,omitempty"`
	// Audience is the aud its tokens must name; empty means Sigil's
	// issuer URL.
	Audience string `yaml:"audience" json:"audience,omitempty"`
	// MaxAge is the longest lifetime (exp - iat) accepted and the oldest
	// iat; zero means DefaultFederationMaxAge.
	MaxAge time.Duration `yaml:"max-age" json:"max-age,omitempty"`
	// Rules map a token to a Sigil client; the first that matches wins,
	// and a token no rule matches is refused.
	Rules []FederationRule `yaml:"rules" json:"rules"`
}

// FederationRule maps the tokens whose whole sub matches the Go regular
// expression Subject (anchored at both ends), and whose claims have the
// values in Claims (string claims, compared exactly), to the client Client.
type FederationRule struct {
	Subject string            `yaml:"subject" json:"subject"`
	Client  string            `yaml:"client" json:"client"`
	Claims  map[string]string `yaml:"claims" json:"claims,omitempty"`
}

// Limits of a trusted issuer's max-age.
const (
	DefaultFederationMaxAge = time.Hour
	MaxFederationMaxAge     = 24 * time.Hour
)

// TrustedIssuersKey is the setting's name: the flag
// --federation-trusted-issuers, the config-file key
// federation.trusted-issuers.
const TrustedIssuersKey = "federation-trusted-issuers"

// InlineJSON is a JSON document that YAML may give as a string or as a
// structure (then encoded as JSON).
type InlineJSON string

func (j *InlineJSON) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*j = InlineJSON(n.Value)
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	*j = InlineJSON(b)
	return nil
}

// ParseTrustedIssuers reads the list of trusted issuers from s, JSON or
// YAML. Unknown keys are an error; durations are written like 1h.
func ParseTrustedIssuers(s string) ([]TrustedIssuer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	d := yaml.NewDecoder(strings.NewReader(s))
	d.KnownFields(true)
	var out []TrustedIssuer
	if err := d.Decode(&out); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a list of trusted issuers: %w", err)
	}
	return out, nil
}

// FormatTrustedIssuers is the JSON that ParseTrustedIssuers reads back.
func FormatTrustedIssuers(list []TrustedIssuer) string {
	if len(list) == 0 {
		return ""
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(list); err != nil {
		return ""
	}
	return strings.TrimSpace(b.String())
}

// MarshalJSON writes max-age as a duration string, which
// ParseTrustedIssuers reads back.
func (t TrustedIssuer) MarshalJSON() ([]byte, error) {
	type plain TrustedIssuer
	v := struct {
		plain
		MaxAge string `json:"max-age,omitempty"`
	}{plain: plain(t)}
	if t.MaxAge != 0 {
		v.MaxAge = t.MaxAge.String()
	}
	return json.Marshal(v)
}

// SubjectPattern compiles a rule's Subject anchored at both ends, so it
// must match the whole sub.
func SubjectPattern(p string) (*regexp.Regexp, error) {
	// Compiled alone first: an unbalanced ")" such as "A)|(B" would
	// otherwise close the anchoring group and match "starts with A, or
	// ends with B".
	if _, err := regexp.Compile(p); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}

// validateFederation reports what is wrong with the trusted issuers,
// naming each setting as federation-trusted-issuers[i].key.
func (c *Config) validateFederation(bad func(key, format string, a ...any)) {
	seen := map[string]bool{}
	for i, ti := range c.TrustedIssuers {
		key := func(k string) string { return fmt.Sprintf("%s[%d].%s", TrustedIssuersKey, i, k) }
		switch {
		case ti.Issuer == "":
			bad(key("issuer"), "is required")
		case seen[ti.Issuer]:
			bad(key("issuer"), "%q is listed twice", ti.Issuer)
		case ti.Issuer == c.IssuerURL():
			bad(key("issuer"), "%q is Sigil's own issuer", ti.Issuer)
		}
		seen[ti.Issuer] = true
		switch {
		case (ti.JWKSURL == "") == (ti.JWKS == ""):
			bad(key("jwks-url"), "give exactly one of jwks-url and jwks")
		case ti.JWKSURL != "":
			if err := checkJWKSURL(ti.JWKSURL); err != nil {
				bad(key("jwks-url"), "%v", err)
			}
		default:
			set, err := verify.ParseJWKS([]byte(ti.JWKS))
			if err != nil {
				bad(key("jwks"), "%v", err)
			} else if len(set) == 0 {
				bad(key("jwks"), "holds no usable signature key (each needs alg: one of ES256, EdDSA, RS256, PS256)")
			}
		}
		if ti.MaxAge < 0 || ti.MaxAge > MaxFederationMaxAge {
			bad(key("max-age"), "%s must be between 0 (default %s) and %s", ti.MaxAge, DefaultFederationMaxAge, MaxFederationMaxAge)
		}
		if len(ti.Rules) == 0 {
			bad(key("rules"), "at least one mapping rule is required")
		}
		for j, r := range ti.Rules {
			rkey := func(k string) string { return key(fmt.Sprintf("rules[%d].%s", j, k)) }
			if r.Subject == "" {
				bad(rkey("subject"), "is required (.* matches every sub)")
			} else if _, err := SubjectPattern(r.Subject); err != nil {
				bad(rkey("subject"), "%v", err)
			}
			if r.Client == "" {
				bad(rkey("client"), "is required")
			}
			for name := range r.Claims {
				if name == "" || token.IsRegistered(name) {
					bad(rkey("claims"), "%q cannot be required: only unregistered claims (sub has its own pattern)", name)
				}
			}
		}
	}
}

// checkJWKSURL allows https, and http only to a loopback host (tests and
// sidecars).
func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("%q: http is allowed only for a loopback host; use https", s)
	}
	return fmt.Errorf("%q must be an https URL", s)
}
