package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// httpTimeout bounds every request the CLI makes.
const httpTimeout = 15 * time.Second

func tokenFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.issuer, "issuer", "", "issuer URL (required)")
	fs.StringVar(&o.clientID, "client-id", "", "client id (required)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "client secret (or SIGIL_CLIENT_SECRET)")
	fs.StringVar(&o.scope, "scope", "", "space-separated scopes (default: the client's default scopes)")
	fs.StringVar(&o.resource, "resource", "", "resource indicator (RFC 8707): the audience wanted")
	fs.StringVar(&o.configFile, "config", "", "YAML config file")
	fs.BoolVar(&o.json, "json", false, "print the token response as JSON")
}

// runToken gets a token with client credentials through the standard Go
// OAuth client, finding the token endpoint in the issuer's metadata.
func runToken(ctx context.Context, m *Main, o *options) error {
	if o.issuer == "" || o.clientID == "" || o.clientSecret == "" {
		return usagef("token needs --issuer, --client-id and --client-secret")
	}
	hc := &http.Client{Timeout: httpTimeout}
	md, err := verify.Discover(ctx, hc, o.issuer)
	if err != nil {
		return err
	}
	cc := clientcredentials.Config{
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		TokenURL:     md.TokenEndpoint,
		Scopes:       strings.Fields(o.scope),
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	if o.resource != "" {
		cc.EndpointParams = url.Values{"resource": {o.resource}}
	}
	t, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return fmt.Errorf("token request refused: %s: %s", re.ErrorCode, re.ErrorDescription)
		}
		return fmt.Errorf("token request: %w", err)
	}
	if !o.json {
		fmt.Fprintln(m.Stdout, t.AccessToken)
		return nil
	}
	return json.NewEncoder(m.Stdout).Encode(tokenJSON(t, o.scope))
}

// tokenJSON is the RFC 6749 §5.1 response as `sigil token --json` prints
// it. The oauth2 package keeps only the absolute expiry, so expires_in is
// taken from the raw response; an omitted scope means the requested one
// (§5.1), so scope is always printed.
func tokenJSON(t *oauth2.Token, requested string) map[string]any {
	out := map[string]any{"access_token": t.AccessToken, "token_type": t.TokenType, "scope": requested}
	switch v := t.Extra("expires_in").(type) {
	case float64:
		out["expires_in"] = int64(v)
	case json.Number:
		n, _ := v.Int64()
		out["expires_in"] = n
	default:
		if !t.Expiry.IsZero() {
			out["expires_in"] = int64(time.Until(t.Expiry).Round(time.Second) / time.Second)
		}
	}
	if s, ok := t.Extra("scope").(string); ok {
		out["scope"] = s
	}
	return out
}

func decodeFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.issuer, "issuer", "", "verify the signature against this issuer's JWKS")
	fs.StringVar(&o.configFile, "config", "", "YAML config file")
	fs.BoolVar(&o.json, "json", false, "print {header, claims, signature} as JSON")
}

// runDecode prints a JWT's header and claims. With --issuer it checks the
// signature against the issuer's published keys (under the same rules as
// every verification: alg from the key, no embedded keys) and exits 1 when
// it does not verify.
func runDecode(ctx context.Context, m *Main, o *options) error {
	raw := o.args[0]
	if raw == "-" {
		b, err := io.ReadAll(io.LimitReader(m.Stdin, token.MaxSize+1))
		if err != nil {
			return err
		}
		raw = string(bytes.TrimSpace(b))
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return usagef("not a JWT: want three dot-separated parts, got %d", len(parts))
	}
	var header, claims map[string]any
	if err := decodeSegment(parts[0], &header); err != nil {
		return usagef("header: %v", err)
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return usagef("claims: %v", err)
	}
	status, verr := "not checked (pass --issuer URL to verify against its JWKS)", error(nil)
	if o.issuer != "" {
		hc := &http.Client{Timeout: httpTimeout}
		md, err := verify.Discover(ctx, hc, o.issuer)
		if err != nil {
			return err
		}
		h, _, err := token.Parse(ctx, raw, &verify.JWKS{URL: md.JWKSURI, Client: hc})
		if err != nil {
			status, verr = "INVALID: "+err.Error(), errors.New("signature does not verify")
		} else {
			status = fmt.Sprintf("valid (%s, kid %s) against %s", h.Alg, h.KID, md.JWKSURI)
		}
	}
	if o.json {
		json.NewEncoder(m.Stdout).Encode(map[string]any{"header": header, "claims": claims, "signature": status})
		return verr
	}
	hb, _ := json.MarshalIndent(header, "", "  ")
	cb, _ := json.MarshalIndent(claims, "", "  ")
	fmt.Fprintf(m.Stdout, "header:\n%s\nclaims:\n%s\n", hb, cb)
	for _, name := range []string{"iat", "nbf", "exp"} {
		if v, ok := claims[name].(float64); ok {
			fmt.Fprintf(m.Stdout, "%s: %s\n", name, time.Unix(int64(v), 0).UTC().Format(time.RFC3339))
		}
	}
	fmt.Fprintf(m.Stdout, "signature: %s\n", status)
	return verr
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("not base64url: %v", err)
	}
	return json.Unmarshal(b, v)
}
