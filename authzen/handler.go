package authzen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/policy"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// Paths of the API, under the identifier's path.
const (
	PathEvaluation     = "/access/v1/evaluation"
	PathEvaluations    = "/access/v1/evaluations"
	PathSearch         = "/access/v1/search/"
	PathMetadata       = "/.well-known/authzen-configuration"
	DefaultScope       = "authzen:evaluate"
	requestIDHeader    = "X-Request-ID"
	includeReasonsName = "include_reasons"
)

// Handler serves the AuthZEN API. Set the fields, call Init, then Mount.
// It is safe for concurrent use.
type Handler struct {
	// PDP decides. Required.
	PDP *policy.PDP
	// Identifier is the PDP's identifier (policy_decision_point), the base
	// of every endpoint URL: the issuer URL. Required.
	Identifier string
	// Verifier checks callers' access tokens; its Audience should be
	// Identifier. Required.
	Verifier *verify.Verifier
	// DPoP checks proofs of DPoP-bound caller tokens; nil refuses them.
	DPoP *dpop.Checker
	// Active, when set, is asked about every verified caller token and
	// returns "" when it is still active, else why not (revoked, client
	// deleted): the issuer's ActiveAccessToken.
	Active func(ctx context.Context, c *token.Claims) (reason string, err error)
	// Scope is the scope a caller's token must carry. Default
	// DefaultScope.
	Scope string
	// Limits bound request bodies; zero fields take policy's defaults.
	Limits policy.Limits
	// Log receives internal failures; nil means slog.Default.
	Log *slog.Logger
	// Audit, when set, receives a record of every decision.
	Audit audit.Appender

	prefix   string
	metadata []byte
	auth     http.Handler // wraps the evaluation handlers
	mw       *verify.Middleware
}

// Metadata is the PDP metadata document. The search endpoints are left
// out: this PDP does not support them.
type Metadata struct {
	PolicyDecisionPoint       string `json:"policy_decision_point"`
	AccessEvaluationEndpoint  string `json:"access_evaluation_endpoint"`
	AccessEvaluationsEndpoint string `json:"access_evaluations_endpoint"`
}

// Init checks the fields and prepares the handler.
func (h *Handler) Init() error {
	if h.PDP == nil || h.Verifier == nil {
		return errors.New("authzen: PDP and Verifier are required")
	}
	u, err := url.Parse(h.Identifier)
	if err != nil || u.Scheme == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("authzen: identifier %q must be an absolute URL without query or fragment", h.Identifier)
	}
	h.Identifier = strings.TrimSuffix(h.Identifier, "/")
	h.prefix = strings.TrimSuffix(u.Path, "/")
	if h.Scope == "" {
		h.Scope = DefaultScope
	}
	if h.Log == nil {
		h.Log = slog.Default()
	}
	h.metadata, err = json.Marshal(Metadata{
		PolicyDecisionPoint:       h.Identifier,
		AccessEvaluationEndpoint:  h.Identifier + PathEvaluation,
		AccessEvaluationsEndpoint: h.Identifier + PathEvaluations,
	})
	if err != nil {
		return err
	}
	h.mw = &verify.Middleware{
		Verifier: h.Verifier,
		DPoP:     h.DPoP,
		// DPoP proofs name the URL the PEP was told, not what a proxy
		// made of it.
		URI: func(r *http.Request) string {
			return h.Identifier + strings.TrimPrefix(r.URL.Path, h.prefix)
		},
	}
	return nil
}

// Mount registers the endpoints on mux under the identifier's path; the
// metadata document sits at the well-known path with the identifier's
// path after it.
func (h *Handler) Mount(mux *http.ServeMux) {
	p := h.prefix
	mux.Handle("POST "+p+PathEvaluation, h.authenticated(h.serveEvaluation))
	mux.Handle("POST "+p+PathEvaluations, h.authenticated(h.serveEvaluations))
	mux.Handle("POST "+p+PathSearch+"{kind}", h.authenticated(h.serveSearch))
	mux.HandleFunc("GET "+PathMetadata+p, h.serveMetadata)
	for _, path := range []string{PathEvaluation, PathEvaluations} {
		mux.HandleFunc(p+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, r, http.StatusMethodNotAllowed, "use POST with a JSON body")
		})
	}
}

func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) {
	echoRequestID(w, r)
	w.Header().Set("Cache-Control", "max-age=3600")
	httpx.WriteRawJSON(w, http.StatusOK, h.metadata)
}

// serveSearch answers the search APIs, which this PDP does not support.
func (h *Handler) serveSearch(w http.ResponseWriter, r *http.Request, _ *token.Claims) {
	writeError(w, r, http.StatusNotImplemented, "the search APIs are not supported by this PDP; its metadata lists the endpoints it serves")
}

// authenticated runs next for callers whose token verified, is active and
// carries the scope; others get the RFC 6750 or RFC 9449 challenge.
func (h *Handler) authenticated(next func(http.ResponseWriter, *http.Request, *token.Claims)) http.Handler {
	inner := h.mw.RequireScope(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFrom(r.Context())
		next(w, r, c)
	}), h.Scope)
	outer := h.mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.Active != nil {
			c, _ := verify.ClaimsFrom(r.Context())
			why, err := h.Active(r.Context(), c)
			if err != nil {
				h.internal(w, r, "caller token check failed", err)
				return
			}
			if why != "" {
				// Security: a revoked caller is refused at once; the
				// reason stays in the log, the caller learns only that
				// its token is not active.
				h.Log.InfoContext(r.Context(), "authzen: inactive caller token", "client_id", c.ClientID, "jti", c.JTI, "reason", why)
				scheme := "Bearer"
				if c.BoundKey() != "" {
					scheme = "DPoP"
				}
				w.Header().Set("WWW-Authenticate", scheme+` error="invalid_token", error_description="the access token is not active"`)
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echoRequestID(w, r)
		outer.ServeHTTP(w, r)
	})
}

// errorBody is the JSON of an error response and of a batch item's error.
type errorBody struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// writeError writes {"error":{"status","message"}} with status.
func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, status, struct {
		Error errorBody `json:"error"`
	}{errorBody{status, msg}})
}

// internal logs err with the request id and answers 500 without details.
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	id := httpx.RequestID(r.Context())
	h.Log.ErrorContext(r.Context(), "authzen: "+what, "request_id", id, "err", err)
	writeError(w, r, http.StatusInternalServerError, "internal error (request id "+id+")")
}

// echoRequestID copies the PEP's X-Request-ID to the response, as the
// spec requires. It replaces the server's own id in the header, which
// the logs keep.
func echoRequestID(w http.ResponseWriter, r *http.Request) {
	if v := r.Header.Get(requestIDHeader); v != "" {
		w.Header().Set(requestIDHeader, v)
	}
}
