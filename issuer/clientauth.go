package issuer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/secret"
	"github.com/sigil-sts/sigil/token"
)

// assertionType is the client_assertion_type of private_key_jwt (RFC 7523
// §2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLife bounds how far in the future a client assertion's exp
// may lie: assertions are single-use and short-lived (OIDC Core §9).
const maxAssertionLife = 5 * time.Minute

// maxJTILength bounds a client assertion's jti.
const maxJTILength = 256

// dummyHash is compared against when the client is unknown, so the secret
// check costs the same either way. The lookup itself can differ (a known
// client is usually in memory, an unknown id always reaches the store), so
// response times may still hint at which ids exist; client ids are not
// secrets, and every answer is the same invalid_client.
var dummyHash = make([]byte, 32)

// authenticate identifies and authenticates the client of a request at
// endpoint (the URL the request was sent to). Exactly one method may be
// used (RFC 6749 §2.3), and it must be the one the client registered.
func (h *Handler) authenticate(ctx context.Context, r *http.Request, form url.Values, endpoint string) (*sigil.Client, *Error) {
	user, pass, basic := r.BasicAuth()
	hasHeader := r.Header.Get("Authorization") != ""
	post := form.Has("client_secret")
	jwt := form.Has("client_assertion") || form.Has("client_assertion_type")
	n := 0
	for _, used := range []bool{hasHeader, post, jwt} {
		if used {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, invalidRequest("use exactly one client authentication method")
	case hasHeader && !basic:
		return nil, invalidClient(true, errors.New("Authorization header is not Basic"))
	case basic:
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic.
		id, err1 := url.QueryUnescape(user)
		sec, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, invalidClient(true, errors.New("malformed Basic credentials"))
		}
		if form.Has("client_id") && form.Get("client_id") != id {
			return nil, invalidRequest("client_id does not match the Authorization header")
		}
		return h.checkSecret(ctx, id, secret.New(sec), sigil.AuthSecretBasic)
	case post:
		return h.checkSecret(ctx, form.Get("client_id"), secret.New(form.Get("client_secret")), sigil.AuthSecretPost)
	case jwt:
		return h.checkAssertion(ctx, form, endpoint)
	case form.Has("client_id"):
		return h.publicClient(ctx, form.Get("client_id"))
	}
	return nil, invalidClient(false, errors.New("no client authentication"))
}

// publicClient identifies a client that sent only its client_id: allowed
// for clients registered with the method none (RFC 6749 §2.1, public
// clients such as native apps), which rely on PKCE and rotation instead.
func (h *Handler) publicClient(ctx context.Context, id string) (*sigil.Client, *Error) {
	e, err := h.client(ctx, id)
	if errors.Is(err, sigil.ErrNotFound) {
		return nil, invalidClient(false, fmt.Errorf("unknown client %q", id))
	}
	if err != nil {
		return nil, internal(err)
	}
	if e.client.AuthMethod != sigil.AuthNone {
		return nil, invalidClient(false, fmt.Errorf("client %q is registered for %s and sent no credentials", id, e.client.AuthMethod))
	}
	return e.client, nil
}

func (h *Handler) checkSecret(ctx context.Context, id string, presented secret.Value, method string) (*sigil.Client, *Error) {
	basic := method == sigil.AuthSecretBasic
	if id == "" {
		return nil, invalidClient(basic, errors.New("no client_id"))
	}
	e, err := h.client(ctx, id)
	if errors.Is(err, sigil.ErrNotFound) {
		h.Secrets.Equal(dummyHash, presented)
		return nil, invalidClient(basic, fmt.Errorf("unknown client %q", id))
	}
	if err != nil {
		return nil, internal(err)
	}
	ok := h.Secrets.Equal(e.client.SecretHash, presented)
	if !ok {
		return nil, invalidClient(basic, fmt.Errorf("client %q: wrong secret", id))
	}
	if e.client.AuthMethod != method {
		return nil, invalidClient(basic, fmt.Errorf("client %q is registered for %s, not %s", id, e.client.AuthMethod, method))
	}
	return e.client, nil
}

