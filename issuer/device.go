package issuer

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/internal/httpx"
)

// The Device Authorization Grant (RFC 8628): a device or command-line
// agent without a browser asks at PathDeviceAuthorization, shows the user
// a short user code and the verification URI, and polls the token
// endpoint with its device code while the user signs in and decides on
// the verification page (devicepage.go).

// Device flow error codes at the token endpoint (RFC 8628 §3.5).
const (
	CodeAuthorizationPending = "authorization_pending"
	CodeSlowDown             = "slow_down"
	CodeExpiredToken         = "expired_token"
)

// Defaults of the device flow.
const (
	// DefaultDeviceCodeTTL is how long the user has to enter the code:
	// ten minutes, the life of the codes RFC 8628 §6.1 sizes its entropy
	// example for.
	DefaultDeviceCodeTTL = 10 * time.Minute
	// DefaultDevicePollInterval is the least time between two polls
	// (RFC 8628 §3.2 suggests 5 seconds).
	DefaultDevicePollInterval = 5 * time.Second
)

// userCodeAlphabet is the alphabet of user codes: upper-case consonants
// without vowels (no words), and so without the letters easily taken
// for digits or each other (RFC 8628 §6.1: "BCDFGHJKLMNPQRSTVWXZ").
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// userCodeLen is a user code's length: 20^8 ≈ 2^34.6 codes. With the
// verification page's limit on failed entries (deviceLimiter), one
// address can try about 110 codes in a code's ten minutes, which finds
// one of N live codes with probability 110·N / 2.56·10^10 (N = 1,000:
// 4·10^-6). The limit is per address, so an attacker with many
// addresses multiplies it; the code's entropy then bounds the attack,
// and a guessed code still needs the victim's device to poll for it and
// the attacker's sign-in to approve it (RFC 8628 §5.1).
const userCodeLen = 8

// newUserCode returns a random user code, normalised (no dash).
func newUserCode() string {
	b := make([]byte, 0, userCodeLen)
	var buf [32]byte
	for len(b) < userCodeLen {
		if _, err := rand.Read(buf[:]); err != nil {
			panic(err)
		}
		for _, x := range buf {
			// Rejection sampling: 240 is the largest multiple of 20 in a
			// byte, so every letter is equally likely.
			if x < 240 && len(b) < userCodeLen {
				b = append(b, userCodeAlphabet[x%20])
			}
		}
	}
	return string(b)
}

// displayUserCode shows a normalised user code as XXXX-XXXX.
func displayUserCode(code string) string {
	if len(code) != userCodeLen {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// normalizeUserCode reads a user code as the user typed it: case, dashes
// and spaces do not matter (RFC 8628 §6.1). It reports false for anything
// that cannot be a user code.
func normalizeUserCode(typed string) (string, bool) {
	if len(typed) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(typed) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
		case r < 0x80 && strings.IndexByte(userCodeAlphabet, byte(r)) >= 0:
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if b.Len() != userCodeLen {
		return "", false
	}
	return b.String(), true
}

// DeviceAuthorizationResponse is the device authorization response
// (RFC 8628 §3.2).
type DeviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// serveDeviceAuthorization is the device authorization endpoint (RFC 8628
// §3.1): the client authenticates as at the token endpoint (a public
// client by its client_id) and gets a device code and a user code.
func (h *Handler) serveDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, oerr := readForm(w, r)
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	c, oerr := h.authenticate(ctx, r, form, h.endpoint(PathDeviceAuthorization))
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	if !c.HasGrant(sigil.GrantDeviceCode) {
		writeError(w, r, h.Log, badRequest(CodeUnauthorizedClient, "the client may not use the device authorization grant"))
		return
	}
	if form.Has("authorization_details") {
		// Not stored with device authorizations: refused, never ignored,
		// so no client takes an unrestricted token for a restricted one.
		writeError(w, r, h.Log, errDeviceDetails)
		return
	}
	scopes, oerr := grantScope(c, form.Get("scope"))
	if oerr == nil {
		var aud []string
		if aud, oerr = h.grantAudience(c, form["resource"]); oerr == nil {
			oerr = h.startDevice(ctx, w, c, scopes, aud)
		}
	}
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
	}
}

// errDeviceDetails refuses authorization_details in the device flow,
// which does not carry them yet.
var errDeviceDetails = badRequest(CodeInvalidAuthorizationDetails, "the device authorization grant does not support authorization_details")

