package issuer

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/token"
)

// Grant is one grant type at the token endpoint. The shared phases (form
// parsing, client authentication, the grant-type check, writing the
// response) run before and after it.
type Grant interface {
	// Type is the grant_type value.
	Type() string
	// Exchange turns an authenticated request into a token response.
	Exchange(ctx context.Context, req *TokenRequest) (*TokenResponse, *Error)
}

// TokenRequest is a parsed token request from an authenticated client.
type TokenRequest struct {
	Client *sigil.Client
	Form   url.Values
	// DPoP is the request's checked proof; nil without one. Tokens issued
	// for the request are bound to its key.
	DPoP *dpop.Proof
}

// TokenResponse is the successful response (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
	// RefreshToken and IDToken come from the authorization code and
	// refresh token grants.
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	// IssuedTokenType is the type of a token exchange's token (RFC 8693
	// §2.2.1).
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	// AuthorizationDetails are the details the access token carries (RFC
	// 9396 §7).
	AuthorizationDetails authzdetails.List `json:"authorization_details,omitempty"`

	claims *token.Claims // what was issued, for the audit trail
	// subjectTokenJTI and actorTokenJTI name the tokens of this issuer a
	// token exchange issued from, for the audit trail: revoking either
	// revokes this one (the revocation package).
	subjectTokenJTI, actorTokenJTI string
	// idTokenJTI names the ID token issued with the access token, for
	// the audit record: revoking the access token revokes it too.
	idTokenJTI string
	// exchangedFrom names the same tokens for the check that follows the
	// record (exchangeRecorded).
	exchangedFrom []sigil.TokenRef
}

func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request) {
	resp, clientID, gt, oerr := h.token(w, r)
	if oerr != nil {
		// A device still waiting for its user polls every few seconds:
		// that is no refusal worth a record each time.
		if oerr.Code != CodeAuthorizationPending {
			h.refused(r.Context(), clientID, gt, oerr)
		}
		writeError(w, r, h.Log, oerr)
		return
	}
	if oerr = h.issued(r.Context(), gt, resp); oerr != nil {
		// The trail itself is saturated or failing: the withheld token is
		// logged by issued, and queueing a refusal record would only make
		// the shed request wait a second time.
		writeError(w, r, h.Log, oerr)
		return
	}
	if oerr = h.exchangeRecorded(r.Context(), resp); oerr != nil {
		if oerr.Code != CodeTemporarilyUnavailable {
			h.refused(r.Context(), clientID, gt, oerr)
		}
		writeError(w, r, h.Log, oerr)
		return
	}
	httpx.NoStore(w)
	httpx.WriteJSON(w, http.StatusOK, resp)
}

// token runs a token request through the shared phases and its grant. It
// also returns the client id (as presented, when authentication failed)
// and the grant type, for the audit trail.
func (h *Handler) token(w http.ResponseWriter, r *http.Request) (*TokenResponse, string, string, *Error) {
	if h.DPoPNonces != nil {
		// On every response, errors included (RFC 9449 §8.2).
		w.Header().Set(dpop.NonceHeader, h.DPoPNonces.Current(h.now()))
	}
	form, oerr := readForm(w, r)
	if oerr != nil {
		return nil, "", "", oerr
	}
	gt := form.Get("grant_type")
	g, ok := h.grants[gt]
	var client *sigil.Client
	if !(gt == GrantJWTBearer && ok && !presentsClient(r, form)) {
		// The JWT bearer grant may come without client authentication:
		// its assertion authenticates (RFC 7523 §3.1; see jwtBearer).
		if client, oerr = h.authenticate(r.Context(), r, form, h.endpoint(PathToken)); oerr != nil {
			return nil, presentedClientID(r, form), gt, oerr
		}
	}
	clientID := ""
	if client != nil {
		clientID = client.ID
	}
	switch {
	case gt == "":
		oerr = invalidRequest("grant_type is required")
	case !ok:
		oerr = badRequest(CodeUnsupportedGrantType, "grant_type "+gt+" is not supported")
	case gt != GrantJWTBearer && !client.HasGrant(gt):
		// The JWT bearer grant is allowed by the federation's mapping
		// rules, not by grant_types.
		oerr = badRequest(CodeUnauthorizedClient, "the client may not use grant_type "+gt)
	}
	if oerr != nil {
		return nil, clientID, gt, oerr
	}
	proof, oerr := h.checkDPoP(r, client)
	if oerr != nil {
		return nil, clientID, gt, oerr
	}
	resp, oerr := g.Exchange(r.Context(), &TokenRequest{Client: client, Form: form, DPoP: proof})
	return resp, clientID, gt, oerr
}

