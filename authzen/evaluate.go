package authzen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/policy"
	"github.com/sigil-sts/sigil/token"
)

// Decision is one decision on the wire: {"decision":…,"context":…}.
type Decision struct {
	Decision bool             `json:"decision"`
	Context  *DecisionContext `json:"context,omitempty"`
}

// DecisionContext is the context of a decision: the reasons and
// evaluation errors when the caller asked for them, and a batch item's
// error.
type DecisionContext struct {
	Reasons []policy.Reason    `json:"reasons,omitempty"`
	Errors  []policy.EvalError `json:"errors,omitempty"`
	Error   *errorBody         `json:"error,omitempty"`
}

// EvaluationsResponse is the Access Evaluations API response.
type EvaluationsResponse struct {
	Evaluations []Decision `json:"evaluations"`
}

func (h *Handler) serveEvaluation(w http.ResponseWriter, r *http.Request, caller *token.Claims) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	req, err := policy.DecodeRequest(body, h.Limits)
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	d, err := h.PDP.Evaluate(r.Context(), req)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	h.record(r.Context(), caller, &req, d)
	httpx.WriteJSON(w, http.StatusOK, wire(d, includeReasons(body)))
}

func (h *Handler) serveEvaluations(w http.ResponseWriter, r *http.Request, caller *token.Claims) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	b, err := policy.DecodeEvaluations(body, h.Limits)
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	resp, err := evaluateBatch(r.Context(), h.PDP, b, includeReasons(body), func(req *policy.Request, d policy.Decision) {
		h.record(r.Context(), caller, req, d)
	})
	if err != nil {
		h.failed(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
}

// evaluateBatch decides b on e. Items invalid once the defaults apply are
// denies carrying a 400 error (§7.2.1); the others' decisions go to
// decided as well. EvaluateBatch keeps request order, so decision i is
// item i.
func evaluateBatch(ctx context.Context, e policy.Engine, b *policy.EvaluationsRequest, reasons bool, decided func(*policy.Request, policy.Decision)) (*EvaluationsResponse, error) {
	reqs, errs := b.Requests()
	ds, err := policy.EvaluateBatch(ctx, e, b)
	if err != nil {
		return nil, err
	}
	resp := &EvaluationsResponse{Evaluations: make([]Decision, len(ds))}
	for i, d := range ds {
		if errs[i] != nil {
			resp.Evaluations[i] = Decision{Context: &DecisionContext{Error: &errorBody{http.StatusBadRequest, message(errs[i])}}}
			continue
		}
		if decided != nil {
			decided(&reqs[i], d)
		}
		resp.Evaluations[i] = wire(d, reasons)
	}
	return resp, nil
}

// Evaluate decides one request body on e as the API would and returns the
// response: a Decision for an access evaluation request, an
// *EvaluationsResponse for a body with an "evaluations" member. Reasons
// are included when the body asks or reasons is set. An invalid body is a
// *policy.RequestError. The CLI's policy eval and policy test use it.
func Evaluate(ctx context.Context, e policy.Engine, body []byte, reasons bool) (any, error) {
	reasons = reasons || includeReasons(body)
	if isBatch(body) {
		b, err := policy.DecodeEvaluations(body, policy.Limits{})
		if err != nil {
			return nil, err
		}
		return evaluateBatch(ctx, e, b, reasons, nil)
	}
	req, err := policy.DecodeRequest(body, policy.Limits{})
	if err != nil {
		return nil, err
	}
	d, err := e.Evaluate(ctx, req)
	if err != nil {
		return nil, err
	}
	return wire(d, reasons), nil
}

// isBatch reports whether body is an object with an "evaluations" member.
func isBatch(body []byte) bool {
	if !bytes.Contains(body, []byte(`"evaluations"`)) {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	_, ok := top["evaluations"]
	return ok
}

// readBody reads the JSON body within Limits.MaxBytes, answering 400 for
// a wrong content type, an unreadable or oversized body.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if !httpx.HasMediaType(r, "application/json") {
		writeError(w, r, http.StatusBadRequest, "Content-Type must be application/json")
		return nil, false
	}
	max := h.Limits.MaxBytes
	if max <= 0 {
		max = policy.DefaultMaxBytes
	}
	// One byte over the limit tells an oversized body from one that
	// exactly fits; MaxBytesReader also stops the server reading more.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || int64(len(body)) > max:
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("the request body is larger than %d bytes", max))
		return nil, false
	case err != nil:
		writeError(w, r, http.StatusBadRequest, "the request body could not be read")
		return nil, false
	}
	return body, true
}

func (h *Handler) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	var re *policy.RequestError
	if !errors.As(err, &re) {
		h.internal(w, r, "decode", err)
		return
	}
	writeError(w, r, http.StatusBadRequest, message(err))
}

// message is a RequestError's text for the caller, without the Go
// package prefix.
func message(err error) string {
	var re *policy.RequestError
	if !errors.As(err, &re) {
		return "invalid request"
	}
	if re.Field == "" {
		return "the request body " + re.Reason
	}
	return re.Field + " " + re.Reason
}

// failed answers an error from the PDP, whose decision is a deny: a
// RequestError is a 400, a done request context a 503, anything else (no
// policy set, an engine panic) a 500. A PEP proceeds on none of them.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, err error) {
	var re *policy.RequestError
	switch {
	case errors.As(err, &re):
		writeError(w, r, http.StatusBadRequest, message(err))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		writeError(w, r, http.StatusServiceUnavailable, "the decision took too long; retry")
	default:
		h.internal(w, r, "evaluation failed", err)
	}
}

// wire turns an engine decision into its JSON form, with its reasons and
// errors only when asked.
func wire(d policy.Decision, reasons bool) Decision {
	out := Decision{Decision: d.Allow}
	if reasons && (len(d.Reasons) > 0 || len(d.Errors) > 0) {
		out.Context = &DecisionContext{Reasons: d.Reasons, Errors: d.Errors}
	}
	return out
}

// includeReasons reports whether the body's top-level "options" object
// has "include_reasons": true. Member names match exactly, as elsewhere;
// the body has already been decoded within the limits, so this second
// look is bounded too.
func includeReasons(body []byte) bool {
	if !bytes.Contains(body, []byte(includeReasonsName)) {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	var opts map[string]json.RawMessage
	if json.Unmarshal(top["options"], &opts) != nil {
		return false
	}
	return string(opts[includeReasonsName]) == "true"
}
