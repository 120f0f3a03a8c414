package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// staticJWKS is a JWK Set with one usable ES256 key (RFC 7515 A.3's).
const staticJWKS = `{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","kid":"k1","use":"sig",` +
	`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`

// TestFileFederation: the federation.trusted-issuers list of mappings in a
// config file reaches the flag as JSON that ParseTrustedIssuers reads
// back, jwks written as a YAML mapping included.
func TestFileFederation(t *testing.T) {
	p := writeFile(t, `
federation:
  trusted-issuers:
    - issuer: https://token.actions.githubusercontent.com
      jwks-url: https://token.actions.githubusercontent.com/.well-known/jwks
      audience: https://sigil.example.com
      max-age: 10m
      rules:
        - subject: "repo:org/app:ref:refs/heads/.*"
          client: ci-deployer
          claims: {repository: org/app}
    - issuer: https://kubernetes.default.svc
      jwks: `+staticJWKS+`
      rules:
        - {subject: "system:serviceaccount:billing:.*", client: kube-billing}
listen: 127.0.0.1:9
`)
	file, err := File(p)
	if err != nil {
		t.Fatal(err)
	}
	if file["listen"] != "127.0.0.1:9" {
		t.Errorf("listen = %q", file["listen"])
	}
	got, err := ParseTrustedIssuers(file[TrustedIssuersKey])
	if err != nil {
		t.Fatalf("ParseTrustedIssuers(%s): %v", file[TrustedIssuersKey], err)
	}
	want := []TrustedIssuer{
		{Issuer: "https://token.actions.githubusercontent.com", JWKSURL: "https://token.actions.githubusercontent.com/.well-known/jwks",
			Audience: "https://sigil.example.com", MaxAge: 10 * time.Minute,
			Rules: []FederationRule{{Subject: "repo:org/app:ref:refs/heads/.*", Client: "ci-deployer", Claims: map[string]string{"repository": "org/app"}}}},
		{Issuer: "https://kubernetes.default.svc", JWKS: InlineJSON(compactJSON(t, staticJWKS)),
			Rules: []FederationRule{{Subject: "system:serviceaccount:billing:.*", Client: "kube-billing"}}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("trusted issuers (-want +got):\n%s", d)
	}
	// The flag's String is read back the same.
	again, err := ParseTrustedIssuers(FormatTrustedIssuers(got))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(got, again); d != "" {
		t.Errorf("Format/Parse round trip (-first +second):\n%s", d)
	}
	c := Default()
	c.TrustedIssuers = got
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// compactJSON is s as encoding/json writes a decoded value back: keys
// sorted, no spaces.
func compactJSON(t *testing.T, s string) string {
	t.Helper()
	l, err := ParseTrustedIssuers(`[{issuer: x, jwks: ` + s + `}]`)
	if err != nil {
		t.Fatal(err)
	}
	return string(l[0].JWKS)
}

func TestFileFederationRefusesListsElsewhere(t *testing.T) {
	_, err := File(writeFile(t, "federation:\n  other:\n    - {a: b}\n"))
	if err == nil || !strings.Contains(err.Error(), "plain values") {
		t.Errorf("File = %v, want a refusal of the list of mappings", err)
	}
}

func TestParseTrustedIssuersUnknownKey(t *testing.T) {
	_, err := ParseTrustedIssuers(`[{issuer: x, jwks_url: "https://a.example/jwks"}]`)
	if err == nil || !strings.Contains(err.Error(), "jwks_url") {
		t.Errorf("err = %v, want the unknown key named", err)
	}
}

// TestValidateFederation: each mistake is reported naming its key.
func TestValidateFederation(t *testing.T) {
	ok := func() TrustedIssuer {
		return TrustedIssuer{Issuer: "https://ci.example", JWKSURL: "https://ci.example/jwks",
			Rules: []FederationRule{{Subject: "repo:.*", Client: "c"}}}
	}
	for _, tc := range []struct {
		name string
		mod  func(*TrustedIssuer)
		want string
	}{
		{"no issuer", func(ti *TrustedIssuer) { ti.Issuer = "" }, "federation-trusted-issuers[0].issuer: is required"},
		{"own issuer", func(ti *TrustedIssuer) { ti.Issuer = "http://127.0.0.1:8080" }, "federation-trusted-issuers[0].issuer: \"http://127.0.0.1:8080\" is Sigil's own issuer"},
		{"neither jwks", func(ti *TrustedIssuer) { ti.JWKSURL = "" }, "federation-trusted-issuers[0].jwks-url: give exactly one"},
		{"both jwks", func(ti *TrustedIssuer) { ti.JWKS = staticJWKS }, "federation-trusted-issuers[0].jwks-url: give exactly one"},
		{"http jwks-url", func(ti *TrustedIssuer) { ti.JWKSURL = "http://ci.example/jwks" }, "federation-trusted-issuers[0].jwks-url: \"http://ci.example/jwks\": http is allowed only for a loopback host"},
		{"relative jwks-url", func(ti *TrustedIssuer) { ti.JWKSURL = "/jwks" }, "federation-trusted-issuers[0].jwks-url: \"/jwks\" is not an absolute URL"},
		{"bad static jwks", func(ti *TrustedIssuer) { ti.JWKSURL, ti.JWKS = "", "{" }, "federation-trusted-issuers[0].jwks: verify: decode jwks"},
		{"empty static jwks", func(ti *TrustedIssuer) { ti.JWKSURL, ti.JWKS = "", `{"keys":[]}` }, "federation-trusted-issuers[0].jwks: holds no usable signature key"},
		{"max-age too long", func(ti *TrustedIssuer) { ti.MaxAge = 48 * time.Hour }, "federation-trusted-issuers[0].max-age: 48h0m0s must be between"},
		{"no rules", func(ti *TrustedIssuer) { ti.Rules = nil }, "federation-trusted-issuers[0].rules: at least one"},
		{"bad pattern", func(ti *TrustedIssuer) { ti.Rules[0].Subject = "repo:(" }, "federation-trusted-issuers[0].rules[0].subject: error parsing regexp"},
		{"no client", func(ti *TrustedIssuer) { ti.Rules[0].Client = "" }, "federation-trusted-issuers[0].rules[0].client: is required"},
		{"registered claim", func(ti *TrustedIssuer) { ti.Rules[0].Claims = map[string]string{"aud": "x"} }, "federation-trusted-issuers[0].rules[0].claims: \"aud\" cannot be required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			ti := ok()
			tc.mod(&ti)
			c.TrustedIssuers = []TrustedIssuer{ti}
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("duplicate issuer", func(t *testing.T) {
		c := Default()
		c.TrustedIssuers = []TrustedIssuer{ok(), ok()}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "federation-trusted-issuers[1].issuer: \"https://ci.example\" is listed twice") {
			t.Errorf("Validate = %v", err)
		}
	})
	t.Run("loopback http and static jwks accepted", func(t *testing.T) {
		c := Default()
		a, b := ok(), ok()
		a.JWKSURL = "http://127.0.0.1:9999/jwks"
		b.Issuer, b.JWKSURL, b.JWKS = "https://k8s.example", "", staticJWKS
		c.TrustedIssuers = []TrustedIssuer{a, b}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate = %v", err)
		}
	})
}
