package issuer

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
)

// acrPassword is the acr of a password sign-in: level 1 of ISO/IEC 29115,
// one factor.
const acrPassword = "1"

// amrPassword is the amr of a password sign-in (RFC 8176 §2).
const amrPassword = "pwd"

// signInFailed is the one message for every failed sign-in: it never says
// whether the username exists.
const signInFailed = "Incorrect username or password."

// maxCredential bounds the username and password read from the form.
const maxCredential = 1024

// currentSession returns the live session named by the request's cookie
// and its user, or nils when there is none (or its user is gone or
// disabled). Only a store failure is an error.
func (h *Handler) currentSession(ctx context.Context, r *http.Request) (*sigil.Session, *sigil.User, error) {
	ck, err := r.Cookie(h.cookies.session)
	if err != nil || len(ck.Value) != 43 {
		return nil, nil, nil
	}
	s, err := h.Store.Session(ctx, h.keys.storedHash("session", ck.Value))
	if errors.Is(err, sigil.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	u, err := h.Store.User(ctx, s.UserID)
	if errors.Is(err, sigil.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, nil
	}
	return s, u, nil
}

// flowForm reads a form posted by one of the flow's pages and returns the
// authorization request sealed in its ticket, after the CSRF checks. It
// answers the request itself and reports false when the form is refused.
func (h *Handler) flowForm(w http.ResponseWriter, r *http.Request) (*authRequest, bool) {
	if _, oerr := readForm(w, r); oerr != nil {
		h.renderError(w, r, http.StatusBadRequest, errorPage(oerr.Description))
		return nil, false
	}
	req, aerr := h.openTicket(r.PostForm.Get("ticket"))
	if aerr != nil {
		h.renderError(w, r, http.StatusBadRequest, aerr)
		return nil, false
	}
	if err := h.checkCSRF(r); err != nil {
		h.Log.InfoContext(r.Context(), "form: CSRF check failed", "path", r.URL.Path, "err", err)
		h.renderError(w, r, http.StatusForbidden, errorPage("the form expired or did not come from this site; start again from the application"))
		return nil, false
	}
	return req, true
}

// serveSignIn handles the sign-in form. Every failure answers the same
// message after the same work (a password hash is checked even for an
// unknown username), and attempts are rate-limited per client address and
// per username.
func (h *Handler) serveSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, ok := h.flowForm(w, r)
	if !ok {
		return
	}
	username := sigil.FoldUsername(strings.TrimSpace(r.PostForm.Get("username")))
	pw := r.PostForm.Get("password")
	if username == "" || pw == "" {
		h.renderSignIn(w, r, req, "Enter your username and password.", http.StatusBadRequest)
		return
	}
	if len(username) > maxCredential || len(pw) > maxCredential {
		h.renderSignIn(w, r, req, signInFailed, http.StatusUnauthorized)
		return
	}
	host, known := h.clientKey(r), h.knownDevice(r, username)
	if wait := h.signInLimit.wait(host, username, known, h.now()); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		h.renderSignIn(w, r, req, "Too many attempts. Wait a minute and try again.", http.StatusTooManyRequests)
		return
	}
	user, err := h.Store.UserByName(ctx, username)
	if err != nil && !errors.Is(err, sigil.ErrNotFound) {
		h.Log.ErrorContext(ctx, "sign-in: user lookup failed", "err", err)
		h.renderSignIn(w, r, req, "Sign-in is unavailable right now. Try again shortly.", http.StatusServiceUnavailable)
		return
	}
	hash := ""
	if user != nil && !user.Disabled {
		hash = user.PasswordHash
	}
	// An empty hash runs the same work and fails: no timing difference
	// between an unknown user, a disabled one and a wrong password.
	ok, rehashed := h.CheckPassword(hash, pw)
	if !ok || hash == "" {
		h.signInLimit.failed(host, username, h.now())
		h.signInRefused(ctx, username, user)
		h.renderSignIn(w, r, req, signInFailed, http.StatusUnauthorized)
		return
	}
	if rehashed != "" {
		// The parameters moved on since the hash was made: store one with
		// today's. A failure leaves the old hash, which still works.
		user.PasswordHash = rehashed
		if err := h.Store.UpdateUser(ctx, user); err != nil {
			h.Log.WarnContext(ctx, "sign-in: password hash not upgraded", "user", user.ID, "err", err)
		}
	}
	sess, err := h.startSession(w, r, user)
	if err != nil {
		h.Log.ErrorContext(ctx, "sign-in: session not stored", "err", err)
		h.renderSignIn(w, r, req, "Sign-in is unavailable right now. Try again shortly.", http.StatusServiceUnavailable)
		return
	}
	if err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: audit.SignIn, Outcome: audit.Success, Subject: user.ID, ClientID: req.ClientID,
		Detail: map[string]string{"amr": strings.Join(sess.AMR, " ")},
	})); err != nil {
		h.Log.ErrorContext(ctx, "audit: sign-in not recorded", "err", err)
	}
	h.rememberDevice(w, username)
	// The authentication this request asked for (prompt=login, max_age)
	// is this session's.
	req.Session = sess.ID
	// Post/redirect/get: the next step is a GET, so reloading it never
	// posts the password again.
	httpNoStorePage(w)
	if req.ClientID == "" { // signing in to the account page
		http.Redirect(w, r, h.endpoint(PathAccount), http.StatusSeeOther)
		return
	}
	if req.Device != "" { // a device flow continues on its own page
		http.Redirect(w, r, h.endpoint(PathDevice)+"?ticket="+h.ticket(req), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, h.endpoint(PathAuthorize)+"?ticket="+h.ticket(req), http.StatusSeeOther)
}

