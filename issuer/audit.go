package issuer

import (
	"context"
	"net/http"

	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/token"
)

// record fills the request's id and peer address into r.
func record(ctx context.Context, r audit.Record) audit.Record {
	r.RequestID = httpx.RequestID(ctx)
	r.Source = httpx.Source(ctx)
	return r
}

// issued records an issued token and returns once the record is durable
// (in the server's audit journal, or committed): the response waits for
// it, so no client ever holds a token the trail does not show. When the
// trail cannot take the record (its queue stayed full, or the store
// failed), the token is not handed out.
func (h *Handler) issued(ctx context.Context, grant string, resp *TokenResponse) *Error {
	c := resp.claims
	detail := map[string]string{"grant_type": grant}
	clientID := c.ClientID
	if clientID == "" {
		clientID = c.AuthorizedParty // an ID token from a token exchange
	}
	if jkt := c.BoundKey(); jkt != "" {
		detail["dpop_jkt"] = jkt
	}
	if resp.idTokenJTI != "" {
		detail[audit.DetailIDTokenJTI] = resp.idTokenJTI
	}
	err := h.Audit.Append(ctx, record(ctx, audit.Record{
		Event: audit.TokenIssued, Outcome: audit.Success, ClientID: clientID, Subject: c.Subject,
		Act: c.Act.Chain(), JTI: c.JTI, SubjectTokenJTI: resp.subjectTokenJTI, ActorTokenJTI: resp.actorTokenJTI,
		Scope: c.Scope, Audience: c.Audience, Detail: detail,
	}))
	if err != nil {
		h.Log.ErrorContext(ctx, "audit: issuance not recorded; token withheld", "client_id", c.ClientID, "jti", c.JTI, "err", err)
		return unavailable()
	}
	return nil
}

// unavailable is 503 with Retry-After: the server is shedding load, the
// client should try again shortly.
func unavailable() *Error {
	return &Error{Code: CodeTemporarilyUnavailable, Description: "the audit trail is saturated; retry shortly", Status: http.StatusServiceUnavailable}
}

// refused records a refused token request without waiting for the commit
// (with a journal, it is in the journal when this returns).
func (h *Handler) refused(ctx context.Context, clientID, grant string, e *Error) {
	detail := map[string]string{}
	if grant != "" {
		detail["grant_type"] = grant
	}
	err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: audit.TokenRefused, Outcome: audit.Failure, Reason: e.Code, ClientID: clientID, Detail: detail,
	}))
	if err != nil {
		h.Log.ErrorContext(ctx, "audit: refusal not recorded", "client_id", clientID, "reason", e.Code, "err", err)
	}
}

// inactiveIntrospection records an introspection that answered inactive,
// with the verified claims when there are any (never unverified ones).
func (h *Handler) inactiveIntrospection(ctx context.Context, caller string, reason string, c *token.Claims) {
	r := audit.Record{Event: audit.TokenInactive, Outcome: audit.Failure, Reason: reason, ClientID: caller}
	if c != nil {
		r.JTI, r.Subject = c.JTI, c.Subject
		r.Detail = map[string]string{"token_client_id": c.ClientID}
	}
	if err := h.Audit.Enqueue(ctx, record(ctx, r)); err != nil {
		h.Log.ErrorContext(ctx, "audit: inactive introspection not recorded", "client_id", caller, "err", err)
	}
}
