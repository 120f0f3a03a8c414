package issuer_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/issuer"
	"github.com/sigil-sts/sigil/server"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// recorder is an http.RoundTripper that remembers, for the last request,
// the local address of the connection it went over (what the server sees
// as the peer) and the X-Request-Id response header.
type recorder struct {
	base http.RoundTripper

	mu               sync.Mutex
	local, requestID string
}

func (rt *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var local string
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { local = i.Conn.LocalAddr().String() }}
	resp, err := rt.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.local, rt.requestID = local, ""
	if resp != nil {
		rt.requestID = resp.Header.Get(httpx.RequestIDHeader)
	}
	return resp, err
}

func (rt *recorder) last() (local, requestID string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.local, rt.requestID
}

// oauthClient returns a context for golang.org/x/oauth2 whose requests go
// through a fresh recorder.
func oauthClient(t *testing.T) (context.Context, *recorder) {
	t.Helper()
	rt := &recorder{base: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(rt.base.(*http.Transport).CloseIdleConnections)
	hc := &http.Client{Transport: rt, Timeout: 10 * time.Second}
	return context.WithValue(context.Background(), oauth2.HTTPClient, hc), rt
}

// ccConfig is a client_credentials client for c on n, credentials in the
// Authorization header.
func ccConfig(n *testNode, c *admin.ClientInfo, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: n.url("/token"), Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
}

// records returns the decoded records q selects from n's store, after
// writing what n's audit writer still holds.
func records(t *testing.T, n *testNode, q sigil.AuditQuery) []*audit.Record {
	t.Helper()
	if err := n.srv.Audit.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	es, err := n.srv.Core.Store.QueryAudit(context.Background(), q)
	if err != nil {
		t.Fatalf("query audit %+v: %v", q, err)
	}
	out := make([]*audit.Record, 0, len(es))
	for _, e := range es {
		r, err := audit.Decode(e.Body)
		if err != nil {
			t.Fatalf("record %d: %v: %s", e.Seq, err, e.Body)
		}
		out = append(out, r)
	}
	return out
}

// durableRecords returns the decoded records q selects that n has made
// durable: in its audit journal or in the store (read in that order, so a
// record moving between them is seen), each once. Right after a response,
// its records must be there.
func durableRecords(t *testing.T, n *testNode, q sigil.AuditQuery) []*audit.Record {
	t.Helper()
	journaled, err := audit.ReadJournal(server.JournalPath(n.cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := n.srv.Core.Store.AuditEntries(context.Background(), 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range journaled {
		stored = append(stored, sigil.AuditEntry{Body: r.Body})
	}
	seen := map[string]bool{}
	var out []*audit.Record
	for _, e := range stored {
		if seen[string(e.Body)] || !audit.Matches(e, q) {
			continue
		}
		seen[string(e.Body)] = true
		r, err := audit.Decode(e.Body)
		if err != nil {
			t.Fatalf("record %d: %v: %s", e.Seq, err, e.Body)
		}
		out = append(out, r)
	}
	return out
}

// awaitRecord polls the store (queued records are written shortly after
// the response) until a record of event with the request id shows up.
func awaitRecord(t *testing.T, n *testNode, event audit.Event, requestID string) *audit.Record {
	t.Helper()
	if requestID == "" {
		t.Fatal("the response had no X-Request-Id")
	}
	var found *audit.Record
	eventually(t, 5*time.Second, string(event)+" record of request "+requestID, func() bool {
		for _, r := range records(t, n, sigil.AuditQuery{Event: string(event), Limit: 10_000}) {
			if r.RequestID == requestID {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// ignoreTime leaves the record time out of comparisons; it is checked
// separately.
var ignoreTime = cmpopts.IgnoreFields(audit.Record{}, "Time")

func jtiOf(t *testing.T, tok string) string {
	t.Helper()
	jti, _ := claims(t, tok)["jti"].(string)
	if jti == "" {
		t.Fatalf("token has no jti")
	}
	return jti
}

// TestAuditTrail drives a real node with real clients and checks the
// record each request leaves: issuance, refusals, inactive
// introspections and RFC 7009 revocations. It ends by reading every record
// written and checking that none holds a secret or a token.
func TestAuditTrail(t *testing.T) {
	n := startNode(t)
	st := n.srv.Core.Store
	node := n.cfg.Node()
	a := n.newClient(t, admin.ClientSpec{Scope: "read write", Audience: []string{"https://api.example.com"}})
	b := n.newClient(t, admin.ClientSpec{Scope: "read"})
	secrets := []string{a.ClientSecret, b.ClientSecret}
	var tokens []string

	t.Run("issued", func(t *testing.T) {
		ctx, rt := oauthClient(t)
		before := time.Now()
		tok, err := ccConfig(n, a, "read").Token(ctx)
		if err != nil {
			t.Fatalf("x/oauth2 Token: %v", err)
		}
		tokens = append(tokens, tok.AccessToken)
		jti := jtiOf(t, tok.AccessToken)
		local, rid := rt.last()
		// No polling: the response waited for the record to be durable.
		got := durableRecords(t, n, sigil.AuditQuery{JTI: jti})
		if len(got) != 1 {
			t.Fatalf("records with jti %s right after the response: %d, want exactly 1", jti, len(got))
		}
		want := &audit.Record{
			Node: node, Event: audit.TokenIssued, Outcome: audit.Success, ClientID: a.ClientID, Subject: a.ClientID,
			JTI: jti, Scope: "read", Audience: []string{"https://api.example.com"}, RequestID: rid, Source: local,
			Detail: map[string]string{"grant_type": "client_credentials"},
		}
		if diff := cmp.Diff(want, got[0], ignoreTime); diff != "" {
			t.Errorf("token.issued record (-want +got):\n%s", diff)
		}
		if !strings.HasPrefix(local, "127.0.0.1:") || rid == "" {
			t.Errorf("source %q, request id %q: want the client's loopback address and an id", local, rid)
		}
		if tm := got[0].Time; tm.Before(before.Add(-time.Second)) || tm.After(time.Now().Add(time.Second)) {
			t.Errorf("record time %v is not around the request (%v)", tm, before)
		}
		if all := records(t, n, sigil.AuditQuery{ClientID: a.ClientID, Event: string(audit.TokenIssued)}); len(all) != 1 {
			t.Errorf("%d token.issued records for the client, want 1", len(all))
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			request  func(ctx context.Context) error
			clientID string // as recorded
			grant    string
			reason   string
		}{
			{
				name: "wrong-secret",
				request: func(ctx context.Context) error {
					cc := ccConfig(n, a, "read")
					cc.ClientSecret = "wrong-secret-0123456789"
					_, err := cc.Token(ctx)
					return err
				},
				clientID: a.ClientID, grant: "client_credentials", reason: issuer.CodeInvalidClient,
			},
			{
				name: "unknown-client",
				request: func(ctx context.Context) error {
					cc := ccConfig(n, a)
					cc.ClientID = "no-such-client"
					_, err := cc.Token(ctx)
					return err
				},
				clientID: "no-such-client", grant: "client_credentials", reason: issuer.CodeInvalidClient,
			},
			{
				name: "invalid-scope",
				request: func(ctx context.Context) error {
					_, err := ccConfig(n, b, "admin").Token(ctx)
					return err
				},
				clientID: b.ClientID, grant: "client_credentials", reason: issuer.CodeInvalidScope,
			},
			{
				name: "unsupported-grant-type",
				request: func(ctx context.Context) error {
					hc := ctx.Value(oauth2.HTTPClient).(*http.Client)
					req, _ := http.NewRequest(http.MethodPost, n.url("/token"), strings.NewReader("grant_type=password&username=u&password=p"))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth(b.ClientID, b.ClientSecret)
					resp, err := hc.Do(req)
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					var e struct {
						Error string `json:"error"`
					}
					json.NewDecoder(resp.Body).Decode(&e)
					if resp.StatusCode != http.StatusBadRequest {
						return errors.New("status " + resp.Status)
					}
					return &oauth2.RetrieveError{ErrorCode: e.Error}
				},
				clientID: b.ClientID, grant: "password", reason: issuer.CodeUnsupportedGrantType,
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, rt := oauthClient(t)
				err := tc.request(ctx)
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != tc.reason {
					t.Fatalf("token request: %v, want error %s", err, tc.reason)
				}
				local, rid := rt.last()
				got := awaitRecord(t, n, audit.TokenRefused, rid)
				want := &audit.Record{
					Node: node, Event: audit.TokenRefused, Outcome: audit.Failure, Reason: tc.reason, ClientID: tc.clientID,
					RequestID: rid, Source: local, Detail: map[string]string{"grant_type": tc.grant},
				}
				if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
					t.Errorf("token.refused record (-want +got):\n%s", diff)
				}
			})
		}
		secrets = append(secrets, "wrong-secret-0123456789")
	})

	t.Run("introspected-inactive", func(t *testing.T) {
		tokA := n.token(t, a, url.Values{"scope": {"read"}})
		tokB := n.token(t, b, nil)
		tokens = append(tokens, tokA, tokB)
		jtiA := jtiOf(t, tokA)
		introspect := func(caller *admin.ClientInfo, tok string, wantActive bool) string {
			t.Helper()
			r := n.introspect(t, basic(caller), tok)
			if active, _ := r.json(t)["active"].(bool); r.status != http.StatusOK || active != wantActive {
				t.Fatalf("introspect: %d %s, want active %v", r.status, r.body, wantActive)
			}
			return r.header.Get(httpx.RequestIDHeader)
		}
		// An active answer first: it must leave no record. Records are
		// written in queue order, so once the later ones are in, so would
		// this one be.
		activeID := introspect(b, tokB, true)

		notPermitted := introspect(b, tokA, false)
		garbage := introspect(a, "not-a-token", false)
		if r := n.postForm(t, "/revoke", url.Values{"token": {tokA}}, basic(a)); r.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		revoked := introspect(a, tokA, false)

		for _, tc := range []struct {
			name, requestID string
			want            audit.Record
		}{
			{"not_permitted", notPermitted, audit.Record{ClientID: b.ClientID, JTI: jtiA, Subject: a.ClientID, Detail: map[string]string{"token_client_id": a.ClientID}}},
			{"invalid", garbage, audit.Record{ClientID: a.ClientID}},
			{"revoked", revoked, audit.Record{ClientID: a.ClientID, JTI: jtiA, Subject: a.ClientID, Detail: map[string]string{"token_client_id": a.ClientID}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := awaitRecord(t, n, audit.TokenInactive, tc.requestID)
				want := tc.want
				want.Node, want.Event, want.Outcome, want.Reason, want.RequestID = node, audit.TokenInactive, audit.Failure, tc.name, tc.requestID
				if diff := cmp.Diff(&want, got, ignoreTime, cmpopts.IgnoreFields(audit.Record{}, "Source")); diff != "" {
					t.Errorf("token.introspected_inactive record (-want +got):\n%s", diff)
				}
				if !strings.HasPrefix(got.Source, "127.0.0.1:") {
					t.Errorf("source %q", got.Source)
				}
			})
		}
		for _, r := range records(t, n, sigil.AuditQuery{Limit: 10_000}) {
			if r.RequestID == activeID {
				t.Errorf("an active introspection left a %s record", r.Event)
			}
		}
	})

	t.Run("revoked-rfc7009", func(t *testing.T) {
		tok := n.token(t, a, url.Values{"scope": {"write"}})
		tokens = append(tokens, tok)
		jti := jtiOf(t, tok)
		r := n.postForm(t, "/revoke", url.Values{"token": {tok}, "token_type_hint": {"access_token"}}, basic(a))
		if r.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		// No polling: the revocation response waits for its record.
		got := durableRecords(t, n, sigil.AuditQuery{JTI: jti, Event: string(audit.TokenRevoked)})
		if len(got) != 1 {
			t.Fatalf("%d token.revoked records for jti %s right after the response, want 1", len(got), jti)
		}
		want := &audit.Record{
			Node: node, Event: audit.TokenRevoked, Outcome: audit.Success, ClientID: a.ClientID, Subject: a.ClientID, JTI: jti,
			Scope: "write", Audience: []string{"https://api.example.com"}, RequestID: r.header.Get(httpx.RequestIDHeader),
			Detail: map[string]string{"by": "rfc7009"},
		}
		if diff := cmp.Diff(want, got[0], ignoreTime, cmpopts.IgnoreFields(audit.Record{}, "Source")); diff != "" {
			t.Errorf("token.revoked record (-want +got):\n%s", diff)
		}
		// An unknown token is 200 with nothing to revoke, and nothing to record.
		before := len(records(t, n, sigil.AuditQuery{Event: string(audit.TokenRevoked), Limit: 10_000}))
		if r := n.postForm(t, "/revoke", url.Values{"token": {"garbage"}}, basic(a)); r.status != http.StatusOK {
			t.Fatalf("revoke garbage: %d %s", r.status, r.body)
		}
		if after := len(records(t, n, sigil.AuditQuery{Event: string(audit.TokenRevoked), Limit: 10_000})); after != before {
			t.Errorf("revoking an invalid token wrote %d token.revoked records", after-before)
		}
	})

	t.Run("no-secrets-or-tokens", func(t *testing.T) {
		// A rotated secret too: the rotation record must not carry it.
		rot, err := n.admin().RotateSecret(context.Background(), b.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, rot.ClientSecret)
		es, err := st.AuditEntries(context.Background(), 0, 100_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) < 10 {
			t.Fatalf("only %d records", len(es))
		}
		for _, e := range es {
			body := string(e.Body)
			for _, s := range secrets {
				if strings.Contains(body, s) {
					t.Errorf("record %d holds a client secret: %s", e.Seq, body)
				}
			}
			for _, tok := range tokens {
				if strings.Contains(body, tok) || strings.Contains(body, strings.Split(tok, ".")[2]) {
					t.Errorf("record %d holds an access token: %s", e.Seq, body)
				}
			}
			if strings.Contains(body, "eyJ") {
				t.Errorf("record %d holds something that looks like a JWT: %s", e.Seq, body)
			}
		}
	})
}

// stubTrail is an audit.Appender that refuses every record, as an
// overloaded trail does: it stands in for a Writer whose queue stays full.
type stubTrail struct {
	err error

	mu      sync.Mutex
	offered []audit.Record
}

func (s *stubTrail) Append(_ context.Context, r audit.Record) error  { return s.offer(r) }
func (s *stubTrail) Enqueue(_ context.Context, r audit.Record) error { return s.offer(r) }

func (s *stubTrail) offer(r audit.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offered = append(s.offered, r)
	return s.err
}

// issuerOn serves a second issuer.Handler on n's store, keys and secrets,
// with trail as its audit trail and mods applied before Init, and returns
// its base URL. It has n's issuer identifier, so each accepts the other's
// tokens.
func issuerOn(t *testing.T, n *testNode, trail audit.Appender, mods ...func(*issuer.Handler)) string {
	t.Helper()
	var h http.Handler = http.NotFoundHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	iss := &issuer.Handler{
		Issuer: n.issuer, Store: n.srv.Core.Store, Cache: &issuer.Cache{Clients: n.srv.Core.Store, Users: n.srv.Core.Store},
		Keys: n.srv.Core.Keys, Secrets: n.srv.Core.Secrets, Log: quietLog(), Audit: trail,
		StateKey: n.srv.Core.StateKey, CheckPassword: func(string, string) (bool, string) { return false, "" },
	}
	for _, m := range mods {
		m(iss)
	}
	if err := iss.Init(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	iss.Mount(mux)
	h = httpx.WithRequestID(mux)
	return srv.URL
}

// wantUnavailable checks the answer of an endpoint whose trail is full:
// 503 temporarily_unavailable with Retry-After, and no token.
func wantUnavailable(t *testing.T, r reply) {
	t.Helper()
	wantError(t, r, http.StatusServiceUnavailable, issuer.CodeTemporarilyUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Errorf("no Retry-After header")
	}
	if m := r.json(t); m["access_token"] != nil {
		t.Errorf("a 503 handed out an access token: %s", r.body)
	}
}

// TestAuditBackpressureStub: when the trail refuses the issuance record,
// the token endpoint answers 503 and withholds the token; the revocation
// endpoint answers 503 too, but the revocation itself holds.
func TestAuditBackpressureStub(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	trail := &stubTrail{err: audit.ErrBackpressure}
	base := issuerOn(t, n, trail)
	post := func(path string, form url.Values) reply {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ClientID, c.ClientSecret)
		return n.do(t, req)
	}

	t.Run("token", func(t *testing.T) {
		wantUnavailable(t, post("/token", url.Values{"grant_type": {"client_credentials"}}))
		cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: base + "/token", AuthStyle: oauth2.AuthStyleInHeader}
		tok, err := cc.Token(context.Background())
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || re.ErrorCode != issuer.CodeTemporarilyUnavailable {
			t.Fatalf("x/oauth2 Token = %v, %v; want a 503 temporarily_unavailable", tok, err)
		}
		// A request shed because the trail is saturated is not offered to
		// the trail a second time as a refusal (that would make it wait
		// twice); the withheld token is logged instead.
		trail.mu.Lock()
		defer trail.mu.Unlock()
		var refusals int
		for _, r := range trail.offered {
			if r.Event == audit.TokenRefused && r.Reason == issuer.CodeTemporarilyUnavailable {
				refusals++
			}
		}
		if refusals != 0 {
			t.Errorf("%d refusals offered to a saturated trail, want 0", refusals)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		tok := n.token(t, c, nil) // from the node, whose trail works
		wantUnavailable(t, post("/revoke", url.Values{"token": {tok}}))
		if n.active(t, basic(c), tok) {
			t.Errorf("the revocation did not hold although its record could not be written")
		}
	})
}

// gatedStore holds every AppendAudit until gate is closed, signalling
// entered when one starts waiting: a store too slow for the load.
type gatedStore struct {
	sigil.AuditStore
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedStore) AppendAudit(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	return g.AuditStore.AppendAudit(ctx, mark, build)
}

// startGated starts w, whose store is gs, and returns what opens gs's
// gate; at the end of the test the gate opens and w closes.
func startGated(t *testing.T, w *audit.Writer, gs *gatedStore) (release func()) {
	t.Helper()
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	release = sync.OnceFunc(func() { close(gs.gate) })
	t.Cleanup(func() {
		release()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			t.Errorf("close writer: %v", err)
		}
	})
	return release
}

// TestAuditBackpressureWriter runs the real audit.Writer, with a queue of
// one, over a store that stalls: a request that finds the queue full waits
// EnqueueTimeout and gets 503 without a token; the requests already
// queued get their tokens once the store moves again, each with its
// record.
func TestAuditBackpressureWriter(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{Scope: "read"})
	gs := &gatedStore{AuditStore: n.srv.Core.Store, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	w := &audit.Writer{Store: gs, Node: "gated", QueueSize: 1, MaxBatch: 1, EnqueueTimeout: 300 * time.Millisecond, Log: quietLog()}
	release := startGated(t, w, gs)
	base := issuerOn(t, n, w)
	cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: base + "/token", AuthStyle: oauth2.AuthStyleInHeader}

	type result struct {
		tok string
		err error
	}
	results := make(chan result, 2)
	get := func() {
		tok, err := cc.Token(context.Background())
		if err != nil {
			results <- result{err: err}
			return
		}
		results <- result{tok: tok.AccessToken}
	}
	// The first request's record is taken by the writer, which stalls in
	// the store; the second's fills the queue.
	go get()
	select {
	case <-gs.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer never reached the store")
	}
	go get()
	eventually(t, 5*time.Second, "the second record to fill the queue", func() bool { return w.QueueLen() == 1 })

	// The third finds the queue full: 503 after the timeout, no token.
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, base+"/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	r := n.do(t, req)
	wantUnavailable(t, r)
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("503 after %v: the request did not wait EnqueueTimeout for room", took)
	}
	select {
	case res := <-results:
		t.Fatalf("a queued request finished while the store was stalled: %+v", res)
	default:
	}

	release()
	var jtis []string
	for range 2 {
		select {
		case res := <-results:
			if res.err != nil {
				t.Fatalf("queued request: %v", res.err)
			}
			jtis = append(jtis, jtiOf(t, res.tok))
		case <-time.After(10 * time.Second):
			t.Fatal("queued requests did not finish after the store moved again")
		}
	}
	issued := records(t, n, sigil.AuditQuery{ClientID: c.ClientID, Event: string(audit.TokenIssued)})
	var got []string
	for _, r := range issued {
		got = append(got, r.JTI)
	}
	if diff := cmp.Diff(jtis, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("token.issued records (-tokens handed out +records):\n%s", diff)
	}
	var body map[string]any
	json.Unmarshal(r.body, &body)
	if body["error_description"] == nil {
		t.Errorf("503 without a description: %s", r.body)
	}
}
