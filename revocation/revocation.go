// Package revocation revokes access tokens by jti and, following the
// audit trail's token exchange links, every token exchanged from them.
//
// Revoking a token writes a revocation record (introspection reads it) and
// sets its status list entry INVALID (resource servers read that). A token
// exchange (RFC 8693) records, with each token it issues, the jtis of the
// subject and actor tokens it came from (audit.Record.SubjectTokenJTI and
// ActorTokenJTI). Revoking a token therefore reaches the tokens an agent
// exchanged it for, and those a sub-agent exchanged them for in turn: a
// compromised link kills the chain below it.
//
// The links are read from the audit trail. A token exchange answers only
// once its record has committed, and checks its subject and actor tokens
// again then (issuer): a revocation that check does not see commits after
// the record, and one it sees withholds the token. Each level of the
// chain is revoked first and its exchanges read Settle later as well, a
// margin for exchanges that were between their two checks.
package revocation

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/statuslist"
)

// Store is what revoking needs of the store.
type Store interface {
	sigil.RevocationStore
	sigil.StatusListStore
	AuditQuerier
}

// DefaultSettle is Revoker.Settle's default: well beyond the audit
// journal's 100 ms batches and the moment between an exchange's check of
// its subject token and its record.
const DefaultSettle = 500 * time.Millisecond

