package issuer

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/authzdetails"
)

// Authorization endpoint error codes (RFC 6749 §4.1.2.1, OpenID Connect
// Core §3.1.2.6, RFC 9126 §2.3).
const (
	CodeAccessDenied            = "access_denied"
	CodeUnsupportedResponseType = "unsupported_response_type"
	CodeLoginRequired           = "login_required"
	CodeConsentRequired         = "consent_required"
	CodeRequestNotSupported     = "request_not_supported"
	CodeInvalidRequestURI       = "invalid_request_uri"
)

// Scopes with a meaning in OpenID Connect (Core §5.4, §11).
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

// authRequest is a validated authorization request. It travels between
// the sign-in and consent pages sealed in a ticket (flowKeys.seal), so
// nothing in it can be changed by the browser.
type authRequest struct {
	ClientID     string   `json:"client_id"`
	RedirectURI  string   `json:"redirect_uri"`
	RedirectSent bool     `json:"redirect_sent,omitempty"` // redirect_uri was a parameter (RFC 6749 §4.1.3)
	Scopes       []string `json:"scopes,omitempty"`
	Audience     []string `json:"audience,omitempty"`
	State        string   `json:"state,omitempty"`
	Nonce        string   `json:"nonce,omitempty"`
	Challenge    string   `json:"challenge"`
	ResponseMode string   `json:"response_mode,omitempty"`
	Prompt       []string `json:"prompt,omitempty"`
	MaxAge       int64    `json:"max_age"` // -1: none given
	LoginHint    string   `json:"login_hint,omitempty"`
	// AuthorizationDetails are the RFC 9396 details requested; the consent
	// page shows them, always (needsConsent).
	AuthorizationDetails authzdetails.List `json:"authorization_details,omitempty"`
	// Session is the session a sign-in made for this request: it meets
	// prompt=login and max_age whatever the clocks say.
	Session string `json:"session,omitempty"`
	// Device is the normalised user code of a device flow (RFC 8628
	// §3.3) that signs in on these pages; such a request has no redirect
	// URI and never reaches the authorization or consent endpoints.
	Device string `json:"device,omitempty"`
	// Created is when the request reached the server, in nanoseconds:
	// the ticket expires ticketTTL after it.
	Created int64 `json:"created"`
}

// ticketTTL bounds how long a user may take on the sign-in and consent
// pages.
const ticketTTL = 30 * time.Minute

// Parameter bounds: generous for real clients, small enough that nothing
// an attacker sends is kept at length.
const (
	maxStateLen = 2048
	maxNonceLen = 512
)

// pkceChallenge is an S256 challenge: a base64url SHA-256 (RFC 7636 §4.2).
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// authError is an authorization error. When redirect is set the client is
// known and the redirect URI registered, so the error goes back to the
// client (RFC 6749 §4.1.2.1); otherwise the user sees an error page and is
// never redirected.
type authError struct {
	Code        string
	Description string
	redirect    *authRequest
}

func (e *authError) Error() string { return e.Code + ": " + e.Description }

// errorPage is an error shown to the user, never sent to a redirect URI.
func errorPage(desc string) *authError {
	return &authError{Code: CodeInvalidRequest, Description: desc}
}

// serveAuthorize is the authorization endpoint (RFC 6749 §3.1; OpenID
// Connect Core §3.1.2), for GET and POST. A request continuing after the
// sign-in page carries its sealed ticket instead of parameters.
func (h *Handler) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	params, err := authorizeParams(w, r)
	if err != nil {
		h.renderError(w, r, http.StatusBadRequest, errorPage(err.Error()))
		return
	}
	var req *authRequest
	var aerr *authError
	if t := params.Get("ticket"); t != "" && len(params) == 1 {
		if req, aerr = h.openTicket(t); aerr == nil {
			aerr = h.recheck(r.Context(), req)
		}
	} else {
		req, aerr = h.parseAuthorize(r.Context(), params)
	}
	if aerr != nil {
		h.authFailed(w, r, aerr)
		return
	}
	if r.Method == http.MethodPost {
		// A POST from the client's site comes without the session cookie
		// (SameSite=Lax): continue as a GET, which has it.
		httpNoStorePage(w)
		http.Redirect(w, r, h.endpoint(PathAuthorize)+"?ticket="+h.ticket(req), http.StatusSeeOther)
		return
	}
	h.proceed(w, r, req)
}

