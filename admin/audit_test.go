package admin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/server"
)

// traced is call that also returns the local address of the connection the
// request went over: the source the server should record.
func (n *node) traced(t *testing.T, method, path string, body any) (reply, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, n.adm+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	var local string
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { local = i.Conn.LocalAddr().String() },
	}))
	return do(t, req), local
}

// entries returns every record in the node's store, with the decoded
// record beside each.
// Records still on their way from the journal are written first.
func (n *node) entries(t *testing.T) ([]sigil.AuditEntry, []*audit.Record) {
	t.Helper()
	if err := n.srv.Audit.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	es, err := n.srv.Core.Store.AuditEntries(context.Background(), 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]*audit.Record, len(es))
	for i, e := range es {
		if rs[i], err = audit.Decode(e.Body); err != nil {
			t.Fatalf("record %d: %v", e.Seq, err)
		}
	}
	return es, rs
}

// byRequest returns the records written for one request id.
func (n *node) byRequest(t *testing.T, requestID string) []*audit.Record {
	t.Helper()
	if requestID == "" {
		t.Fatal("the response had no X-Request-Id")
	}
	// Durable when the answer came: in the journal, or already in the
	// store (read in that order, so a record moving between them is seen).
	journaled, err := audit.ReadJournal(server.JournalPath(n.cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := n.srv.Core.Store.AuditEntries(context.Background(), 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	durable := map[string]bool{} // distinct bodies: a record can be in both
	for _, b := range append(bodiesOf(journaled), entryBodies(stored)...) {
		if r, err := audit.Decode(b); err == nil && r.RequestID == requestID {
			durable[string(b)] = true
		}
	}
	_, rs := n.entries(t)
	var out []*audit.Record
	for _, r := range rs {
		if r.RequestID == requestID {
			out = append(out, r)
		}
	}
	if len(durable) < len(out) {
		t.Errorf("request %s: %d records, but only %d were in the journal or the store when the response came", requestID, len(out), len(durable))
	}
	return out
}

func bodiesOf(rs []audit.JournalRecord) [][]byte {
	var out [][]byte
	for _, r := range rs {
		out = append(out, r.Body)
	}
	return out
}

func entryBodies(es []sigil.AuditEntry) [][]byte {
	var out [][]byte
	for _, e := range es {
		out = append(out, e.Body)
	}
	return out
}

func jtiOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.JTI == "" {
		t.Fatalf("claims %s: %v", b, err)
	}
	return c.JTI
}

// TestAdminAuditEvents: every change through the admin API leaves exactly
// one record, committed before the response, naming what changed, the
// caller's address and the request id. A change that fails leaves none.
func TestAdminAuditEvents(t *testing.T) {
	n := startNode(t)
	node := n.cfg.Node()
	var clientID, kid, secret string

	for _, step := range []struct {
		name         string
		method, path func() string
		body         func() any
		status       int
		after        func(t *testing.T, r reply) // reads ids from the response
		want         func() audit.Record
		// first, when set, is the record the request writes before want.
		first func() audit.Record
	}{
		{
			name: "client-create", method: str("POST"), path: str("/admin/v1/clients"),
			body: func() any {
				return admin.ClientSpec{Name: "svc", Scope: "read write", Audience: []string{"https://api.example.com"}}
			},
			status: http.StatusCreated,
			after: func(t *testing.T, r reply) {
				var c admin.ClientInfo
				r.decode(t, &c)
				clientID, secret = c.ClientID, c.ClientSecret
			},
			want: func() audit.Record {
				return audit.Record{Event: audit.ClientCreated, ClientID: clientID, Scope: "read write", Audience: []string{"https://api.example.com"},
					Detail: map[string]string{"name": "svc", "auth_method": "client_secret_basic", "grant_types": "client_credentials"}}
			},
		},
		{
			name: "client-rotate-secret", method: str("POST"), path: func() string { return "/admin/v1/clients/" + clientID + "/rotate-secret" },
			status: http.StatusOK,
			after: func(t *testing.T, r reply) {
				var c admin.ClientInfo
				r.decode(t, &c)
				secret = c.ClientSecret
			},
			want: func() audit.Record { return audit.Record{Event: audit.ClientSecretRotated, ClientID: clientID} },
		},
		{
			name: "key-rotate", method: str("POST"), path: str("/admin/v1/keys/rotate"),
			body:   func() any { return map[string]string{"alg": "EdDSA"} },
			status: http.StatusCreated,
			after: func(t *testing.T, r reply) {
				var k admin.KeyInfo
				r.decode(t, &k)
				kid = k.KID
			},
			want: func() audit.Record {
				return audit.Record{Event: audit.KeyRotated, Detail: map[string]string{"kid": kid, "alg": "EdDSA"}}
			},
		},
		{
			name: "revoke-client", method: str("POST"), path: str("/admin/v1/revocations"),
			body:   func() any { return map[string]string{"client": clientID} },
			status: http.StatusNoContent,
			want: func() audit.Record {
				return audit.Record{Event: audit.TokenRevoked, ClientID: clientID, Detail: map[string]string{"by": "admin", "kind": string(sigil.RevokeClient), "status_entries": "0", "exchanged": "0"}}
			},
		},
		{
			name: "revoke-subject", method: str("POST"), path: str("/admin/v1/revocations"),
			body:   func() any { return map[string]string{"subject": "alice"} },
			status: http.StatusNoContent,
			want: func() audit.Record {
				return audit.Record{Event: audit.TokenRevoked, Subject: "alice", Detail: map[string]string{"by": "admin", "kind": string(sigil.RevokeSubject), "status_entries": "0", "sessions_ended": "0", "exchanged": "0"}}
			},
		},
		{
			name: "revoke-jti", method: str("POST"), path: str("/admin/v1/revocations"),
			body:   func() any { return map[string]string{"jti": "some-jti"} },
			status: http.StatusNoContent,
			want: func() audit.Record {
				return audit.Record{Event: audit.TokenRevoked, JTI: "some-jti", Detail: map[string]string{"by": "admin", "kind": string(sigil.RevokeJTI), "status_entries": "0", "exchanged": "0"}}
			},
		},
		{
			name: "client-delete", method: str("DELETE"), path: func() string { return "/admin/v1/clients/" + clientID },
			status: http.StatusNoContent,
			// Deleting a client revokes its tokens first.
			first: func() audit.Record {
				return audit.Record{Event: audit.TokenRevoked, ClientID: clientID, Detail: map[string]string{"by": "admin", "kind": string(sigil.RevokeClient), "status_entries": "0", "exchanged": "0"}}
			},
			want: func() audit.Record { return audit.Record{Event: audit.ClientDeleted, ClientID: clientID} },
		},
	} {
		t.Run(step.name, func(t *testing.T) {
			var body any
			if step.body != nil {
				body = step.body()
			}
			r, local := n.traced(t, step.method(), step.path(), body)
			if r.status != step.status {
				t.Fatalf("status %d, want %d: %s", r.status, step.status, r.body)
			}
			if step.after != nil {
				step.after(t, r)
			}
			rid := r.header.Get(httpx.RequestIDHeader)
			// No polling: the admin API answers once the record is durable.
			got := n.byRequest(t, rid)
			wants := []audit.Record{step.want()}
			if step.first != nil {
				wants = append([]audit.Record{step.first()}, wants...)
			}
			if len(got) != len(wants) {
				t.Fatalf("%d records for request %s, want %d: %+v", len(got), rid, len(wants), got)
			}
			for i, want := range wants {
				want.Node, want.Outcome, want.RequestID, want.Source = node, audit.Success, rid, local
				if diff := cmp.Diff(&want, got[i], cmpopts.IgnoreFields(audit.Record{}, "Time")); diff != "" {
					t.Errorf("record %d (-want +got):\n%s", i, diff)
				}
			}
			if !strings.HasPrefix(local, "127.0.0.1:") {
				t.Errorf("caller address %q", local)
			}
		})
	}

	t.Run("failures-leave-no-record", func(t *testing.T) {
		before, _ := n.entries(t)
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"DELETE", "/admin/v1/clients/nope", nil},
			{"POST", "/admin/v1/clients/nope/rotate-secret", nil},
			{"POST", "/admin/v1/clients", map[string]string{"client_name": ""}},
			{"POST", "/admin/v1/keys/rotate", map[string]string{"alg": "HS256"}},
			{"POST", "/admin/v1/revocations", map[string]string{}},
		} {
			if r, _ := n.traced(t, c.method, c.path, c.body); r.status < 400 {
				t.Errorf("%s %s: status %d, want an error", c.method, c.path, r.status)
			}
		}
		if r := n.callAs(t, "", "DELETE", "/admin/v1/clients/x", nil); r.status != http.StatusUnauthorized {
			t.Errorf("unauthenticated delete: %d", r.status)
		}
		if after, _ := n.entries(t); len(after) != len(before) {
			t.Errorf("failed requests wrote %d records", len(after)-len(before))
		}
	})

	t.Run("no-secrets", func(t *testing.T) {
		es, _ := n.entries(t)
		for _, e := range es {
			if strings.Contains(string(e.Body), secret) || strings.Contains(string(e.Body), n.token) {
				t.Errorf("record %d holds a secret: %s", e.Seq, e.Body)
			}
		}
	})
}

