package issuer

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/internal/httpx"
)

// Error codes (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8707 §2).
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidScope         = "invalid_scope"
	CodeInvalidTarget        = "invalid_target"
	CodeServerError          = "server_error"
	// CodeTemporarilyUnavailable (RFC 6749 §4.1.2.1) is used at the token
	// endpoint too, with 503 and Retry-After, when the server sheds load.
	CodeTemporarilyUnavailable = "temporarily_unavailable"
	// CodeInvalidDPoPProof and CodeUseDPoPNonce are RFC 9449's (§5, §8).
	CodeInvalidDPoPProof = dpop.CodeInvalidProof
	CodeUseDPoPNonce     = dpop.CodeUseNonce
)

// Error is an OAuth error: the code and description go to the client, the
// cause only to the log.
type Error struct {
	Code        string
	Description string
	Status      int
	// Basic asks for a WWW-Authenticate: Basic challenge (RFC 6749 §5.2:
	// required when the client tried the Authorization header).
	Basic bool
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Code + ": " + e.Description + ": " + e.Cause.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

// internal wraps an unexpected failure; writeError logs the cause and
// shows only a request id.
func internal(cause error) *Error {
	if errors.Is(cause, sigil.ErrUnavailable) {
		// The database is down or restarting: the client retries, and the
		// node recovers without a restart once it is back.
		return &Error{Code: CodeTemporarilyUnavailable, Description: "the store is unavailable; retry shortly",
			Status: http.StatusServiceUnavailable, Cause: cause}
	}
	return &Error{Code: CodeServerError, Status: http.StatusInternalServerError, Cause: cause}
}

func badRequest(code, desc string) *Error {
	return &Error{Code: code, Description: desc, Status: http.StatusBadRequest}
}

func invalidRequest(desc string) *Error { return badRequest(CodeInvalidRequest, desc) }

// invalidClient is 401 per RFC 6749 §5.2. The description is deliberately
// the same for an unknown client and a wrong credential, so it cannot be
// used to find client ids.
func invalidClient(basic bool, cause error) *Error {
	return &Error{Code: CodeInvalidClient, Description: "client authentication failed", Status: http.StatusUnauthorized, Basic: basic, Cause: cause}
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
}

// writeError writes err as RFC 6749 §5.2 JSON. An error that is not an
// *Error becomes server_error with the request id, and is logged.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	httpx.NoStore(w)
	var e *Error
	if !errors.As(err, &e) || e.Code == CodeServerError {
		id := httpx.RequestID(r.Context())
		log.ErrorContext(r.Context(), "internal error", "path", r.URL.Path, "request_id", id, "err", err)
		httpx.WriteJSON(w, http.StatusInternalServerError, errorBody{Error: CodeServerError, Description: "internal error; quote the request id when reporting it", RequestID: id})
		return
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
		if e.Cause != nil {
			log.WarnContext(r.Context(), "unavailable", "path", r.URL.Path, "request_id", httpx.RequestID(r.Context()), "err", e.Cause)
		}
	}
	if e.Code == CodeInvalidDPoPProof || e.Code == CodeUseDPoPNonce {
		// RFC 9449 §7.1's challenge, also at the token endpoint, so a
		// client learns which proof algorithms are accepted.
		w.Header().Set("WWW-Authenticate", `DPoP error="`+e.Code+`", algs="`+strings.Join(dpop.Algorithms, " ")+`"`)
	}
	if e.Status == http.StatusUnauthorized {
		if e.Basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="sigil", charset="UTF-8"`)
		}
		log.InfoContext(r.Context(), "client authentication failed", "path", r.URL.Path, "request_id", httpx.RequestID(r.Context()), "err", e.Cause)
	}
	httpx.WriteJSON(w, e.Status, errorBody{Error: e.Code, Description: safeDescription(e.Description)})
}

// maxDescription bounds error_description.
const maxDescription = 200

// safeDescription keeps error_description within RFC 6749 §5.2's
// characters (%x20-21 / %x23-5B / %x5D-7E) and a bounded length:
// descriptions may quote request input (a grant type, a parameter name),
// which must not carry quotes, backslashes, control characters or
// non-ASCII into clients' logs.
func safeDescription(s string) string {
	out := make([]byte, 0, min(len(s), maxDescription))
	for i := 0; i < len(s) && len(out) < maxDescription; i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\'')
		case c >= 0x20 && c <= 0x7E:
			out = append(out, c)
		default:
			out = append(out, '?')
		}
	}
	return string(out)
}