// authorizeParams reads the request's parameters: the query for GET, the
// form body for POST (OpenID Connect Core §3.1.2.1). Repeated parameters
// are refused (RFC 6749 §3.1).
func authorizeParams(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		form, oerr := readForm(w, r)
		if oerr != nil {
			return nil, errors.New(oerr.Description)
		}
		params = form
	}
	for k, v := range params {
		if len(v) > 1 && k != "resource" {
			return nil, errors.New("parameter " + k + " must not be repeated")
		}
	}
	return params, nil
}

// parseAuthorize validates an authorization request's parameters, taking
// a pushed request's instead when there is a request_uri (RFC 9126 §4).
func (h *Handler) parseAuthorize(ctx context.Context, p url.Values) (*authRequest, *authError) {
	clientID := p.Get("client_id")
	if clientID == "" {
		return nil, errorPage("client_id is missing")
	}
	client, err := h.lookupClient(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if ru := p.Get("request_uri"); ru != "" {
		pushed, perr := h.takePushed(ctx, client, ru)
		if perr != nil {
			return nil, perr
		}
		p = pushed
		if p.Get("client_id") != clientID {
			return nil, errorPage("the pushed request belongs to another client")
		}
	} else if client.RequirePAR {
		req, rerr := h.checkRedirect(client, p)
		if rerr != nil {
			return nil, rerr
		}
		return nil, &authError{Code: CodeInvalidRequest, Description: "this client must push its authorization requests (RFC 9126)", redirect: req}
	}
	return h.validateAuthorize(client, p)
}

// lookupClient finds the client of an authorization request.
func (h *Handler) lookupClient(ctx context.Context, id string) (*sigil.Client, *authError) {
	e, err := h.client(ctx, id)
	var derr *documentError
	if errors.As(err, &derr) {
		h.Log.InfoContext(ctx, "authorize: client metadata document refused", "client_id", id, "err", err)
		return nil, errorPage(derr.public)
	}
	if errors.Is(err, sigil.ErrNotFound) {
		return nil, errorPage("unknown client_id")
	}
	if err != nil {
		h.Log.ErrorContext(ctx, "authorize: client lookup failed", "err", err)
		return nil, &authError{Code: CodeTemporarilyUnavailable, Description: "the server cannot look up the client; try again shortly"}
	}
	return e.client, nil
}

// checkRedirect decides the redirect URI: the parameter, matched exactly
// against the registered ones (RFC 9700 §4.1.3), or the only registered
// URI when the parameter is absent. Until it succeeds no error may be
// redirected.
func (h *Handler) checkRedirect(c *sigil.Client, p url.Values) (*authRequest, *authError) {
	req := &authRequest{ClientID: c.ID, MaxAge: -1, ResponseMode: p.Get("response_mode")}
	if ru := p.Get("redirect_uri"); ru != "" {
		if !slices.Contains(c.RedirectURIs, ru) {
			return nil, errorPage("redirect_uri is not registered for this client")
		}
		req.RedirectURI, req.RedirectSent = ru, true
	} else if len(c.RedirectURIs) == 1 {
		req.RedirectURI = c.RedirectURIs[0]
	} else {
		return nil, errorPage("redirect_uri is missing")
	}
	if req.ResponseMode != "query" && req.ResponseMode != "form_post" {
		req.ResponseMode = "" // the default, query, also for this error
	}
	req.State = p.Get("state")
	if len(req.State) > maxStateLen {
		req.State = "" // not echoed at length
		return nil, &authError{Code: CodeInvalidRequest, Description: "state is too long", redirect: req}
	}
	return req, nil
}

// validateAuthorize checks every parameter of an authorization request
// from client c.
func (h *Handler) validateAuthorize(c *sigil.Client, p url.Values) (*authRequest, *authError) {
	req, aerr := h.checkRedirect(c, p)
	if aerr != nil {
		return nil, aerr
	}
	fail := func(code, desc string) (*authRequest, *authError) {
		return nil, &authError{Code: code, Description: desc, redirect: req}
	}
	if p.Has("request") {
		return fail(CodeRequestNotSupported, "request objects are not supported; push the request (RFC 9126) instead")
	}
	if rm := p.Get("response_mode"); rm != "" && rm != "query" && rm != "form_post" {
		return fail(CodeInvalidRequest, "response_mode must be query or form_post")
	}
	if req.ResponseMode == "form_post" && !strings.HasPrefix(req.RedirectURI, "https:") && !strings.HasPrefix(req.RedirectURI, "http:") {
		// A page cannot post a form to an app's private-use scheme.
		req.ResponseMode = ""
		return fail(CodeInvalidRequest, "response_mode=form_post needs an http or https redirect URI")
	}
	switch rt := p.Get("response_type"); {
	case rt == "":
		return fail(CodeInvalidRequest, "response_type is missing")
	case rt != "code":
		return fail(CodeUnsupportedResponseType, "only response_type=code is supported")
	}
	if !c.HasGrant(sigil.GrantAuthorizationCode) {
		return fail(CodeUnauthorizedClient, "the client may not use the authorization code grant")
	}
	// PKCE for every client, S256 only (RFC 9700 §2.1.1).
	switch m := p.Get("code_challenge_method"); {
	case !p.Has("code_challenge"):
		return fail(CodeInvalidRequest, "code_challenge is required (PKCE with S256)")
	case m != "S256":
		return fail(CodeInvalidRequest, "code_challenge_method must be S256")
	case !pkceChallenge.MatchString(p.Get("code_challenge")):
		return fail(CodeInvalidRequest, "code_challenge must be a base64url SHA-256 digest")
	}
	req.Challenge = p.Get("code_challenge")
	scopes, oerr := grantScope(c, p.Get("scope"))
	if oerr != nil {
		return fail(oerr.Code, oerr.Description)
	}
	req.Scopes = scopes
	details, oerr := parseDetails(p.Get("authorization_details"))
	if oerr != nil {
		return fail(oerr.Code, oerr.Description)
	}
	aud, oerr := h.detailsAudience(c, p["resource"], details)
	if oerr != nil {
		return fail(oerr.Code, oerr.Description)
	}
	req.Audience, req.AuthorizationDetails = aud, details
	req.Nonce = p.Get("nonce")
	if len(req.Nonce) > maxNonceLen {
		return fail(CodeInvalidRequest, "nonce is too long")
	}
	if !printable(req.Nonce) {
		// It is stored with the code and returned in the ID token.
		return fail(CodeInvalidRequest, "nonce must be printable UTF-8 text")
	}
	if pr := p.Get("prompt"); pr != "" {
		req.Prompt = strings.Fields(pr)
		for _, v := range req.Prompt {
			if v != "none" && v != "login" && v != "consent" && v != "select_account" {
				return fail(CodeInvalidRequest, "prompt "+v+" is not supported")
			}
		}
		if slices.Contains(req.Prompt, "none") && len(req.Prompt) > 1 {
			return fail(CodeInvalidRequest, "prompt=none cannot be combined with other values")
		}
	}
	if ma := p.Get("max_age"); ma != "" {
		n, err := strconv.ParseInt(ma, 10, 64)
		if err != nil || n < 0 {
			return fail(CodeInvalidRequest, "max_age must be a non-negative integer")
		}
		req.MaxAge = n
	}
	if lh := p.Get("login_hint"); len(lh) <= 256 {
		req.LoginHint = lh
	}
	req.Created = h.now().UnixNano()
	return req, nil
}

// openTicket reads a ticket back into its request.
func (h *Handler) openTicket(ticket string) (*authRequest, *authError) {
	var req authRequest
	if err := h.keys.open("authorize", ticket, &req); err != nil {
		return nil, errorPage("the sign-in link is not valid; start again from the application")
	}
	if h.now().Sub(time.Unix(0, req.Created)) > ticketTTL {
		return nil, errorPage("the sign-in took too long; start again from the application")
	}
	return &req, nil
}

// recheck holds a request from a ticket to the client as it is now: the
// client may have been deleted, or lost the redirect URI, the grant or a
// scope since the request was validated. A ticket of the account page (no
// client) is refused here.
func (h *Handler) recheck(ctx context.Context, req *authRequest) *authError {
	if req.ClientID == "" {
		return errorPage("this sign-in was not for an application")
	}
	if req.Device != "" {
		return errorPage("this sign-in was for a device; continue on the device page")
	}
	c, aerr := h.lookupClient(ctx, req.ClientID)
	if aerr != nil {
		return aerr
	}
	if !slices.Contains(c.RedirectURIs, req.RedirectURI) {
		return errorPage("the application's redirect URI is no longer registered")
	}
	if !c.HasGrant(sigil.GrantAuthorizationCode) || !subset(req.Scopes, c.Scopes) || !subset(req.AuthorizationDetails.Resources(), c.Audiences) {
		return &authError{Code: CodeUnauthorizedClient, Description: "the application's registration changed; start again", redirect: req}
	}
	return nil
}

// ticket seals req for the next page.
func (h *Handler) ticket(req *authRequest) string {
	t, err := h.keys.seal("authorize", req)
	if err != nil {
		panic(err) // authRequest always encodes
	}
	return t
}

// proceed takes a valid request as far as it can go: the sign-in page
// when the user must authenticate, the consent page when the user must
// agree, or straight back to the client with a code.
func (h *Handler) proceed(w http.ResponseWriter, r *http.Request, req *authRequest) {
	ctx := r.Context()
	sess, user, err := h.currentSession(ctx, r)
	if err != nil {
		h.Log.ErrorContext(r.Context(), "authorize: store unavailable", "err", err)
		h.authFailed(w, r, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly", redirect: req})
		return
	}
	if sess == nil || h.mustAuthenticate(req, sess) {
		if slices.Contains(req.Prompt, "none") {
			h.authFailed(w, r, &authError{Code: CodeLoginRequired, Description: "the user is not signed in", redirect: req})
			return
		}
		h.renderSignIn(w, r, req, "", http.StatusOK)
		return
	}
	c, aerr := h.lookupClient(ctx, req.ClientID)
	if aerr != nil {
		h.authFailed(w, r, aerr)
		return
	}
	need, err := h.needsConsent(ctx, req, c, user.ID)
	if err != nil {
		h.Log.ErrorContext(r.Context(), "authorize: store unavailable", "err", err)
		h.authFailed(w, r, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly", redirect: req})
		return
	}
	if need {
		if slices.Contains(req.Prompt, "none") {
			h.authFailed(w, r, &authError{Code: CodeConsentRequired, Description: "the user has not consented", redirect: req})
			return
		}
		h.renderConsent(w, r, req, c, user)
		return
	}
	h.issueCode(w, r, req, sess)
}

// mustAuthenticate reports whether the request asks for a newer
// authentication than the session's: prompt=login, or max_age exceeded.
// prompt=select_account counts as login: the sign-in page is where the
// user picks the account.
func (h *Handler) mustAuthenticate(req *authRequest, s *sigil.Session) bool {
	relogin := slices.Contains(req.Prompt, "login") || slices.Contains(req.Prompt, "select_account")
	if req.Session != "" && req.Session == s.ID {
		return false // the user signed in during this very request
	}
	if relogin {
		return true
	}
	return req.MaxAge >= 0 && h.now().Sub(s.AuthTime) > time.Duration(req.MaxAge)*time.Second
}

// needsConsent reports whether the user must be asked: prompt=consent, a
// public client, authorization details, or no remembered consent covering
// the request's scopes and audience. A public client is always asked:
// anyone can send its client_id, and an app on the user's device can
// claim its redirect URI, so a silent answer could hand the user's code
// to an impostor (RFC 8252 §8.6). Authorization details (RFC 9396) are
// always shown: a consent remembers scopes and audiences, not the tools
// the user allowed, so a remembered consent never grants a tool the user
// did not see (and prompt=none with details is consent_required).
func (h *Handler) needsConsent(ctx context.Context, req *authRequest, client *sigil.Client, userID string) (bool, error) {
	if slices.Contains(req.Prompt, "consent") || client.AuthMethod == sigil.AuthNone || len(req.AuthorizationDetails) > 0 {
		return true, nil
	}
	c, err := h.Store.Consent(ctx, userID, req.ClientID)
	if errors.Is(err, sigil.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !subset(req.Scopes, c.Scopes) || !subset(req.Audience, c.Audience), nil
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// codeTTL is an authorization code's life (RFC 6749 §4.1.2 recommends at
// most ten minutes; a client redeems it at once).
const codeTTL = time.Minute

// issueCode stores a one-time code for the request and sends the user
// back to the client with it.
func (h *Handler) issueCode(w http.ResponseWriter, r *http.Request, req *authRequest, sess *sigil.Session) {
	ctx := r.Context()
	code := randomValue()
	now := h.now()
	err := h.Store.CreateCode(ctx, &sigil.AuthCode{
		Hash: h.keys.storedHash("code", code), ClientID: req.ClientID, UserID: sess.UserID,
		RedirectURI: req.RedirectURI, Scopes: req.Scopes, Audience: req.Audience, Nonce: req.Nonce,
		CodeChallenge: req.Challenge, AuthTime: sess.AuthTime, AMR: sess.AMR, ACR: acrPassword,
		SessionID: sess.ID, ExpiresAt: now.Add(codeTTL), AuthorizationDetails: req.AuthorizationDetails.Encode(),
	})
	if err != nil {
		h.Log.ErrorContext(ctx, "authorize: code not stored", "err", err)
		h.authFailed(w, r, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly", redirect: req})
		return
	}
	if err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: audit.CodeIssued, Outcome: audit.Success, ClientID: req.ClientID, Subject: sess.UserID,
		Scope: strings.Join(req.Scopes, " "), Audience: req.Audience,
	})); err != nil {
		h.Log.ErrorContext(ctx, "audit: code issuance not recorded", "err", err)
	}
	h.respond(w, r, req, url.Values{"code": {code}})
}

// authFailed answers an authorization error: back to the client when its
// redirect URI is known, else an error page.
func (h *Handler) authFailed(w http.ResponseWriter, r *http.Request, e *authError) {
	if e.redirect == nil {
		status := http.StatusBadRequest
		if e.Code == CodeTemporarilyUnavailable {
			status = http.StatusServiceUnavailable
		}
		h.renderError(w, r, status, e)
		return
	}
	v := url.Values{"error": {e.Code}}
	if e.Description != "" {
		v.Set("error_description", safeDescription(e.Description))
	}
	h.respond(w, r, e.redirect, v)
}

// respond sends the authorization response to the client's redirect URI
// with state and iss (RFC 9207) added, by redirect or by form post.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, req *authRequest, v url.Values) {
	if req.State != "" {
		v.Set("state", req.State)
	}
	v.Set("iss", h.Issuer)
	if req.ResponseMode == "form_post" {
		h.renderFormPost(w, r, req.RedirectURI, v)
		return
	}
	u, err := url.Parse(req.RedirectURI)
	if err != nil { // registered URIs are validated at registration
		h.renderError(w, r, http.StatusInternalServerError, errorPage("the client's redirect URI is malformed"))
		return
	}
	q := u.Query()
	for k, vals := range v {
		q[k] = vals
	}
	u.RawQuery = q.Encode()
	httpNoStorePage(w)
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