func str(s string) func() string { return func() string { return s } }

// auditPage is one element of GET /admin/v1/audit.
type auditPage []struct {
	Seq   int64  `json:"seq"`
	Prev  string `json:"prev"`
	Hash  string `json:"hash"`
	Event string `json:"event"`
	Time  string `json:"time"`
}

// TestAdminAuditQuery: GET /admin/v1/audit returns exactly the records
// each filter selects, oldest first, with their chain links; bad
// parameters are 400 and a missing admin token 401.
func TestAdminAuditQuery(t *testing.T) {
	n := startNode(t)
	create := func(name string) admin.ClientInfo {
		var c admin.ClientInfo
		r := n.call(t, "POST", "/admin/v1/clients", admin.ClientSpec{Name: name, Scope: "read"})
		if r.status != http.StatusCreated {
			t.Fatalf("create client: %d %s", r.status, r.body)
		}
		r.decode(t, &c)
		return c
	}
	token := func(c admin.ClientInfo) string {
		status, tok := n.tokenStatus(t, c.ClientID, c.ClientSecret)
		if status != http.StatusOK {
			t.Fatalf("token: %d", status)
		}
		return jtiOf(t, tok)
	}
	a, b := create("a"), create("b")
	jtiA1, _, jtiB := token(a), token(a), token(b)
	if r := n.call(t, "POST", "/admin/v1/keys/rotate", nil); r.status != http.StatusCreated {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	for _, body := range []map[string]string{{"subject": a.ClientID}, {"jti": jtiB}} {
		if r := n.call(t, "POST", "/admin/v1/revocations", body); r.status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
	}
	token(b)

	es, rs := n.entries(t)
	if len(es) < 9 {
		t.Fatalf("only %d records", len(es))
	}
	mid := rs[len(rs)/2].Time
	late := rs[len(rs)-2].Time
	rfc := func(tm time.Time) string { return tm.Format(time.RFC3339Nano) }
	inZone := mid.In(time.FixedZone("", 2*3600+30*60)).Format(time.RFC3339Nano)

	for _, tc := range []struct {
		name  string
		query url.Values
		keep  func(i int, r *audit.Record) bool
	}{
		{"all", nil, func(int, *audit.Record) bool { return true }},
		{"client", url.Values{"client": {a.ClientID}}, func(_ int, r *audit.Record) bool { return r.ClientID == a.ClientID }},
		{"subject", url.Values{"subject": {a.ClientID}}, func(_ int, r *audit.Record) bool { return r.Subject == a.ClientID }},
		{"jti", url.Values{"jti": {jtiA1}}, func(_ int, r *audit.Record) bool { return r.JTI == jtiA1 }},
		{"jti-revoked", url.Values{"jti": {jtiB}}, func(_ int, r *audit.Record) bool { return r.JTI == jtiB }},
		{"event", url.Values{"event": {"token.issued"}}, func(_ int, r *audit.Record) bool { return r.Event == audit.TokenIssued }},
		{"client-and-event", url.Values{"client": {b.ClientID}, "event": {"token.issued"}},
			func(_ int, r *audit.Record) bool { return r.ClientID == b.ClientID && r.Event == audit.TokenIssued }},
		{"since", url.Values{"since": {rfc(mid)}}, func(_ int, r *audit.Record) bool { return !r.Time.Before(mid) }},
		{"since-other-zone", url.Values{"since": {inZone}}, func(_ int, r *audit.Record) bool { return !r.Time.Before(mid) }},
		{"until", url.Values{"until": {rfc(mid)}}, func(_ int, r *audit.Record) bool { return r.Time.Before(mid) }},
		{"since-until", url.Values{"since": {rfc(mid)}, "until": {rfc(late)}},
			func(_ int, r *audit.Record) bool { return !r.Time.Before(mid) && r.Time.Before(late) }},
		{"since-future", url.Values{"since": {rfc(time.Now().Add(time.Hour))}}, func(int, *audit.Record) bool { return false }},
		{"after", url.Values{"after": {"3"}}, func(i int, _ *audit.Record) bool { return es[i].Seq > 3 }},
		{"limit", url.Values{"limit": {"2"}}, func(i int, _ *audit.Record) bool { return i < 2 }},
		{"after-limit", url.Values{"after": {"4"}, "limit": {"1"}}, func(i int, _ *audit.Record) bool { return es[i].Seq == 5 }},
		{"event-after", url.Values{"event": {"token.issued"}, "after": {strconv.FormatInt(es[len(es)/2].Seq, 10)}},
			func(i int, r *audit.Record) bool {
				return r.Event == audit.TokenIssued && es[i].Seq > es[len(es)/2].Seq
			}},
		{"no-match", url.Values{"client": {"nobody"}}, func(int, *audit.Record) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []int64
			for i, r := range rs {
				if tc.keep(i, r) {
					want = append(want, es[i].Seq)
				}
			}
			r := n.call(t, "GET", "/admin/v1/audit?"+tc.query.Encode(), nil)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if !strings.HasPrefix(string(r.body), "[") {
				t.Fatalf("body is not a JSON array: %s", r.body)
			}
			var page auditPage
			r.decode(t, &page)
			var got []int64
			for _, e := range page {
				got = append(got, e.Seq)
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			bySeq := map[int64]sigil.AuditEntry{}
			for _, e := range es {
				bySeq[e.Seq] = e
			}
			for _, e := range page {
				s := bySeq[e.Seq]
				r, _ := audit.Decode(s.Body)
				if e.Hash != hex.EncodeToString(s.Hash) || e.Prev != hex.EncodeToString(s.Prev) || e.Event != string(r.Event) || e.Time == "" {
					t.Errorf("record %d shown as %+v, stored as event %s hash %x prev %x", e.Seq, e, r.Event, s.Hash, s.Prev)
				}
			}
		})
	}

	t.Run("chain-links", func(t *testing.T) {
		var page auditPage
		n.call(t, "GET", "/admin/v1/audit", nil).decode(t, &page)
		if len(page) == 0 || page[0].Seq != 1 || page[0].Prev != strings.Repeat("0", 64) {
			t.Fatalf("first record %+v, want seq 1 with a zero prev", page)
		}
		for i := 1; i < len(page); i++ {
			if page[i].Seq != page[i-1].Seq+1 || page[i].Prev != page[i-1].Hash {
				t.Errorf("record %d does not link to record %d", page[i].Seq, page[i-1].Seq)
			}
		}
	})

	t.Run("bad-parameters", func(t *testing.T) {
		for _, q := range []string{
			"since=yesterday", "since=2026-01-02", "since=2026-01-02T15:04:05", "until=x", "until=1700000000",
			"after=-1", "after=x", "after=1.5", "limit=0", "limit=-3", "limit=10001", "limit=x",
		} {
			t.Run(q, func(t *testing.T) {
				wantAPIError(t, n.call(t, "GET", "/admin/v1/audit?"+q, nil), http.StatusBadRequest, "invalid_request")
			})
		}
	})

	t.Run("unauthorized", func(t *testing.T) {
		for _, authz := range []string{"", "Bearer wrong", "Basic " + n.token} {
			r := n.callAs(t, authz, "GET", "/admin/v1/audit?client="+a.ClientID, nil)
			wantAPIError(t, r, http.StatusUnauthorized, "unauthorized")
			if strings.Contains(string(r.body), a.ClientID) {
				t.Errorf("a 401 shows records: %s", r.body)
			}
		}
	})
}

// TestAdminAuditExchangedFrom: ?exchanged_from=JTI selects the issuance
// records of the tokens exchanged from that token, and nothing else.
func TestAdminAuditExchangedFrom(t *testing.T) {
	n := startNode(t)
	var c admin.ClientInfo
	r := n.call(t, "POST", "/admin/v1/clients", admin.ClientSpec{Name: "agent", Scope: "read", DefaultScope: "read",
		GrantTypes: []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"}})
	if r.status != http.StatusCreated {
		t.Fatalf("create client: %d %s", r.status, r.body)
	}
	r.decode(t, &c)
	status, own := n.tokenStatus(t, c.ClientID, c.ClientSecret)
	if status != http.StatusOK {
		t.Fatalf("token: %d", status)
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {own},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}
	req, _ := http.NewRequest(http.MethodPost, n.public+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	ex := do(t, req)
	var m struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(ex.body, &m); ex.status != http.StatusOK || err != nil {
		t.Fatalf("exchange: %d %s", ex.status, ex.body)
	}
	for _, tc := range []struct {
		jti  string
		want []string // jtis of the records
	}{
		{jtiOf(t, own), []string{jtiOf(t, m.AccessToken)}},
		{jtiOf(t, m.AccessToken), nil},
	} {
		r := n.call(t, "GET", "/admin/v1/audit?"+url.Values{"exchanged_from": {tc.jti}}.Encode(), nil)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var page []struct {
			Event           string `json:"event"`
			JTI             string `json:"jti"`
			SubjectTokenJTI string `json:"subject_token_jti"`
		}
		r.decode(t, &page)
		var got []string
		for _, e := range page {
			if e.Event != string(audit.TokenIssued) || e.SubjectTokenJTI != tc.jti {
				t.Errorf("exchanged_from=%s: record %+v", tc.jti, e)
			}
			got = append(got, e.JTI)
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("exchanged_from=%s (-want +got):\n%s", tc.jti, diff)
		}
	}
}
