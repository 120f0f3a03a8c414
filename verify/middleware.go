package verify

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/token"
)

// Middleware authenticates every request with an access token: RFC 6750
// Bearer tokens and RFC 9449 DPoP-bound tokens with their proofs. It
// answers failures itself, with 401 (or 400, 403) and the
// WWW-Authenticate challenges those RFCs define, and passes the verified
// claims to the next handler in the request context (ClaimsFrom). It
// makes no network call per request: keys come from the Verifier's key
// source, proofs are checked locally.
type Middleware struct {
	// Verifier checks the tokens.
	Verifier *Verifier
	// DPoP checks proofs; nil refuses DPoP-bound tokens. Its Replay can be
	// a MemoryReplay: proofs need only be unique per resource server.
	DPoP *dpop.Checker
	// RequireDPoP refuses Bearer tokens: every token must be DPoP-bound.
	RequireDPoP bool
	// Realm, when set, is the realm of the challenges.
	Realm string
	// URI returns the target URI of r as clients address it, which DPoP
	// proofs name in htu; nil means the scheme (https when r.TLS is set),
	// Host and path of r. Set it behind a proxy that rewrites either.
	URI func(r *http.Request) string
}

type claimsKey struct{}

// ClaimsFrom returns the claims Middleware verified for the request.
func ClaimsFrom(ctx context.Context) (*token.Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*token.Claims)
	return c, ok
}

// authError is a refused request: the RFC 6750 §3.1 or RFC 9449 §7.1
// error code, the description, the status, and the scheme to challenge.
type authError struct {
	code, desc string
	status     int
	dpop       bool   // challenge with DPoP (a DPoP token or proof failed)
	nonce      string // a DPoP-Nonce to send
}

// Wrap returns next behind the token check.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, aerr := m.authenticate(r)
		if aerr != nil {
			m.refuse(w, aerr, "")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// RequireScope returns a handler that answers 403 insufficient_scope
// unless the claims Middleware verified grant every one of scopes. Put it
// inside Wrap.
func (m *Middleware) RequireScope(next http.Handler, scopes ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFrom(r.Context())
		if !ok {
			m.refuse(w, &authError{code: "invalid_token", desc: "no verified token", status: http.StatusUnauthorized}, "")
			return
		}
		have := c.Scopes()
		for _, s := range scopes {
			if !slices.Contains(have, s) {
				m.refuse(w, &authError{code: "insufficient_scope", desc: "the token lacks a required scope", status: http.StatusForbidden, dpop: c.BoundKey() != ""}, strings.Join(scopes, " "))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (m *Middleware) authenticate(r *http.Request) (*token.Claims, *authError) {
	auth := r.Header.Values("Authorization")
	if len(auth) == 0 {
		return nil, &authError{status: http.StatusUnauthorized}
	}
	if len(auth) > 1 {
		return nil, &authError{code: "invalid_request", desc: "more than one Authorization header", status: http.StatusBadRequest}
	}
	scheme, raw, ok := strings.Cut(auth[0], " ")
	raw = strings.TrimLeft(raw, " ")
	if !ok || raw == "" || strings.ContainsAny(raw, " ,") {
		return nil, &authError{code: "invalid_request", desc: "malformed Authorization header", status: http.StatusBadRequest}
	}
	isDPoP := strings.EqualFold(scheme, "DPoP")
	if !isDPoP && !strings.EqualFold(scheme, "Bearer") {
		return nil, &authError{status: http.StatusUnauthorized} // another scheme: just the challenge
	}
	proofs := r.Header.Values(dpop.HeaderName)
	if !isDPoP && m.RequireDPoP {
		return nil, &authError{code: "invalid_token", desc: "a DPoP-bound token is required", status: http.StatusUnauthorized, dpop: true}
	}
	c, err := m.Verifier.Verify(r.Context(), raw)
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			return nil, &authError{code: "invalid_token", desc: "the token could not be checked", status: http.StatusUnauthorized, dpop: isDPoP}
		}
		return nil, &authError{code: "invalid_token", desc: "the access token is invalid or expired", status: http.StatusUnauthorized, dpop: isDPoP}
	}
	jkt := c.BoundKey()
	if !isDPoP {
		if jkt != "" {
			// RFC 9449 §7.2: a bound token sent as a bearer token.
			return nil, &authError{code: "invalid_token", desc: "a DPoP-bound token must be sent with the DPoP scheme", status: http.StatusUnauthorized, dpop: true}
		}
		if len(proofs) > 0 {
			return nil, &authError{code: "invalid_request", desc: "a DPoP proof goes with the DPoP scheme", status: http.StatusBadRequest}
		}
		return c, nil
	}
	if jkt == "" {
		return nil, &authError{code: "invalid_token", desc: "the token is not DPoP-bound", status: http.StatusUnauthorized, dpop: true}
	}
	if m.DPoP == nil {
		return nil, &authError{code: "invalid_token", desc: "DPoP is not accepted here", status: http.StatusUnauthorized, dpop: true}
	}
	proof, err := m.DPoP.Check(r.Context(), dpop.Request{Header: proofs, Method: r.Method, URI: m.uri(r), AccessToken: raw})
	var derr *dpop.Error
	switch {
	case errors.As(err, &derr):
		aerr := &authError{code: derr.Code, desc: derr.Description, status: http.StatusUnauthorized, dpop: true}
		if derr.Code == dpop.CodeUseNonce && m.DPoP.Nonces != nil {
			aerr.nonce = m.DPoP.Nonces.Current(m.Verifier.now())
		}
		return nil, aerr
	case err != nil:
		return nil, &authError{code: "invalid_dpop_proof", desc: "the proof could not be checked", status: http.StatusUnauthorized, dpop: true}
	}
	if proof.JKT != jkt {
		return nil, &authError{code: "invalid_token", desc: "the proof key is not the key the token is bound to", status: http.StatusUnauthorized, dpop: true}
	}
	return c, nil
}

func (m *Middleware) uri(r *http.Request) string {
	if m.URI != nil {
		return m.URI(r)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// refuse writes the challenges: Bearer unless DPoP is required, and DPoP
// with its algorithms when a checker is set; the error goes on the scheme
// that failed.
func (m *Middleware) refuse(w http.ResponseWriter, e *authError, scope string) {
	h := w.Header()
	if !m.RequireDPoP {
		h.Add("WWW-Authenticate", m.challenge("Bearer", e, !e.dpop, scope))
	}
	if m.DPoP != nil || m.RequireDPoP {
		h.Add("WWW-Authenticate", m.challenge("DPoP", e, e.dpop || m.RequireDPoP, scope))
	}
	if e.nonce != "" {
		h.Set(dpop.NonceHeader, e.nonce)
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.status)
}

func (m *Middleware) challenge(scheme string, e *authError, withError bool, scope string) string {
	var params []string
	if m.Realm != "" {
		params = append(params, `realm="`+quote(m.Realm)+`"`)
	}
	if scheme == "DPoP" {
		params = append(params, `algs="`+strings.Join(dpop.Algorithms, " ")+`"`)
	}
	if withError && e.code != "" {
		params = append(params, `error="`+e.code+`"`, `error_description="`+quote(e.desc)+`"`)
		if scope != "" {
			params = append(params, `scope="`+quote(scope)+`"`)
		}
	}
	if len(params) == 0 {
		return scheme
	}
	return scheme + " " + strings.Join(params, ", ")
}

// quote drops the characters a quoted-string parameter cannot hold as is.
func quote(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}
