package audit_test

import (
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
)

// TestMatches: query results are judged by their bodies, never by the
// index columns a store keeps beside them.
func TestMatches(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	body, err := audit.Encode(&audit.Record{Time: at, Event: audit.TokenIssued, Outcome: audit.Success, ClientID: "c1", Subject: "s1", JTI: "j1"})
	if err != nil {
		t.Fatal(err)
	}
	// An index edited to claim another client does not make the record
	// match that client.
	e := sigil.AuditEntry{Seq: 1, Body: body, Index: sigil.AuditIndex{ClientID: "victim"}}
	for _, tt := range []struct {
		q    sigil.AuditQuery
		want bool
	}{
		{sigil.AuditQuery{}, true},
		{sigil.AuditQuery{ClientID: "c1", Subject: "s1", JTI: "j1", Event: string(audit.TokenIssued)}, true},
		{sigil.AuditQuery{ClientID: "victim"}, false},
		{sigil.AuditQuery{Subject: "s2"}, false},
		{sigil.AuditQuery{JTI: "j2"}, false},
		{sigil.AuditQuery{Event: string(audit.TokenRefused)}, false},
		{sigil.AuditQuery{Since: at}, true},
		{sigil.AuditQuery{Since: at.Add(time.Nanosecond)}, false},
		{sigil.AuditQuery{Until: at}, false},
		{sigil.AuditQuery{Until: at.Add(time.Second)}, true},
	} {
		if got := audit.Matches(e, tt.q); got != tt.want {
			t.Errorf("Matches(%+v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if audit.Matches(sigil.AuditEntry{Body: []byte("{not json")}, sigil.AuditQuery{}) {
		t.Error("an undecodable body matches")
	}
}
