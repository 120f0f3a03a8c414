package issuer

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
)

// The verification page of the device flow (RFC 8628 §3.3): the user
// enters the user code (or finds it filled in from
// verification_uri_complete), signs in on the sign-in page, and allows or
// denies the device on a consent page that names the client, the scopes
// and the code. Nothing is ever approved without that last form: a
// prefilled code only saves typing (§5.4, remote phishing).

// deviceLimiter limits failed user-code entries per client address:
// a burst of 10, then one every 6 seconds, about 110 in a code's default
// ten minutes (see userCodeLen for what that means for guessing). Only
// failures spend. The limit is per node.
type deviceLimiter struct {
	mu     sync.Mutex
	byHost buckets
	// all caps failed entries on the node whatever their addresses: a
	// host limit alone yields to many addresses (an IPv6 /48 holds 65,536
	// /64s), and past maxLimiterKeys the host buckets start over.
	all buckets
}

func newDeviceLimiter() *deviceLimiter {
	return &deviceLimiter{
		byHost: buckets{burst: 10, interval: 6 * time.Second},
		all:    buckets{burst: 100, interval: 200 * time.Millisecond},
	}
}

// attempt spends one attempt of host's and of the node's buckets before
// the code is looked up, or says how long to wait, spending nothing: the
// check and the spending are one step, so parallel guesses cannot all
// pass the check first. refund gives a successful attempt back.
func (l *deviceLimiter) attempt(host string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := max(l.byHost.peek(host, now), l.all.peek("", now)); w > 0 {
		return w
	}
	l.byHost.take(host, now)
	l.all.take("", now)
	return 0
}

// refund returns the attempt a code that was found spent.
func (l *deviceLimiter) refund(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range []*buckets{&l.byHost, &l.all} {
		key := host
		if b == &l.all {
			key = ""
		}
		if k := b.m[key]; k != nil {
			k.tokens = min(b.burst, k.tokens+1)
		}
	}
}

// userCodeRefused is the one message for every user code not accepted:
// unknown, mistyped, expired or already used look the same, so the page
// tells nobody which codes exist.
const userCodeRefused = "That code is not valid. Check it against your device and try again; codes expire after a few minutes."

// serveDevice shows the code entry form, prefilled from the user_code
// parameter, or continues a device flow after the sign-in page (ticket).
func (h *Handler) serveDevice(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if t := q.Get("ticket"); t != "" {
		req, aerr := h.openTicket(t)
		if aerr == nil && req.Device == "" {
			aerr = errorPage("this sign-in was not for a device")
		}
		if aerr != nil {
			h.renderError(w, r, http.StatusBadRequest, aerr)
			return
		}
		h.deviceContinue(w, r, req)
		return
	}
	code := q.Get("user_code")
	if n, ok := normalizeUserCode(code); ok {
		code = displayUserCode(n)
	} else {
		code = "" // not echoed: it cannot be a code anyway
	}
	h.renderDeviceForm(w, r, code, "", http.StatusOK)
}

// serveDeviceCode handles the code entry form.
func (h *Handler) serveDeviceCode(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, oerr := readForm(w, r); oerr != nil {
		h.renderError(w, r, http.StatusBadRequest, errorPage(oerr.Description))
		return
	}
	if err := h.checkCSRF(r); err != nil {
		h.Log.InfoContext(ctx, "form: CSRF check failed", "path", r.URL.Path, "err", err)
		h.renderError(w, r, http.StatusForbidden, errorPage("the form expired or did not come from this site; open the page again"))
		return
	}
	typed := r.PostForm.Get("user_code")
	if len(typed) > 64 {
		typed = ""
	}
	if strings.TrimSpace(typed) == "" {
		h.renderDeviceForm(w, r, "", "Enter the code your device shows.", http.StatusBadRequest)
		return
	}
	host := h.clientKey(r)
	if wait := h.userCodes.attempt(host, h.now()); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		h.renderDeviceForm(w, r, typed, "Too many attempts. Wait a minute and try again.", http.StatusTooManyRequests)
		return
	}
	var d *sigil.DeviceAuthorization
	code, ok := normalizeUserCode(typed)
	err := sigil.ErrNotFound
	if ok {
		d, err = h.Store.DeviceByUserCode(ctx, h.keys.storedHash("user_code", code))
	}
	switch {
	case errors.Is(err, sigil.ErrNotFound):
		if aerr := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
			Event: audit.DeviceUserCodeRefused, Outcome: audit.Failure, Reason: "invalid_user_code",
		})); aerr != nil {
			h.Log.ErrorContext(ctx, "audit: refused user code not recorded", "err", aerr)
		}
		h.renderDeviceForm(w, r, typed, userCodeRefused, http.StatusBadRequest)
		return
	case err != nil:
		h.userCodes.refund(host)
		h.Log.ErrorContext(ctx, "device: lookup failed", "err", err)
		h.renderDeviceForm(w, r, typed, "The service is unavailable right now. Try again shortly.", http.StatusServiceUnavailable)
		return
	}
	h.userCodes.refund(host)
	h.deviceContinue(w, r, &authRequest{ClientID: d.ClientID, Device: code, MaxAge: -1, Created: h.now().UnixNano()})
}

