package authzen

import (
	"context"
	"strings"

	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/policy"
	"github.com/sigil-sts/sigil/token"
)

// record enqueues the audit record of one decision; a trail that cannot
// take it is logged, not fatal: the decision has been made either way,
// and a deny must not turn into an error the PEP might mishandle.
func (h *Handler) record(ctx context.Context, caller *token.Claims, req *policy.Request, d policy.Decision) {
	if h.Audit == nil {
		return
	}
	outcome := audit.Failure
	if d.Allow {
		outcome = audit.Success
	}
	// The names come from the request body: each is cut to maxDetail
	// bytes so a caller cannot grow the trail by a body's size per record.
	detail := map[string]string{
		"subject_type":  clip(req.Subject.Type),
		"subject_id":    clip(req.Subject.ID),
		"action":        clip(req.Action.Name),
		"resource_type": clip(req.Resource.Type),
		"resource_id":   clip(req.Resource.ID),
	}
	if len(d.Reasons) > 0 {
		names := make([]string, 0, len(d.Reasons))
		for _, r := range d.Reasons {
			names = append(names, r.Policy+r.Message)
		}
		detail["policies"] = strings.Join(names, " ")
	}
	if len(d.Errors) > 0 {
		detail["errors"] = "true"
	}
	r := audit.Record{
		Event: audit.PolicyDecision, Outcome: outcome, Detail: detail,
		RequestID: httpx.RequestID(ctx), Source: httpx.Source(ctx),
	}
	if caller != nil {
		// The caller's jti goes in Detail, not JTI: the record is not
		// about that token, and JTI links records of a token's life.
		r.ClientID = caller.ClientID
		detail["caller_jti"] = caller.JTI
	}
	if err := h.Audit.Enqueue(ctx, r); err != nil {
		h.Log.WarnContext(ctx, "authzen: decision not audited", "err", err)
	}
}

// maxDetail bounds each request-supplied name in a decision record.
const maxDetail = 256

// clip cuts s to maxDetail bytes, on a rune boundary.
func clip(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	return strings.ToValidUTF8(s[:maxDetail], "")
}