// Revoker revokes tokens and the tokens exchanged from them.
type Revoker struct {
	Store Store
	// Flush, when set, writes this process's queued audit records to the
	// store (audit.Writer.Flush), so that its own latest exchanges are
	// found at once.
	Flush func(context.Context) error
	// Lifetime is how long a revocation record must last: longer than any
	// token it revokes is accepted (the longest access token lifetime,
	// plus the leeway, plus a margin for clock steps).
	Lifetime time.Duration
	// Settle is how long after revoking one level of a chain the next is
	// read from the audit trail; 0 means DefaultSettle.
	Settle time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Result says what a revocation reached.
type Result struct {
	// Exchanged holds the jtis of the tokens revoked because they were
	// exchanged, at any depth, from the revoked ones.
	Exchanged []string
	// IDTokens holds the jtis of the ID tokens revoked because they were
	// issued with a revoked access token (audit.DetailIDTokenJTI).
	IDTokens []string
	// StatusEntries counts the status list entries set INVALID.
	StatusEntries int
}

func (r *Revoker) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// JTIs revokes the tokens with these jtis: a record each and their status
// list entries. It returns how many entries it set. Empty jtis are
// skipped.
func (r *Revoker) JTIs(ctx context.Context, jtis []string) (int, error) {
	jtis = slices.DeleteFunc(slices.Clone(jtis), func(j string) bool { return j == "" })
	if len(jtis) == 0 {
		return 0, nil
	}
	now := r.now()
	for _, j := range jtis {
		rec := sigil.Revocation{Kind: sigil.RevokeJTI, Value: j, Cutoff: now, ExpiresAt: now.Add(r.Lifetime)}
		if err := r.Store.Revoke(ctx, rec); err != nil {
			return 0, fmt.Errorf("revocation: revoke %s: %w", j, err)
		}
	}
	n, err := statuslist.Invalidate(ctx, r.Store, jtis...)
	if err != nil {
		return n, fmt.Errorf("revocation: %w", err)
	}
	return n, nil
}

// Chain revokes every token exchanged, at any depth, from the tokens in
// roots, which the caller has revoked already (with JTIs, or by client or
// subject), and the ID tokens issued with any of them (and what was
// exchanged from those). It waits Settle before reading each level's exchanges, so it
// takes Settle per level of the chain below roots, and at least once.
func (r *Revoker) Chain(ctx context.Context, roots []string) (Result, error) {
	var res Result
	seen := make(map[string]bool, len(roots))
	level := make([]string, 0, len(roots))
	for _, j := range roots {
		if j != "" && !seen[j] {
			seen[j] = true
			level = append(level, j)
		}
	}
	settle := r.Settle
	if settle <= 0 {
		settle = DefaultSettle
	}
	// A token is exchanged while its subject token is live: the window
	// reaches back as far as any live token's issue.
	since := r.now().Add(-r.Lifetime)
	for len(level) > 0 {
		select {
		case <-time.After(settle):
		case <-ctx.Done():
			return res, ctx.Err()
		}
		if r.Flush != nil {
			if err := r.Flush(ctx); err != nil {
				return res, fmt.Errorf("revocation: flush the audit trail: %w", err)
			}
		}
		// The ID tokens issued with this level's access tokens go with
		// them, and so do the tokens exchanged from those.
		var ids []string
		for _, j := range level {
			id, err := r.idTokenOf(ctx, j, since, seen)
			if err != nil {
				return res, err
			}
			ids = append(ids, id...)
		}
		n, err := r.JTIs(ctx, ids)
		res.StatusEntries += n
		if err != nil {
			return res, err
		}
		res.IDTokens = append(res.IDTokens, ids...)
		var next []string
		for _, parent := range append(level, ids...) {
			children, err := r.exchangedFrom(ctx, parent, since, seen)
			if err != nil {
				return res, err
			}
			next = append(next, children...)
		}
		n, err = r.JTIs(ctx, next)
		res.StatusEntries += n
		if err != nil {
			return res, err
		}
		res.Exchanged = append(res.Exchanged, next...)
		level = next
	}
	return res, nil
}

// Exchanged reports whether the audit trail shows a token exchanged from
// the token jti, without waiting Settle: for a caller that knows no
// exchange from it can be under way, only past ones.
func (r *Revoker) Exchanged(ctx context.Context, jti string) (bool, error) {
	if r.Flush != nil {
		if err := r.Flush(ctx); err != nil {
			return false, fmt.Errorf("revocation: flush the audit trail: %w", err)
		}
	}
	children, err := r.exchangedFrom(ctx, jti, r.now().Add(-r.Lifetime), map[string]bool{})
	return len(children) > 0, err
}

// idTokenOf returns the jti of the ID token the audit trail shows issued
// with the access token jti since since, if there is one and it is not
// in seen, and adds it to seen.
func (r *Revoker) idTokenOf(ctx context.Context, jti string, since time.Time, seen map[string]bool) ([]string, error) {
	q := sigil.AuditQuery{JTI: jti, Event: string(audit.TokenIssued), Since: since}
	page, err := r.Store.QueryAudit(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("revocation: read the issuance of %s: %w", jti, err)
	}
	var out []string
	for _, e := range page {
		if !audit.Matches(e, q) {
			continue
		}
		rec, err := audit.Decode(e.Body)
		if err != nil {
			continue
		}
		if id := rec.Detail[audit.DetailIDTokenJTI]; id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// exchangedFrom returns the jtis, not in seen, of the tokens the audit
// trail shows issued since since by exchanging parent, and adds them to
// seen.
func (r *Revoker) exchangedFrom(ctx context.Context, parent string, since time.Time, seen map[string]bool) ([]string, error) {
	q := sigil.AuditQuery{ExchangedFrom: parent, Event: string(audit.TokenIssued), Since: since}
	out, err := JTIsOf(ctx, r.Store, q, seen)
	if err != nil {
		return nil, fmt.Errorf("revocation: read the tokens exchanged from %s: %w", parent, err)
	}
	return out, nil
}

// AuditQuerier is the store's audit query.
type AuditQuerier interface {
	QueryAudit(ctx context.Context, q sigil.AuditQuery) ([]sigil.AuditEntry, error)
}

// JTIsOf returns the jtis of every record q selects, page after page,
// that are not in seen, and adds them to seen. Each record is checked
// against its body (audit.Matches): the chain protects bodies, not the
// index columns the query used.
func JTIsOf(ctx context.Context, st AuditQuerier, q sigil.AuditQuery, seen map[string]bool) ([]string, error) {
	var out []string
	for {
		page, err := st.QueryAudit(ctx, q)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return out, nil
		}
		for _, e := range page {
			if !audit.Matches(e, q) {
				continue
			}
			ix, err := audit.IndexOf(e.Body)
			if err != nil || ix.JTI == "" || seen[ix.JTI] {
				continue
			}
			seen[ix.JTI] = true
			out = append(out, ix.JTI)
		}
		q.AfterSeq = page[len(page)-1].Seq
	}
}
