package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
)

// durationFlag is a duration that remembers whether it was set.
type durationFlag struct {
	d   time.Duration
	set bool
}

func (f *durationFlag) String() string { return f.d.String() }

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < time.Second {
		return fmt.Errorf("%s is shorter than 1s", s)
	}
	f.d, f.set = d, true
	return nil
}

func clientCreateFlags(fs *flag.FlagSet, o *options) {
	storeFlags(fs, o)
	fs.StringVar(&o.name, "name", "", "client name (required)")
	fs.StringVar(&o.grantTypes, "grant-types", "client_credentials", "comma-separated grant types: client_credentials, authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:token-exchange, urn:ietf:params:oauth:grant-type:device_code")
	fs.StringVar(&o.scopes, "scopes", "", "space-separated scopes the client may get")
	fs.StringVar(&o.defaultScopes, "default-scopes", "", "space-separated scopes granted when a request names none")
	fs.StringVar(&o.audiences, "audiences", "", "comma-separated resource URLs the client may ask tokens for; the first is the default")
	fs.StringVar(&o.redirectURIs, "redirect-uris", "", "comma-separated redirect URIs")
	fs.StringVar(&o.authMethod, "auth-method", "", "client_secret_basic (default), client_secret_post, private_key_jwt or none")
	fs.StringVar(&o.jwksFile, "jwks-file", "", "JWK Set file with the client's public keys (private_key_jwt)")
	fs.StringVar(&o.claims, "claims", "", `extra token claims as a JSON object, e.g. '{"department":"engineering"}'`)
	fs.Var(&o.clientTTL, "access-token-ttl", "access-token lifetime (default: the server's)")
	fs.BoolVar(&o.dpopBound, "dpop-bound", false, "require DPoP-bound tokens")
	fs.BoolVar(&o.requirePAR, "require-par", false, "require pushed authorization requests (RFC 9126)")
	fs.BoolVar(&o.introspect, "introspect", false, "a resource server: may introspect tokens for its audiences")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runClientCreate(ctx context.Context, m *Main, o *options) error {
	spec := admin.ClientSpec{
		Name:         o.name,
		GrantTypes:   splitList(o.grantTypes),
		Scope:        o.scopes,
		DefaultScope: o.defaultScopes,
		Audience:     splitList(o.audiences),
		RedirectURIs: splitList(o.redirectURIs),
		AuthMethod:   o.authMethod,
		DPoPBound:    o.dpopBound,
		RequirePAR:   o.requirePAR,
		Introspect:   o.introspect,
	}
	if o.name == "" {
		return usagef("client create needs --name")
	}
	if o.clientTTL.set {
		spec.AccessTokenTTL = int64(o.clientTTL.d / time.Second)
	}
	if o.claims != "" {
		if err := json.Unmarshal([]byte(o.claims), &spec.Claims); err != nil {
			return usagef("--claims must be a JSON object: %v", err)
		}
	}
	if o.jwksFile != "" {
		b, err := os.ReadFile(o.jwksFile)
		if err != nil {
			return usagef("--jwks-file: %v", err)
		}
		if !json.Valid(b) {
			return usagef("--jwks-file %s is not JSON", o.jwksFile)
		}
		spec.JWKS = b
	}
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	c, err := core.Admin.CreateClient(ctx, spec)
	return printThenFail(m, o, c, err)
}

// printThenFail prints a client that was stored even when err reports
// that only its audit record failed: its secret is shown once, now or
// never.
func printThenFail(m *Main, o *options, c *admin.ClientInfo, err error) error {
	if c != nil {
		if perr := printClient(m.Stdout, o.json, c); perr != nil {
			return perr
		}
	}
	return err
}

// clientJSON is a client as --json prints it: the RFC 7591 §3.2.1 fields,
// with scope always present (CONTRACT.md), empty when the client has none.
type clientJSON struct {
	*admin.ClientInfo
	Scope string `json:"scope"`
}

func newClientJSON(c *admin.ClientInfo) clientJSON { return clientJSON{c, c.Scope} }

// notFound turns a missing client into an error that says what to do.
func notFound(id string, err error) error {
	if errors.Is(err, sigil.ErrNotFound) {
		return fmt.Errorf("client %q not found; \"sigil client list\" shows the registered clients", id)
	}
	return err
}

func printClient(w io.Writer, asJSON bool, c *admin.ClientInfo) error {
	if asJSON {
		return json.NewEncoder(w).Encode(newClientJSON(c))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "client_id\t%s\n", c.ClientID)
	if c.ClientSecret != "" {
		fmt.Fprintf(tw, "client_secret\t%s\t(shown once: store it now)\n", c.ClientSecret)
	}
	fmt.Fprintf(tw, "name\t%s\n", c.Name)
	if c.RegisteredDynamically {
		how := "by itself (RFC 7591), with an initial access token"
		if c.RegisteredOpen {
			how = "by itself (RFC 7591), by open registration: unvetted"
		}
		fmt.Fprintf(tw, "registered\t%s\n", how)
	}
	fmt.Fprintf(tw, "auth method\t%s\n", c.AuthMethod)
	fmt.Fprintf(tw, "grant types\t%s\n", strings.Join(c.GrantTypes, ", "))
	fmt.Fprintf(tw, "scopes\t%s\n", c.Scope)
	if c.DefaultScope != "" {
		fmt.Fprintf(tw, "default scopes\t%s\n", c.DefaultScope)
	}
	if len(c.Audience) > 0 {
		fmt.Fprintf(tw, "audiences\t%s\n", strings.Join(c.Audience, ", "))
	}
	if len(c.Claims) > 0 {
		b, _ := json.Marshal(c.Claims)
		fmt.Fprintf(tw, "claims\t%s\n", b)
	}
	return tw.Flush()
}

func runClientList(ctx context.Context, m *Main, o *options) error {
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	cs, err := core.Admin.Clients(ctx)
	if err != nil {
		return err
	}
	if o.json {
		out := make([]clientJSON, len(cs))
		for i, c := range cs {
			out[i] = newClientJSON(c)
		}
		return json.NewEncoder(m.Stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tNAME\tAUTH METHOD\tSCOPES")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ClientID, c.Name, c.AuthMethod, c.Scope)
	}
	return tw.Flush()
}

func runClientGet(ctx context.Context, m *Main, o *options) error {
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	c, err := core.Admin.Client(ctx, o.args[0])
	if err != nil {
		return notFound(o.args[0], err)
	}
	return printClient(m.Stdout, o.json, c)
}

func runClientDelete(ctx context.Context, m *Main, o *options) error {
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	if err := core.Admin.DeleteClient(ctx, o.args[0]); err != nil {
		return notFound(o.args[0], err)
	}
	if o.json {
		return json.NewEncoder(m.Stdout).Encode(map[string]any{"client_id": o.args[0], "deleted": true})
	}
	fmt.Fprintf(m.Stdout, "deleted client %s\n", o.args[0])
	return nil
}

func runClientRotate(ctx context.Context, m *Main, o *options) error {
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	c, err := core.Admin.RotateSecret(ctx, o.args[0])
	if c == nil && err != nil {
		return notFound(o.args[0], err)
	}
	return printThenFail(m, o, c, err)
}
