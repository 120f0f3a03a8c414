package issuer

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/internal/httpx"
)

// requestURIPrefix starts every request_uri (RFC 9126 §2.2).
const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// parTTL is a pushed request's life: the client redirects the user at once.
const parTTL = 60 * time.Second

// authorizeParamNames are the parameters the authorization endpoint reads.
var authorizeParamNames = []string{
	"response_type", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method",
	"response_mode", "prompt", "max_age", "login_hint", "resource", "authorization_details",
}

// maxPushedParams bounds a pushed request as stored: room for the
// largest authorization_details (authzdetails.MaxBytes, up to three
// times that form-encoded) beside the other parameters.
const maxPushedParams = 16 << 10

// servePAR is the pushed authorization request endpoint (RFC 9126): an
// authenticated client posts the authorization request's parameters and
// gets a one-time request_uri for the authorization endpoint.
func (h *Handler) servePAR(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, oerr := readForm(w, r)
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	c, oerr := h.authenticate(ctx, r, form, h.endpoint(PathPAR))
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	if form.Has("request_uri") {
		writeError(w, r, h.Log, invalidRequest("request_uri must not be pushed"))
		return
	}
	// Only the parameters the authorization endpoint reads are kept, so
	// nobody fills the store with anything else.
	params := url.Values{}
	for _, k := range authorizeParamNames {
		if v, ok := form[k]; ok {
			params[k] = v
		}
	}
	params.Set("client_id", c.ID)
	if len(params.Encode()) > maxPushedParams {
		writeError(w, r, h.Log, invalidRequest("the pushed request is too large"))
		return
	}
	if _, aerr := h.validateAuthorize(c, params); aerr != nil {
		writeError(w, r, h.Log, badRequest(aerr.Code, aerr.Description))
		return
	}
	value := randomValue()
	err := h.Store.PushRequest(ctx, &sigil.PushedRequest{
		Hash: h.keys.storedHash("request_uri", value), ClientID: c.ID, Params: params.Encode(), ExpiresAt: h.now().Add(parTTL),
	})
	if err != nil {
		writeError(w, r, h.Log, internal(err))
		return
	}
	httpx.NoStore(w)
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"request_uri": requestURIPrefix + value, "expires_in": int(parTTL.Seconds())})
}

// takePushed redeems a request_uri of client c: the pushed parameters,
// once.
func (h *Handler) takePushed(ctx context.Context, c *sigil.Client, requestURI string) (url.Values, *authError) {
	value, ok := strings.CutPrefix(requestURI, requestURIPrefix)
	if !ok || len(value) != 43 {
		return nil, &authError{Code: CodeInvalidRequestURI, Description: "request_uri was not issued by this server"}
	}
	p, err := h.Store.TakePushedRequest(ctx, h.keys.storedHash("request_uri", value), c.ID)
	if errors.Is(err, sigil.ErrNotFound) {
		return nil, &authError{Code: CodeInvalidRequestURI, Description: "request_uri is unknown, used or expired; push the request again"}
	}
	if err != nil {
		h.Log.ErrorContext(ctx, "authorize: pushed request lookup failed", "err", err)
		return nil, &authError{Code: CodeTemporarilyUnavailable, Description: "try again shortly"}
	}
	if p.ClientID != c.ID { // the store looked only among c's requests
		return nil, &authError{Code: CodeInvalidRequestURI, Description: "request_uri belongs to another client"}
	}
	params, perr := url.ParseQuery(p.Params)
	if perr != nil {
		return nil, &authError{Code: CodeInvalidRequestURI, Description: "the pushed request is unreadable"}
	}
	return params, nil
}
