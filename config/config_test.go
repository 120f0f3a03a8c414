package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultValidates(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
}

func TestDefaults(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"data-dir", c.DataDir, ".sigil"},
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"admin-listen", c.AdminListen, "127.0.0.1:8081"},
		{"issuer", c.Issuer, ""},
		{"access-token-ttl", c.AccessTokenTTL, 5 * time.Minute},
		{"access-token-max-ttl", c.AccessTokenMaxTTL, 15 * time.Minute},
		{"access-token-alg", c.AccessTokenAlg, "ES256"},
		{"keys-prepublish", c.KeysPrepublish, 10 * time.Minute},
		{"open-registration", c.RegistrationOpen, false},
		{"registration-token", c.RegistrationToken, ""},
		{"registration-scopes", strings.Join(c.RegistrationScopes, " "), "openid profile email offline_access"},
		{"client-metadata-documents", c.ClientMetadataDocuments, false},
	} {
		if tc.got != tc.want {
			t.Errorf("default %s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestIssuerURL(t *testing.T) {
	c := Default()
	if got := c.IssuerURL(); got != "http://127.0.0.1:8080" {
		t.Errorf("IssuerURL() = %q, want http:// + listen", got)
	}
	c.Listen = "0.0.0.0:9000"
	if got := c.IssuerURL(); got != "http://0.0.0.0:9000" {
		t.Errorf("IssuerURL() = %q, want http://0.0.0.0:9000", got)
	}
	c.Issuer = "https://sts.example.com"
	if got := c.IssuerURL(); got != "https://sts.example.com" {
		t.Errorf("IssuerURL() = %q, want the configured issuer", got)
	}
}

// TestValidateNamesKey checks that each invalid setting is reported under
// its flag and config-file name.
func TestValidateNamesKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		set func(*Config)
	}{
		{"data-dir", func(c *Config) { c.DataDir = "" }},
		{"dsn", func(c *Config) { c.DSN = "mysql://db/sigil" }},
		{"listen", func(c *Config) { c.Listen = "nowhere" }},
		{"listen", func(c *Config) { c.Listen = "" }},
		{"admin-listen", func(c *Config) { c.AdminListen = "8081" }},
		{"issuer", func(c *Config) { c.Issuer = "ftp://sts.example.com" }},
		{"issuer", func(c *Config) { c.Issuer = "https://sts.example.com/" }},
		{"issuer", func(c *Config) { c.Issuer = "https://sts.example.com?tenant=a" }},
		{"issuer", func(c *Config) { c.Issuer = "https://sts.example.com#frag" }},
		{"issuer", func(c *Config) { c.Issuer = "https://" }},
		{"issuer", func(c *Config) { c.Issuer = "sts.example.com" }},
		{"access-token-ttl", func(c *Config) { c.AccessTokenTTL = 0 }},
		{"access-token-ttl", func(c *Config) { c.AccessTokenTTL = -time.Minute }},
		{"access-token-ttl", func(c *Config) { c.AccessTokenTTL = 16 * time.Minute }},
		{"access-token-max-ttl", func(c *Config) { c.AccessTokenMaxTTL = 25 * time.Hour; c.AccessTokenTTL = time.Minute }},
		{"access-token-max-ttl", func(c *Config) { c.AccessTokenMaxTTL = 0 }},
		{"access-token-alg", func(c *Config) { c.AccessTokenAlg = "HS256" }},
		{"access-token-alg", func(c *Config) { c.AccessTokenAlg = "none" }},
		{"access-token-alg", func(c *Config) { c.AccessTokenAlg = "" }},
		{"keys-prepublish", func(c *Config) { c.KeysPrepublish = -time.Second }},
		{"leeway", func(c *Config) { c.Leeway = -time.Second }},
		// Zero used to pass and then mean the 30s default downstream.
		{"leeway", func(c *Config) { c.Leeway = 0 }},
		{"issuer", func(c *Config) { c.Issuer = "http://h/a b" }},
		{"issuer", func(c *Config) { c.Issuer = "https://user:pw@h.example" }},
		{"leeway", func(c *Config) { c.Leeway = 6 * time.Minute }},
		{"cache-refresh", func(c *Config) { c.CacheRefresh = time.Millisecond }},
		{"cache-refresh", func(c *Config) { c.CacheRefresh = 2 * time.Minute }},
		{"shutdown-timeout", func(c *Config) { c.ShutdownTimeout = 0 }},
		{"registration-token", func(c *Config) { c.RegistrationToken = "short" }},
		{"registration-scopes", func(c *Config) { c.RegistrationScopes = []string{"openid", `bad"scope`} }},
		{"registration-audiences", func(c *Config) { c.RegistrationAudiences = []string{"api.example.com"} }},
		{"registration-audiences", func(c *Config) { c.RegistrationAudiences = []string{"https://api.example.com#x"} }},
	} {
		c := Default()
		tc.set(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: %+v validates, want an error", tc.key, c)
			continue
		}
		named := false
		for _, line := range strings.Split(err.Error(), "\n") {
			named = named || strings.HasPrefix(line, tc.key+": ")
		}
		if !named {
			t.Errorf("%s: error %q has no line that starts with the key", tc.key, err)
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	for name, set := range map[string]func(*Config){
		"postgres dsn":         func(c *Config) { c.DSN = "postgres://u@db/sigil" },
		"postgresql dsn":       func(c *Config) { c.DSN = "postgresql://u@db/sigil"; c.DataDir = "" },
		"admin off":            func(c *Config) { c.AdminListen = "" },
		"https issuer":         func(c *Config) { c.Issuer = "https://sts.example.com" },
		"issuer with path":     func(c *Config) { c.Issuer = "https://example.com/tenants/a" },
		"any port":             func(c *Config) { c.Listen = ":0" },
		"prepublish off":       func(c *Config) { c.KeysPrepublish = 0 },
		"one-second leeway":    func(c *Config) { c.Leeway = time.Second },
		"ttl equals max":       func(c *Config) { c.AccessTokenTTL = c.AccessTokenMaxTTL },
		"max ttl 24h":          func(c *Config) { c.AccessTokenMaxTTL = 24 * time.Hour },
		"EdDSA access tokens":  func(c *Config) { c.AccessTokenAlg = "EdDSA" },
		"PS256 access tokens":  func(c *Config) { c.AccessTokenAlg = "PS256" },
		"RS256 access tokens":  func(c *Config) { c.AccessTokenAlg = "RS256" },
		"fastest cache reload": func(c *Config) { c.CacheRefresh = 10 * time.Millisecond },
		"open registration":    func(c *Config) { c.RegistrationOpen = true },
		"registration token":   func(c *Config) { c.RegistrationToken = strings.Repeat("t", 32) },
		"registration audience": func(c *Config) {
			c.RegistrationAudiences = []string{"https://mcp.example.com/mcp"}
		},
		"client metadata documents": func(c *Config) { c.ClientMetadataDocuments = true },
	} {
		c := Default()
		set(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", name, err)
		}
	}
}

// TestValidateReportsAll checks that Validate reports every bad setting,
// one per line, so a user fixes them all in one go.
func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.Listen = "nowhere"
	c.AccessTokenAlg = "HS256"
	c.KeysPrepublish = -time.Second
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("Validate() = %q, want three lines", err)
	}
	for i, key := range []string{"listen", "access-token-alg", "keys-prepublish"} {
		if !strings.HasPrefix(lines[i], key+": ") {
			t.Errorf("line %d = %q, want it to name %s", i, lines[i], key)
		}
	}
}