func (h *Handler) signInRefused(ctx context.Context, username string, user *sigil.User) {
	rec := audit.Record{Event: audit.SignInRefused, Outcome: audit.Failure, Reason: "invalid_credentials"}
	if user != nil {
		rec.Subject = user.ID
	} else if len(username) <= 64 {
		rec.Detail = map[string]string{"username": username}
	}
	if err := h.Audit.Enqueue(ctx, record(ctx, rec)); err != nil {
		h.Log.ErrorContext(ctx, "audit: refused sign-in not recorded", "err", err)
	}
}

// startSession replaces the browser's session (if any) with a new one for
// user, so a session id planted before sign-in is never promoted (session
// fixation).
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, user *sigil.User) (*sigil.Session, error) {
	ctx := r.Context()
	if ck, err := r.Cookie(h.cookies.session); err == nil && ck.Value != "" {
		if err := h.Store.DeleteSession(ctx, h.keys.storedHash("session", ck.Value)); err != nil {
			return nil, err
		}
	}
	now := h.now()
	value := randomValue()
	s := &sigil.Session{
		ID: h.keys.storedHash("session", value), UserID: user.ID, AuthTime: now,
		AMR: []string{amrPassword}, ExpiresAt: now.Add(h.SessionTTL),
	}
	if err := h.Store.CreateSession(ctx, s); err != nil {
		return nil, err
	}
	// Lax: the session must reach the authorization endpoint when a
	// client's page links to it.
	h.cookies.set(w, h.cookies.session, value, http.SameSiteLaxMode, s.ExpiresAt, 0)
	return s, nil
}

// endSession deletes the browser's session and its cookie; it returns the
// session that ended, or nil.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) (*sigil.Session, error) {
	ck, err := r.Cookie(h.cookies.session)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	h.cookies.set(w, h.cookies.session, "", http.SameSiteLaxMode, time.Time{}, -1)
	id := h.keys.storedHash("session", ck.Value)
	s, err := h.Store.Session(r.Context(), id)
	if errors.Is(err, sigil.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s, h.Store.DeleteSession(r.Context(), id)
}

// clientKey is the address the sign-in limit counts a request against:
// the peer, or the client a trusted proxy names in X-Forwarded-For (the
// last address before the trusted ones); an IPv6 address stands for its
// /64, which one host usually holds whole.
func (h *Handler) clientKey(r *http.Request) string { return h.peerKey(r, 64) }

// peerKey is the request's client address (see clientKey) as a limiter
// key: an IPv4 address, or the IPv6 prefix of v6bits that holds it.
func (h *Handler) peerKey(r *http.Request, v6bits int) string {
	addr, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	ip := addr.Addr().Unmap()
	if h.trusted(ip) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed entry: stop at the last address we trust
			}
			ip = hop.Unmap()
			if !h.trusted(ip) {
				break
			}
		}
	}
	if ip.Is6() {
		p, _ := ip.Prefix(v6bits)
		return p.String()
	}
	return ip.String()
}

func (h *Handler) trusted(ip netip.Addr) bool {
	for _, p := range h.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// deviceCookieTTL is how long a browser counts as one the user signed in
// on before.
const deviceCookieTTL = 180 * 24 * time.Hour

// deviceCookie is the sealed content of the device cookie.
type deviceCookie struct {
	Username string `json:"u"`
	Expires  int64  `json:"e"`
}

// rememberDevice marks the browser as one username signed in on.
func (h *Handler) rememberDevice(w http.ResponseWriter, username string) {
	exp := h.now().Add(deviceCookieTTL)
	v, err := h.keys.seal("device", deviceCookie{Username: username, Expires: exp.Unix()})
	if err != nil {
		return
	}
	h.cookies.set(w, h.cookies.device, v, http.SameSiteStrictMode, exp, 0)
}

// knownDevice reports whether the browser holds a live device cookie for
// username.
func (h *Handler) knownDevice(r *http.Request, username string) bool {
	ck, err := r.Cookie(h.cookies.device)
	if err != nil {
		return false
	}
	var d deviceCookie
	if h.keys.open("device", ck.Value, &d) != nil {
		return false
	}
	return d.Username == username && h.now().Unix() < d.Expires
}
