package admin_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/store/sqlite"
	"github.com/sigil-sts/sigil/token"
)

// TestRevokeClientCoversByIssueTime: a client revocation covers the
// tokens issued up to the end of its cutoff's second, judged by the
// token's issue time, as introspection judges them, not by the time of
// its audit record. A token issued just before the cutoff but recorded
// just after it, in the next second, is covered; one issued in the next
// second is not.
func TestRevokeClientCoversByIssueTime(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before := time.Date(2026, 5, 1, 12, 0, 0, 998_000_000, time.UTC)
	after := before.Add(5 * time.Millisecond) // 12:00:01.003
	now := before
	a := &statuslist.Allocator{Store: st, Holder: "n", BaseURI: "https://issuer.example/statuslists/", Size: 64,
		Retention: time.Hour, Now: func() time.Time { return now }}
	trail := audit.Direct{Store: st, Node: "n"}
	issue := func(at time.Time) statuslist.Entry {
		t.Helper()
		now = at
		e, err := a.Allocate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The record is stamped after signing: here 3 ms after iat.
		err = trail.Append(ctx, audit.Record{Event: audit.TokenIssued, Outcome: audit.Success, ClientID: "c1", Subject: "c1",
			JTI: token.NewStatusJTI(at, e.List, e.Index), Time: at.Add(3 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	covered, later := issue(before), issue(after)
	cutoff := before.Add(time.Millisecond)
	s := &admin.Service{Store: st, Audit: trail, RevokeSettle: time.Millisecond, Now: func() time.Time { return cutoff }}
	res, err := s.Revoke(ctx, "", "c1", "")
	if err != nil {
		t.Fatal(err)
	}
	_, entries, err := st.StatusList(ctx, int64(covered.List))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusEntries != 1 || len(entries) != 1 || entries[0].Index != covered.Index {
		t.Fatalf("revoke client: %d entries set, list entries %v; want only %d (issued before the cutoff), not %d (issued in the next second)",
			res.StatusEntries, entries, covered.Index, later.Index)
	}
}
