package storetest

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	sigil "github.com/sigil-sts/sigil"
)

// ignoreStamps compares clients without the store-set timestamps.
var ignoreStamps = cmpopts.IgnoreFields(sigil.Client{}, "CreatedAt", "UpdatedAt")

// fullClient returns a client with every field set to a non-zero value.
// Claims hold only values that survive a JSON round trip unchanged
// (numbers are float64).
func fullClient(id string) *sigil.Client {
	return &sigil.Client{
		ID:            id,
		Name:          "Billing agent " + id,
		SecretHash:    []byte{0x00, 0x01, 0xfe, 0xff, 0x80},
		AuthMethod:    sigil.AuthPrivateKeyJWT,
		GrantTypes:    []string{sigil.GrantClientCredentials, "urn:ietf:params:oauth:grant-type:token-exchange"},
		Scopes:        []string{"invoices:read", "invoices:write", "ünïcode"},
		DefaultScopes: []string{"invoices:read"},
		Audiences:     []string{"https://api.example.com", "https://other.example.com/path?q=1"},
		RedirectURIs:  []string{"https://app.example.com/cb"},
		JWKS:          []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"x","y":"y"}]}`),
		Claims: map[string]any{
			"tenant": "acme",
			"level":  float64(3),
			"admin":  true,
			"groups": []any{"a", "b", float64(1.5)},
			"nested": map[string]any{"k": "v", "n": nil},
		},
		AccessTokenTTL:        90*time.Second + 123*time.Nanosecond,
		DPoPBound:             true,
		Introspect:            true,
		RequirePAR:            true,
		RegistrationTokenHash: []byte{0x00, 0x7f, 0x80, 0xff},
		RegisteredOpen:        true,
	}
}

func mustClient(t *testing.T, s sigil.Store, id string) *sigil.Client {
	t.Helper()
	c, err := s.Client(t.Context(), id)
	must(t, "Client("+id+")", err)
	return c
}

// checkStamp fails t unless ts was set by the store at about the current
// time (a minute of slack covers a database server's clock).
func checkStamp(t *testing.T, what string, ts, before, after time.Time) {
	t.Helper()
	if ts.Before(before.Add(-time.Minute)) || ts.After(after.Add(time.Minute)) {
		t.Errorf("%s = %v, want between %v and %v", what, ts, before, after)
	}
}

func testClientRoundTrip(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullClient("svc-1")
	before := time.Now()
	must(t, "CreateClient", s.CreateClient(ctx, want))
	after := time.Now()
	checkStamp(t, "CreatedAt", want.CreatedAt, before, after)
	if !want.UpdatedAt.Equal(want.CreatedAt) {
		t.Errorf("after create UpdatedAt = %v, CreatedAt = %v; want equal", want.UpdatedAt, want.CreatedAt)
	}
	got := mustClient(t, s, "svc-1")
	// The timestamps written back into want are the stored ones.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Client round trip (-want +got):\n%s", diff)
	}
}

func testClientZeroValue(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := &sigil.Client{ID: "bare"}
	must(t, "CreateClient", s.CreateClient(ctx, want))
	got := mustClient(t, s, "bare")
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Client round trip (-want +got):\n%s", diff)
	}
	if got.DPoPBound || got.Introspect || got.RequirePAR || got.RegistrationTokenHash != nil || got.RegisteredOpen ||
		got.AccessTokenTTL != 0 || len(got.Claims) != 0 {
		t.Errorf("zero client read back with values: %+v", got)
	}
}

// testClientCopies checks that the store keeps no reference to the
// caller's slices and maps, and hands out none of its own.
func testClientCopies(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	c := fullClient("svc")
	must(t, "CreateClient", s.CreateClient(ctx, c))
	want := fullClient("svc")
	c.Scopes[0] = "changed"
	c.SecretHash[0] = 0x42
	c.Claims["tenant"] = "changed"
	c.RegistrationTokenHash[0] = 0x42
	got := mustClient(t, s, "svc")
	got.Audiences[0] = "changed"
	got.Claims["admin"] = false
	got.RegistrationTokenHash[1] = 0x42
	if diff := cmp.Diff(want, mustClient(t, s, "svc"), ignoreStamps); diff != "" {
		t.Errorf("stored client changed through aliases (-want +got):\n%s", diff)
	}
}

func testClientConflict(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	first := fullClient("dup")
	must(t, "CreateClient", s.CreateClient(ctx, first))
	second := fullClient("dup")
	second.Name = "second"
	wantErr(t, "CreateClient(duplicate)", s.CreateClient(ctx, second), sigil.ErrConflict)
	if got := mustClient(t, s, "dup"); got.Name != first.Name {
		t.Errorf("after conflicting create Name = %q, want %q", got.Name, first.Name)
	}
}

func testClientNotFound(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	must(t, "CreateClient", s.CreateClient(ctx, fullClient("present")))
	c, err := s.Client(ctx, "absent")
	wantErr(t, "Client(absent)", err, sigil.ErrNotFound)
	if c != nil {
		t.Errorf("Client(absent) = %+v, want nil", c)
	}
	wantErr(t, "UpdateClient(absent)", s.UpdateClient(ctx, fullClient("absent")), sigil.ErrNotFound)
	wantErr(t, "DeleteClient(absent)", s.DeleteClient(ctx, "absent"), sigil.ErrNotFound)
	// A failed update must not have created the client.
	_, err = s.Client(ctx, "absent")
	wantErr(t, "Client(absent) after UpdateClient", err, sigil.ErrNotFound)
	// IDs are exact: no case folding, no prefix match.
	for _, id := range []string{"Present", "presen", "present ", ""} {
		_, err := s.Client(ctx, id)
		wantErr(t, fmt.Sprintf("Client(%q)", id), err, sigil.ErrNotFound)
	}
}

func testClientsOrder(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	got, err := s.Clients(ctx)
	must(t, "Clients(empty)", err)
	if len(got) != 0 {
		t.Fatalf("Clients on an empty store = %d clients, want 0", len(got))
	}
	// Byte order, as Go compares strings: upper case before lower case,
	// "A10" before "A9". A locale collation would order these differently.
	ids := []string{"b", "B", "a", "A9", "A10", "_x", "aa", "a-b", "é"}
	want := make([]*sigil.Client, 0, len(ids))
	for _, id := range ids {
		c := fullClient(id)
		must(t, "CreateClient", s.CreateClient(ctx, c))
		want = append(want, c)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].ID < want[j].ID })
	got, err = s.Clients(ctx)
	must(t, "Clients", err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Clients (-want +got):\n%s", diff)
	}
}

func testClientUpdate(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	orig := fullClient("svc")
	must(t, "CreateClient", s.CreateClient(ctx, orig))
	must(t, "CreateClient", s.CreateClient(ctx, fullClient("other")))

	upd := &sigil.Client{
		ID:             "svc",
		Name:           "renamed",
		SecretHash:     []byte{9, 9},
		AuthMethod:     sigil.AuthSecretBasic,
		GrantTypes:     []string{sigil.GrantClientCredentials},
		Scopes:         []string{"x"},
		DefaultScopes:  nil,
		Audiences:      []string{"https://new.example.com"},
		RedirectURIs:   nil,
		JWKS:           nil,
		Claims:         map[string]any{"only": "this"},
		AccessTokenTTL: time.Minute,
		DPoPBound:      false,
		Introspect:     false,
		RequirePAR:     false,
		// A dynamically registered client's registration token rotates.
		RegistrationTokenHash: []byte{1, 2, 3},
		RegisteredOpen:        false,
		// The caller's timestamps are ignored.
		CreatedAt: base,
		UpdatedAt: base,
	}
	before := time.Now()
	must(t, "UpdateClient", s.UpdateClient(ctx, upd))
	after := time.Now()
	if !upd.CreatedAt.Equal(orig.CreatedAt) {
		t.Errorf("after update CreatedAt = %v, want the original %v", upd.CreatedAt, orig.CreatedAt)
	}
	checkStamp(t, "UpdatedAt", upd.UpdatedAt, before, after)
	if upd.UpdatedAt.Before(orig.UpdatedAt) {
		t.Errorf("UpdatedAt went back from %v to %v", orig.UpdatedAt, upd.UpdatedAt)
	}
	got := mustClient(t, s, "svc")
	if diff := cmp.Diff(upd, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Client after update (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fullClient("other"), mustClient(t, s, "other"), ignoreStamps); diff != "" {
		t.Errorf("update changed another client (-want +got):\n%s", diff)
	}
}

func testClientDelete(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c"} {
		must(t, "CreateClient", s.CreateClient(ctx, fullClient(id)))
	}
	must(t, "DeleteClient(b)", s.DeleteClient(ctx, "b"))
	_, err := s.Client(ctx, "b")
	wantErr(t, "Client(b) after delete", err, sigil.ErrNotFound)
	wantErr(t, "DeleteClient(b) again", s.DeleteClient(ctx, "b"), sigil.ErrNotFound)
	cs, err := s.Clients(ctx)
	must(t, "Clients", err)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if diff := cmp.Diff([]string{"a", "c"}, ids); diff != "" {
		t.Errorf("Clients after delete (-want +got):\n%s", diff)
	}
	// The ID is free again.
	must(t, "CreateClient(b) again", s.CreateClient(ctx, fullClient("b")))
}

func testClientConcurrentCreate(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	const n = 32
	start := make(chan struct{})
	var wg sync.WaitGroup
	distinct := make([]error, n)
	same := make([]error, n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			distinct[i] = s.CreateClient(ctx, fullClient(fmt.Sprintf("c%02d", i)))
		}()
		go func() {
			defer wg.Done()
			<-start
			c := fullClient("contended")
			c.Name = fmt.Sprint(i)
			same[i] = s.CreateClient(ctx, c)
		}()
	}
	close(start)
	wg.Wait()

	for i, err := range distinct {
		if err != nil {
			t.Errorf("CreateClient(c%02d): %v", i, err)
		}
	}
	winner, wins := -1, 0
	for i, err := range same {
		switch {
		case err == nil:
			winner = i
			wins++
		default:
			wantErr(t, "CreateClient(contended)", err, sigil.ErrConflict)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent creates of one ID succeeded, want exactly 1", wins)
	}
	if got := mustClient(t, s, "contended"); got.Name != fmt.Sprint(winner) {
		t.Errorf("stored contended client Name = %q, want the winner's %q", got.Name, fmt.Sprint(winner))
	}
	cs, err := s.Clients(ctx)
	must(t, "Clients", err)
	if len(cs) != n+1 {
		t.Errorf("Clients = %d clients, want %d", len(cs), n+1)
	}
}

// testClientUpdateIf checks the compare-and-swap update: it succeeds on
// the version read with the registration token hash read, and is refused
// as a conflict, changing nothing (the change counter included), once
// either has moved.
func testClientUpdateIf(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	must(t, "CreateClient", s.CreateClient(ctx, fullClient("svc")))
	v1 := mustClient(t, s, "svc")

	a := *v1
	a.Name, a.RegistrationTokenHash, a.RegisteredOpen = "a", []byte{1}, false
	v := version(t, s)
	must(t, "UpdateClientIf(version read)", s.UpdateClientIf(ctx, &a, v1.RegistrationTokenHash))
	if version(t, s) == v {
		t.Error("UpdateClientIf did not move the change counter: caches would keep the old client")
	}
	if !a.UpdatedAt.After(v1.UpdatedAt) {
		t.Errorf("UpdatedAt %v did not move forward from %v", a.UpdatedAt, v1.UpdatedAt)
	}
	if diff := cmp.Diff(&a, mustClient(t, s, "svc")); diff != "" {
		t.Errorf("Client after UpdateClientIf (-want +got):\n%s", diff)
	}

	before := version(t, s)
	stale := *v1
	stale.Name = "stale"
	wantErr(t, "UpdateClientIf(stale version)", s.UpdateClientIf(ctx, &stale, v1.RegistrationTokenHash), sigil.ErrConflict)
	fresh := mustClient(t, s, "svc")
	fresh.Name = "old token"
	wantErr(t, "UpdateClientIf(old token hash)", s.UpdateClientIf(ctx, fresh, v1.RegistrationTokenHash), sigil.ErrConflict)
	wantErr(t, "UpdateClientIf(no token hash)", s.UpdateClientIf(ctx, fresh, nil), sigil.ErrConflict)
	if diff := cmp.Diff(&a, mustClient(t, s, "svc")); diff != "" {
		t.Errorf("a refused UpdateClientIf changed the client (-want +got):\n%s", diff)
	}
	if after := version(t, s); after != before {
		t.Errorf("refused updates moved the change counter from %d to %d", before, after)
	}
	wantErr(t, "UpdateClientIf(absent)", s.UpdateClientIf(ctx, fullClient("absent"), nil), sigil.ErrNotFound)

	// A plain update moves the version too: an UpdateClientIf from
	// before it is refused.
	b := mustClient(t, s, "svc")
	plain := *b
	must(t, "UpdateClient", s.UpdateClient(ctx, &plain))
	if !plain.UpdatedAt.After(b.UpdatedAt) {
		t.Errorf("UpdateClient left UpdatedAt at %v (was %v)", plain.UpdatedAt, b.UpdatedAt)
	}
	wantErr(t, "UpdateClientIf(before UpdateClient)", s.UpdateClientIf(ctx, b, b.RegistrationTokenHash), sigil.ErrConflict)

	// A client without a registration token (the operator's) matches an
	// empty hash.
	op := fullClient("op")
	op.RegistrationTokenHash = nil
	must(t, "CreateClient(op)", s.CreateClient(ctx, op))
	got := mustClient(t, s, "op")
	got.Name = "rotated"
	must(t, "UpdateClientIf(op, nil)", s.UpdateClientIf(ctx, got, nil))
	got2 := mustClient(t, s, "op")
	wantErr(t, "UpdateClientIf(op, a hash)", s.UpdateClientIf(ctx, got2, []byte{1}), sigil.ErrConflict)
}

// testClientUpdateIfConcurrent: of many updates of one version at once,
// exactly one succeeds and its fields are the ones stored.
func testClientUpdateIfConcurrent(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	must(t, "CreateClient", s.CreateClient(ctx, fullClient("svc")))
	read := mustClient(t, s, "svc")
	const n = 16
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *read
			c.Name = fmt.Sprint(i)
			c.RegistrationTokenHash = []byte{byte(i)}
			<-start
			errs[i] = s.UpdateClientIf(ctx, &c, read.RegistrationTokenHash)
		}()
	}
	close(start)
	wg.Wait()
	winner, wins := -1, 0
	for i, err := range errs {
		if err == nil {
			winner, wins = i, wins+1
			continue
		}
		wantErr(t, "UpdateClientIf(contended)", err, sigil.ErrConflict)
	}
	if wins != 1 {
		t.Fatalf("%d concurrent updates of one version succeeded, want exactly 1", wins)
	}
	if got := mustClient(t, s, "svc"); got.Name != fmt.Sprint(winner) {
		t.Errorf("stored Name = %q, want the winner's %q", got.Name, fmt.Sprint(winner))
	}
}