// startDevice stores a new device authorization and writes the response.
func (h *Handler) startDevice(ctx context.Context, w http.ResponseWriter, c *sigil.Client, scopes, aud []string) *Error {
	now := h.now()
	ttl, interval := h.deviceTTL(), h.devicePollInterval()
	var deviceCode, userCode string
	for attempt := 0; ; attempt++ {
		deviceCode, userCode = randomValue(), newUserCode()
		err := h.Store.CreateDevice(ctx, &sigil.DeviceAuthorization{
			DeviceCodeHash: h.keys.storedHash("device_code", deviceCode), UserCodeHash: h.keys.storedHash("user_code", userCode),
			ClientID: c.ID, Scopes: scopes, Audience: aud, CreatedAt: now, ExpiresAt: now.Add(ttl), Interval: interval,
		})
		if err == nil {
			break
		}
		// A user code taken by a live authorization: draw another.
		if !errors.Is(err, sigil.ErrConflict) || attempt == 3 {
			return internal(err)
		}
	}
	if err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: audit.DeviceAuthorizationStarted, Outcome: audit.Success, ClientID: c.ID,
		Scope: strings.Join(scopes, " "), Audience: aud,
	})); err != nil {
		h.Log.ErrorContext(ctx, "audit: device authorization not recorded", "err", err)
	}
	shown := displayUserCode(userCode)
	httpx.NoStore(w)
	httpx.WriteJSON(w, http.StatusOK, DeviceAuthorizationResponse{
		DeviceCode: deviceCode, UserCode: shown, VerificationURI: h.endpoint(PathDevice),
		VerificationURIComplete: h.endpoint(PathDevice) + "?" + url.Values{"user_code": {shown}}.Encode(),
		ExpiresIn:               int64(ttl / time.Second), Interval: int64(interval / time.Second),
	})
	return nil
}

func (h *Handler) deviceTTL() time.Duration {
	if h.DeviceCodeTTL > 0 {
		return h.DeviceCodeTTL
	}
	return DefaultDeviceCodeTTL
}

func (h *Handler) devicePollInterval() time.Duration {
	if h.DevicePollInterval > 0 {
		return h.DevicePollInterval
	}
	return DefaultDevicePollInterval
}

// deviceCode is the device code grant (RFC 8628 §3.4): the client polls
// with its device code and gets the tokens the authorization code grant
// would issue once the user approved.
type deviceCode struct{ h *Handler }

func (deviceCode) Type() string { return sigil.GrantDeviceCode }

func (g deviceCode) Exchange(ctx context.Context, req *TokenRequest) (*TokenResponse, *Error) {
	h, c := g.h, req.Client
	code := req.Form.Get("device_code")
	if code == "" {
		return nil, invalidRequest("device_code is required")
	}
	if req.Form.Has("authorization_details") {
		return nil, errDeviceDetails
	}
	// As for codes, the tokens' identity is recorded with the redemption
	// before anything is minted, so a replay finds what to revoke.
	id, oerr := h.newTokenID(ctx)
	if oerr != nil {
		return nil, oerr
	}
	family := newFamilyID()
	now := h.now()
	rec, outcome, err := h.Store.PollDevice(ctx, h.keys.storedHash("device_code", code), c.ID, sigil.DevicePoll{
		At: now, Redemption: sigil.Redemption{At: now, AccessJTI: id.jti, RefreshFamily: family},
	})
	switch {
	case errors.Is(err, sigil.ErrNotFound):
		// Absent, purged, or another client's: the same answer.
		return nil, badRequest(CodeInvalidGrant, "the device_code is invalid")
	case errors.Is(err, sigil.ErrReplay):
		// Redeemed once already: like a replayed code, revoke what it
		// issued (RFC 6749 §4.1.2), since one of the two holders of the
		// device code is not its client.
		h.deviceReplayed(ctx, c, rec)
		return nil, badRequest(CodeInvalidGrant, "the device_code was already used; the tokens issued from it are revoked")
	case err != nil:
		return nil, internal(err)
	}
	switch outcome {
	case sigil.DevicePollPending:
		return nil, badRequest(CodeAuthorizationPending, "the user has not decided yet")
	case sigil.DevicePollSlowDown:
		return nil, badRequest(CodeSlowDown, "polling too fast; the interval is now "+strconv.Itoa(int(rec.Interval/time.Second))+" seconds")
	case sigil.DevicePollDenied:
		return nil, badRequest(CodeAccessDenied, "the user denied the request")
	case sigil.DevicePollExpired:
		return nil, badRequest(CodeExpiredToken, "the device_code expired; start again")
	case sigil.DevicePollRedeemed:
	default:
		return nil, internal(errors.New("PollDevice: unknown outcome " + strconv.Itoa(int(outcome))))
	}
	if rec.ClientID != c.ID { // the store looked only among c's
		return nil, internal(errors.New("PollDevice returned another client's authorization"))
	}
	user, oerr := activeUser(h.Store.User(ctx, rec.UserID))
	if oerr != nil {
		return nil, oerr
	}
	return h.userTokens(ctx, userGrant{
		client: c, user: user, id: id, family: family, scopes: rec.Scopes, aud: rec.Audience,
		authTime: rec.AuthTime, acr: rec.ACR, amr: rec.AMR, proof: req.DPoP, sessionID: rec.SessionID,
	})
}

// deviceReplayed revokes what the redemption of a device code issued and
// records the replay.
func (h *Handler) deviceReplayed(ctx context.Context, c *sigil.Client, d *sigil.DeviceAuthorization) {
	if d == nil || d.Redemption == nil {
		return
	}
	h.codeReplayed(ctx, c, &sigil.AuthCode{UserID: d.UserID, Redemption: d.Redemption})
}