// presentsClient reports whether a request names or authenticates a
// client in any way.
func presentsClient(r *http.Request, form url.Values) bool {
	return r.Header.Get("Authorization") != "" || form.Has("client_id") || form.Has("client_secret") ||
		form.Has("client_assertion") || form.Has("client_assertion_type")
}

// checkDPoP checks the request's DPoP proof, if it has one, and refuses a
// request without one from a client registered dpop_bound_access_tokens.
// c is nil when the request authenticated no client (the JWT bearer
// grant, which checks its mapped client itself).
func (h *Handler) checkDPoP(r *http.Request, c *sigil.Client) (*dpop.Proof, *Error) {
	values := r.Header.Values(dpop.HeaderName)
	if len(values) == 0 {
		if c != nil && c.DPoPBound {
			return nil, badRequest(CodeInvalidDPoPProof, "this client must send a DPoP proof")
		}
		return nil, nil
	}
	proof, err := h.dpop.Check(r.Context(), dpop.Request{Header: values, Method: r.Method, URI: h.endpoint(PathToken)})
	var derr *dpop.Error
	switch {
	case errors.As(err, &derr):
		return nil, badRequest(derr.Code, derr.Description)
	case err != nil:
		return nil, internal(err)
	}
	return proof, nil
}

// maxAuditedClientID bounds an unauthenticated client id written to the
// audit trail.
const maxAuditedClientID = 256

// presentedClientID is the client id a request claimed, unauthenticated:
// for the audit record of a failed authentication.
func presentedClientID(r *http.Request, form url.Values) string {
	id := form.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(user); err == nil {
			id = u
		}
	}
	if len(id) > maxAuditedClientID {
		// On a character boundary: a cut through a multi-byte character
		// would leave invalid UTF-8.
		n := maxAuditedClientID
		for n > 0 && !utf8.RuneStart(id[n]) {
			n--
		}
		id = id[:n]
	}
	return id
}

// grantScope decides the granted scopes: the requested ones, each of which
// the client must be allowed (else invalid_scope), or the client's default
// scopes when none is requested (RFC 6749 §3.3).
func grantScope(c *sigil.Client, requested string) ([]string, *Error) {
	if strings.TrimSpace(requested) == "" {
		return c.DefaultScopes, nil
	}
	var out []string
	for _, s := range strings.Split(requested, " ") {
		if s == "" {
			continue
		}
		if !sigil.ValidScope(s) {
			return nil, badRequest(CodeInvalidScope, "malformed scope value")
		}
		if !slices.Contains(c.Scopes, s) {
			return nil, badRequest(CodeInvalidScope, "scope "+s+" is not allowed for this client")
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// grantAudience decides aud from the resource parameters (RFC 8707 §2):
// each must be an absolute URI without fragment and one of the client's
// audiences (else invalid_target). Without any, the client's first audience
// or, if it has none, the issuer.
func (h *Handler) grantAudience(c *sigil.Client, given []string) ([]string, *Error) {
	// RFC 6749 §3.2: a parameter sent without a value counts as omitted.
	resources := slices.DeleteFunc(slices.Clone(given), func(r string) bool { return r == "" })
	if len(resources) == 0 {
		if len(c.Audiences) > 0 {
			return c.Audiences[:1], nil
		}
		return []string{h.Issuer}, nil
	}
	var out []string
	for _, res := range resources {
		if !sigil.ValidResource(res) {
			return nil, badRequest(CodeInvalidTarget, "resource must be an absolute URI without a fragment")
		}
		if !c.HasAudience(res) {
			return nil, badRequest(CodeInvalidTarget, "resource "+res+" is not allowed for this client")
		}
		if !slices.Contains(out, res) {
			out = append(out, res)
		}
	}
	return out, nil
}