// checkAssertion authenticates private_key_jwt (RFC 7523 §2.2, §3; OIDC
// Core §9): iss = sub = client_id, aud names this server, exp present and
// near, jti present and never seen before, signed by a key in the client's
// registered JWKS.
func (h *Handler) checkAssertion(ctx context.Context, form url.Values, endpoint string) (*sigil.Client, *Error) {
	if form.Get("client_assertion_type") != assertionType {
		return nil, invalidClient(false, errors.New("unsupported client_assertion_type"))
	}
	raw := form.Get("client_assertion")
	id := form.Get("client_id")
	unverified, err := peekSubject(raw)
	if err != nil {
		return nil, invalidClient(false, err)
	}
	if id == "" {
		id = unverified
	}
	if id == "" || id != unverified {
		return nil, invalidClient(false, errors.New("assertion sub does not match client_id"))
	}
	e, err := h.client(ctx, id)
	if errors.Is(err, sigil.ErrNotFound) {
		return nil, invalidClient(false, fmt.Errorf("unknown client %q", id))
	}
	if err != nil {
		return nil, internal(err)
	}
	if e.client.AuthMethod != sigil.AuthPrivateKeyJWT || e.err != nil || len(e.jwks) == 0 {
		return nil, invalidClient(false, fmt.Errorf("client %q is not registered for private_key_jwt with usable keys (%v)", id, e.err))
	}
	hdr, c, err := token.Parse(ctx, raw, e.jwks)
	if err != nil {
		return nil, invalidClient(false, err)
	}
	if hdr.Typ != "" && !token.TypeIs(hdr.Typ, "JWT") && !token.TypeIs(hdr.Typ, "client-authentication+jwt") {
		return nil, invalidClient(false, fmt.Errorf("assertion typ %q", hdr.Typ))
	}
	now := h.now()
	leeway := h.Leeway
	switch {
	case c.Issuer != id || c.Subject != id:
		return nil, invalidClient(false, errors.New("assertion iss and sub must both be the client_id"))
	case !(c.Audience.Contains(h.Issuer) || c.Audience.Contains(h.endpoint(PathToken)) || c.Audience.Contains(endpoint)):
		return nil, invalidClient(false, fmt.Errorf("assertion aud %q names neither the issuer nor the endpoint", []string(c.Audience)))
	case c.Expiry == 0 || c.JTI == "":
		return nil, invalidClient(false, errors.New("assertion needs exp and jti"))
	case len(c.JTI) > maxJTILength:
		// Bounds what an attacker with a valid key can put in the store.
		return nil, invalidClient(false, errors.New("assertion jti too long"))
	case !now.Before(c.Expiry.Time().Add(leeway)):
		return nil, invalidClient(false, errors.New("assertion expired"))
	case c.Expiry.Time().After(now.Add(maxAssertionLife + leeway)):
		return nil, invalidClient(false, fmt.Errorf("assertion exp is more than %s ahead", maxAssertionLife))
	case c.NotBefore != 0 && now.Add(leeway).Before(c.NotBefore.Time()):
		return nil, invalidClient(false, errors.New("assertion not yet valid"))
	}
	// The replay cache lives in the store: a jti is refused across restarts
	// and, on a shared database, across nodes.
	err = h.Store.MarkJTI(ctx, "client_assertion:"+id+":"+c.JTI, c.Expiry.Time().Add(leeway))
	if errors.Is(err, sigil.ErrReplay) {
		return nil, invalidClient(false, errors.New("assertion jti replayed"))
	}
	if err != nil {
		return nil, internal(err)
	}
	return e.client, nil
}

// peekSubject reads sub from an assertion without verifying it, only to
// find whose keys verify it. Nothing else is trusted before verification.
func peekSubject(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(raw) > token.MaxSize {
		return "", errors.New("client_assertion is not a compact JWS")
	}
	var c token.Claims
	if err := unmarshalSegment(parts[1], &c); err != nil {
		return "", fmt.Errorf("client_assertion claims: %w", err)
	}
	return c.Subject, nil
}
