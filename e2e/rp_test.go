package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// relyingParty is an OpenID Connect relying party (a confidential web
// client) built only on golang.org/x/oauth2 and go-oidc, serving on a
// loopback port: GET /login starts an authorization (PKCE S256, state,
// nonce) and GET /callback finishes it, checking what OpenID Connect Core
// 1.0 §3.1.3.7 and RFC 9207 ask a client to check, then shows a page with
// the outcome as JSON in #result.
type relyingParty struct {
	// URL is the base URL, http://127.0.0.1:PORT.
	URL string

	issuer   string
	oauth    oauth2.Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	ln       net.Listener

	mu      sync.Mutex
	pending map[string]pendingAuthorization // by state
}

// pendingAuthorization is what the relying party keeps between sending
// the browser to the authorization endpoint and the callback.
type pendingAuthorization struct {
	codeVerifier, nonce string
}

// rpResult is what the callback page shows, as JSON.
type rpResult struct {
	// Error is the authorization error (RFC 6749 §4.1.2.1) or what the
	// relying party found wrong; empty on success.
	Error string `json:"error,omitempty"`
	// IDTokenAlg and IDTokenTyp are the ID token's JWS header values.
	IDTokenAlg string `json:"id_token_alg,omitempty"`
	IDTokenTyp string `json:"id_token_typ,omitempty"`
	// Subject is the ID token's sub, which UserInfo's sub matched.
	Subject string `json:"sub,omitempty"`
	// Email, EmailVerified and Name are from UserInfo.
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
	// Scope is the granted scope of the token response.
	Scope string `json:"scope,omitempty"`
	// Refreshed is true when the refresh token worked; Rotated when the
	// refresh grant returned a new refresh token.
	Refreshed bool `json:"refreshed,omitempty"`
	Rotated   bool `json:"rotated,omitempty"`
}

// startRelyingParty listens on a free loopback port, so that its redirect
// URI (URL + "/callback") can be registered before the issuer runs. Its
// client and issuer are set by serve.
func startRelyingParty(t *testing.T) *relyingParty {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &relyingParty{URL: "http://" + ln.Addr().String(), ln: ln, pending: map[string]pendingAuthorization{}}
}

// serve discovers the issuer (go-oidc checks that the metadata's issuer
// is the one asked for) and starts serving as the given client.
func (rp *relyingParty) serve(t *testing.T, issuer string, c registeredClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	rp.issuer, rp.provider = issuer, p
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic
	rp.oauth = oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		Endpoint:     ep,
		RedirectURL:  rp.URL + "/callback",
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess},
	}
	// The default accepts RS256 only, the algorithm every OpenID Provider
	// must support (OpenID Connect Core 1.0 §15.1).
	rp.verifier = p.Verifier(&oidc.Config{ClientID: c.ClientID})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", rp.login)
	mux.HandleFunc("GET /callback", rp.callback)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(rp.ln)
	t.Cleanup(func() { srv.Close() })
}

// login starts an authorization: a fresh state, nonce and PKCE verifier,
// kept by state; the state is also bound to this browser in a cookie.
func (rp *relyingParty) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, codeVerifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	rp.mu.Lock()
	rp.pending[state] = pendingAuthorization{codeVerifier: codeVerifier, nonce: nonce}
	rp.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "rp_state", Value: state, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, rp.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(codeVerifier), oidc.Nonce(nonce)), http.StatusFound)
}

// callback finishes an authorization and shows its outcome.
func (rp *relyingParty) callback(w http.ResponseWriter, r *http.Request) {
	res, err := rp.finish(r)
	if err != nil {
		res = rpResult{Error: err.Error()}
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	resultPage.Execute(w, struct {
		Result rpResult
		JSON   string
	}{res, string(b)})
}

var resultPage = template.Must(template.New("result").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Relying party</title></head>
<body>
{{if .Result.Error}}<h1>Sign-in failed</h1><p id="error">{{.Result.Error}}</p>
{{else}}<h1>Signed in</h1><p>Hello {{.Result.Name}} ({{.Result.Email}}), subject {{.Result.Subject}}.</p>
{{end}}<pre id="result">{{.JSON}}</pre>
</body></html>
`))

// finish checks the callback and redeems the code: state bound to this
// browser, iss (RFC 9207 §2.4), the code exchanged with the PKCE verifier,
// the ID token verified (signature, iss, aud, exp by go-oidc; nonce and
// at_hash here), UserInfo's sub equal to the ID token's, and the refresh
// token used once.
func (rp *relyingParty) finish(r *http.Request) (rpResult, error) {
	q := r.URL.Query()
	state := q.Get("state")
	cookie, err := r.Cookie("rp_state")
	if err != nil || state == "" || cookie.Value != state {
		return rpResult{}, errors.New("state does not match this browser's")
	}
	rp.mu.Lock()
	pa, ok := rp.pending[state]
	delete(rp.pending, state)
	rp.mu.Unlock()
	if !ok {
		return rpResult{}, errors.New("unknown or reused state")
	}
	if iss := q.Get("iss"); iss != rp.issuer {
		return rpResult{}, fmt.Errorf("iss %q in the authorization response, want %q", iss, rp.issuer)
	}
	if e := q.Get("error"); e != "" {
		return rpResult{Error: e}, nil
	}

	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pa.codeVerifier))
	if err != nil {
		return rpResult{}, fmt.Errorf("token exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return rpResult{}, errors.New("no id_token in the token response")
	}
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return rpResult{}, fmt.Errorf("id_token: %w", err)
	}
	if idt.Nonce != pa.nonce {
		return rpResult{}, fmt.Errorf("id_token nonce %q, want %q", idt.Nonce, pa.nonce)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return rpResult{}, fmt.Errorf("id_token at_hash: %w", err)
		}
	}
	res := rpResult{Subject: idt.Subject}
	res.Scope, _ = tok.Extra("scope").(string)
	if res.IDTokenAlg, res.IDTokenTyp, err = joseHeader(raw); err != nil {
		return rpResult{}, err
	}

	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return rpResult{}, fmt.Errorf("userinfo: %w", err)
	}
	if ui.Subject != idt.Subject {
		return rpResult{}, fmt.Errorf("userinfo sub %q, id_token sub %q", ui.Subject, idt.Subject)
	}
	var claims struct {
		Name string `json:"name"`
	}
	if err := ui.Claims(&claims); err != nil {
		return rpResult{}, fmt.Errorf("userinfo claims: %w", err)
	}
	res.Email, res.EmailVerified, res.Name = ui.Email, ui.EmailVerified, claims.Name

	if tok.RefreshToken != "" {
		old := *tok
		old.Expiry = time.Now().Add(-time.Minute) // make the token source refresh
		fresh, err := rp.oauth.TokenSource(ctx, &old).Token()
		if err != nil {
			return rpResult{}, fmt.Errorf("refresh: %w", err)
		}
		res.Refreshed = fresh.AccessToken != "" && fresh.AccessToken != tok.AccessToken
		res.Rotated = fresh.RefreshToken != "" && fresh.RefreshToken != tok.RefreshToken
	}
	return res, nil
}

// joseHeader returns the alg and typ of a compact JWS's protected header.
// The signature has already been verified by go-oidc.
func joseHeader(jws string) (alg, typ string, err error) {
	h, _, _ := strings.Cut(jws, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return "", "", fmt.Errorf("id_token header: %w", err)
	}
	var hdr struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		return "", "", fmt.Errorf("id_token header: %w", err)
	}
	return hdr.Alg, hdr.Typ, nil
}
