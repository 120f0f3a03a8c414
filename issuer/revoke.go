package issuer

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// serveRevoke answers RFC 7009. A client revokes its own access tokens by
// presenting them; the revocation is stored by jti until the token expires.
// An invalid, expired or unknown token gets 200 (§2.2: nothing to do); a
// valid token of another client is refused.
//
// A token that may have been exchanged (RFC 8693: its client may exchange
// tokens, or it is addressed to a client, or the trail shows an exchange
// from it) takes the tokens exchanged from it along, at any depth, before
// the answer: that takes revocation.DefaultSettle at least. If the answer
// never comes the client retries, and the retry finishes the job.
func (h *Handler) serveRevoke(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(w, r)
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	caller, oerr := h.authenticate(r.Context(), r, form, h.endpoint(PathRevoke))
	if oerr != nil {
		writeError(w, r, h.Log, oerr)
		return
	}
	raw := form.Get("token")
	if raw == "" {
		writeError(w, r, h.Log, invalidRequest("token is required"))
		return
	}
	httpx.NoStore(w)
	c, err := h.verifier.Verify(r.Context(), raw)
	if err != nil {
		if hint := form.Get("token_type_hint"); hint == "" || hint == "refresh_token" || hint == "access_token" {
			h.revokeRefresh(w, r, caller, raw)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if c.ClientID != caller.ID {
		oerr := badRequest(CodeUnauthorizedClient, "the token was not issued to this client")
		if err := h.Audit.Enqueue(r.Context(), record(r.Context(), audit.Record{
			Event: audit.TokenRevoked, Outcome: audit.Failure, Reason: oerr.Code, ClientID: caller.ID, Subject: c.Subject,
			JTI: c.JTI, Detail: map[string]string{"by": "rfc7009", "token_client_id": c.ClientID},
		})); err != nil {
			h.Log.ErrorContext(r.Context(), "audit: refused revocation not recorded", "client_id", caller.ID, "err", err)
		}
		writeError(w, r, h.Log, oerr)
		return
	}
	// The record must outlive the last moment the verifier accepts the
	// token, exp + leeway; once purged, the token would read as active again.
	leeway := h.Leeway
	if leeway == 0 {
		leeway = verify.DefaultLeeway
	}
	rev := sigil.Revocation{Kind: sigil.RevokeJTI, Value: c.JTI, Cutoff: h.now(), ExpiresAt: c.Expiry.Time().Add(leeway + time.Minute)}
	if err := h.Store.Revoke(r.Context(), rev); err != nil {
		writeError(w, r, h.Log, internal(err))
		return
	}
	// Resource servers learn it through the token's status list entry.
	if _, err := statuslist.Invalidate(r.Context(), h.Store, c.JTI); err != nil {
		writeError(w, r, h.Log, internal(err))
		return
	}
	detail := map[string]string{"by": "rfc7009"}
	walk := exchangeable(caller, c)
	if !walk {
		// Nothing can be exchanging it now, but it may have been
		// exchanged while the client could (its grants changed since).
		if walk, err = h.revoker().Exchanged(r.Context(), c.JTI); err != nil {
			writeError(w, r, h.Log, internal(err))
			return
		}
	}
	if walk {
		// A token revoked here before had its chain walked then (the
		// record below is written after the walk), and nothing has been
		// exchanged from it since: a client repeating the request gets
		// its answer without the work.
		if walked, err := h.chainWalked(r.Context(), c.JTI); err != nil {
			writeError(w, r, h.Log, internal(err))
			return
		} else if walked {
			walk = false
			detail["chain"] = "revoked before"
		}
	}
	if walk {
		// Not cut short if the client hangs up: the retry that would
		// finish the job may never come.
		chain, err := h.revoker().Chain(context.WithoutCancel(r.Context()), []string{c.JTI})
		if err != nil {
			writeError(w, r, h.Log, internal(err))
			return
		}
		detail["exchanged"] = strconv.Itoa(len(chain.Exchanged))
	}
	err = h.Audit.Append(r.Context(), record(r.Context(), audit.Record{
		Event: audit.TokenRevoked, Outcome: audit.Success, ClientID: caller.ID, Subject: c.Subject, JTI: c.JTI,
		Scope: c.Scope, Audience: c.Audience, Detail: detail,
	}))
	if err != nil {
		// The revocation holds; the client retries (revocation is
		// idempotent) and the retry writes the record.
		h.Log.ErrorContext(r.Context(), "audit: revocation not recorded", "jti", c.JTI, "err", err)
		writeError(w, r, h.Log, unavailable())
		return
	}
	w.WriteHeader(http.StatusOK)
}

// chainWalked reports whether the audit trail holds a revocation of jti
// that walked its chain (here or through the admin API): one that
// recorded how many exchanged tokens it reached.
func (h *Handler) chainWalked(ctx context.Context, jti string) (bool, error) {
	if f, ok := h.Audit.(interface{ Flush(context.Context) error }); ok {
		if err := f.Flush(ctx); err != nil {
			return false, err
		}
	}
	q := sigil.AuditQuery{JTI: jti, Event: string(audit.TokenRevoked)}
	es, err := h.Store.QueryAudit(ctx, q)
	if err != nil {
		return false, err
	}
	for _, e := range es {
		if !audit.Matches(e, q) {
			continue
		}
		if rec, err := audit.Decode(e.Body); err == nil && rec.Outcome == audit.Success && rec.Detail["exchanged"] != "" {
			return true, nil
		}
	}
	return false, nil
}

// exchangeable reports whether a token of client c may be being
// exchanged for others now: c may use token exchange (with the token as
// subject or actor token), or the token is addressed to a client, which
// may. Exchanges made while c could are in the trail either way.
func exchangeable(c *sigil.Client, t *token.Claims) bool {
	if slices.Contains(c.GrantTypes, sigil.GrantTokenExchange) {
		return true
	}
	return slices.ContainsFunc(t.Audience, func(aud string) bool { return strings.HasPrefix(aud, ClientAudience("")) })
}

// revokeRefresh revokes a refresh token presented to the revocation
// endpoint: its whole family, and the access tokens issued with it
// (RFC 7009 §2.1 allows both). Anything else is already invalid: 200.
func (h *Handler) revokeRefresh(w http.ResponseWriter, r *http.Request, caller *sigil.Client, raw string) {
	ctx := r.Context()
	family, _, ok := h.keys.parseRefreshToken(raw)
	if !ok {
		w.WriteHeader(http.StatusOK)
		return
	}
	rt, err := h.Store.RefreshFamily(ctx, family)
	if errors.Is(err, sigil.ErrNotFound) {
		w.WriteHeader(http.StatusOK)
		return
	}
	if err != nil {
		writeError(w, r, h.Log, internal(err))
		return
	}
	if rt.ClientID != caller.ID {
		writeError(w, r, h.Log, badRequest(CodeUnauthorizedClient, "the token was not issued to this client"))
		return
	}
	h.families.forget(rt.ID)
	jtis, err := h.Store.RevokeRefreshFamily(ctx, rt.ID)
	if err != nil {
		writeError(w, r, h.Log, internal(err))
		return
	}
	h.revokeJTIs(ctx, jtis)
	if err := h.Audit.Append(ctx, record(ctx, audit.Record{
		Event: audit.TokenRevoked, Outcome: audit.Success, ClientID: caller.ID, Subject: rt.UserID,
		Scope: strings.Join(rt.Scopes, " "), Detail: map[string]string{"by": "rfc7009", "token_type": "refresh_token"},
	})); err != nil {
		h.Log.ErrorContext(ctx, "audit: revocation not recorded", "err", err)
		writeError(w, r, h.Log, unavailable())
		return
	}
	w.WriteHeader(http.StatusOK)
}