// deviceContinue takes a device flow with a valid code to the sign-in
// page, or, with a session, to the consent page.
func (h *Handler) deviceContinue(w http.ResponseWriter, r *http.Request, req *authRequest) {
	ctx := r.Context()
	sess, user, err := h.currentSession(ctx, r)
	if err != nil {
		h.Log.ErrorContext(ctx, "device: store unavailable", "err", err)
		h.renderError(w, r, http.StatusServiceUnavailable, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly"})
		return
	}
	if sess == nil {
		h.renderSignIn(w, r, req, "", http.StatusOK)
		return
	}
	d, c, aerr := h.deviceRecheck(ctx, req)
	if aerr != nil {
		h.renderError(w, r, http.StatusBadRequest, aerr)
		return
	}
	aud := slices.DeleteFunc(slices.Clone(d.Audience), func(a string) bool { return a == h.Issuer })
	h.render(w, http.StatusOK, "device_consent.html", map[string]any{
		"Title": "Allow a device", "ClientName": displayName(c), "Unverified": selfRegistered(c), "Username": user.Username,
		"UserCode": displayUserCode(req.Device), "Scopes": scopeLines(d.Scopes), "Audience": aud,
		"Action": h.endpoint(PathDeviceConsent), "CSRF": h.csrfFor(w, r), "Ticket": h.ticket(req),
	})
}

// deviceRecheck finds the pending authorization of a device ticket and
// holds it to its client as the client is now: deleted, or without the
// grant or a scope since, the request is refused.
func (h *Handler) deviceRecheck(ctx context.Context, req *authRequest) (*sigil.DeviceAuthorization, *sigil.Client, *authError) {
	d, err := h.Store.DeviceByUserCode(ctx, h.keys.storedHash("user_code", req.Device))
	if errors.Is(err, sigil.ErrNotFound) {
		return nil, nil, errorPage("the code expired or was used; start again on your device")
	}
	if err != nil {
		h.Log.ErrorContext(ctx, "device: lookup failed", "err", err)
		return nil, nil, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly"}
	}
	c, aerr := h.lookupClient(ctx, d.ClientID)
	if aerr != nil {
		return nil, nil, aerr
	}
	if d.ClientID != req.ClientID || !c.HasGrant(sigil.GrantDeviceCode) || !subset(d.Scopes, c.Scopes) {
		return nil, nil, errorPage("the application's registration changed; start again on your device")
	}
	return d, c, nil
}

// serveDeviceConsent handles the device consent form: the user's
// decision, recorded once.
func (h *Handler) serveDeviceConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, ok := h.flowForm(w, r)
	if !ok {
		return
	}
	if req.Device == "" {
		h.renderError(w, r, http.StatusBadRequest, errorPage("this form was not for a device"))
		return
	}
	sess, user, err := h.currentSession(ctx, r)
	if err != nil {
		h.Log.ErrorContext(ctx, "device: store unavailable", "err", err)
		h.renderError(w, r, http.StatusServiceUnavailable, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly"})
		return
	}
	if sess == nil {
		h.renderSignIn(w, r, req, "", http.StatusOK)
		return
	}
	var approve bool
	switch r.PostForm.Get("decision") {
	case "allow":
		approve = true
	case "deny":
	default:
		h.renderError(w, r, http.StatusBadRequest, errorPage("choose Allow or Deny"))
		return
	}
	d, _, aerr := h.deviceRecheck(ctx, req)
	if aerr != nil {
		h.renderError(w, r, http.StatusBadRequest, aerr)
		return
	}
	if approve {
		// The consent is remembered as the authorization code flow's is:
		// the account page lists it, and withdrawing it revokes the
		// device's refresh tokens (checkNewFamily requires it).
		c := &sigil.Consent{UserID: user.ID, ClientID: d.ClientID, Scopes: d.Scopes, Audience: d.Audience, GrantedAt: h.now()}
		if old, err := h.Store.Consent(ctx, user.ID, d.ClientID); err == nil {
			c.Scopes, c.Audience = union(old.Scopes, d.Scopes), union(old.Audience, d.Audience)
		}
		if err := h.Store.SaveConsent(ctx, c); err != nil {
			h.Log.ErrorContext(ctx, "device: consent not stored", "err", err)
			h.renderError(w, r, http.StatusServiceUnavailable, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly"})
			return
		}
	}
	_, err = h.Store.DecideDevice(ctx, d.UserCodeHash, sigil.DeviceDecision{
		Approve: approve, UserID: user.ID, At: h.now(), AuthTime: sess.AuthTime, AMR: sess.AMR, ACR: acrPassword, SessionID: sess.ID,
	})
	if errors.Is(err, sigil.ErrNotFound) {
		h.renderError(w, r, http.StatusBadRequest, errorPage("the code expired or was used; start again on your device"))
		return
	}
	if err != nil {
		h.Log.ErrorContext(ctx, "device: decision not stored", "err", err)
		h.renderError(w, r, http.StatusServiceUnavailable, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly"})
		return
	}
	event := audit.DeviceDenied
	if approve {
		event = audit.DeviceApproved
	}
	if err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: event, Outcome: audit.Success, ClientID: d.ClientID, Subject: user.ID,
		Scope: strings.Join(d.Scopes, " "), Audience: d.Audience,
	})); err != nil {
		h.Log.ErrorContext(ctx, "audit: device decision not recorded", "err", err)
	}
	h.render(w, http.StatusOK, "device_done.html", map[string]any{"Title": "Done", "Approved": approve})
}

func (h *Handler) renderDeviceForm(w http.ResponseWriter, r *http.Request, code, msg string, status int) {
	h.render(w, status, "device.html", map[string]any{
		"Title": "Connect a device", "Action": h.endpoint(PathDevice), "CSRF": h.csrfFor(w, r), "UserCode": code, "Error": msg,
	})
}
