package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sigil "github.com/sigil-sts/sigil"
)

// fullDevice returns a live, pending device authorization with every
// field a new one has set.
func fullDevice(hash string) *sigil.DeviceAuthorization {
	return &sigil.DeviceAuthorization{
		DeviceCodeHash: hash,
		UserCodeHash:   "u-" + hash,
		ClientID:       "tv",
		Scopes:         []string{"openid", "offline_access"},
		Audience:       []string{"https://api.example.com"},
		CreatedAt:      base,
		ExpiresAt:      fromNow(time.Hour),
		Interval:       5 * time.Second,
		State:          sigil.DevicePending,
	}
}

// approval is a decision allowing a device authorization as alice.
var approval = sigil.DeviceDecision{
	Approve: true, UserID: "alice", At: base.Add(time.Minute), AuthTime: base,
	AMR: []string{"pwd"}, ACR: "1", SessionID: "sess-1",
}

func createDevice(t *testing.T, s sigil.Store, d *sigil.DeviceAuthorization) {
	t.Helper()
	must(t, "CreateDevice("+d.DeviceCodeHash+")", s.CreateDevice(t.Context(), d))
}

func poll(t *testing.T, s sigil.Store, hash string, at time.Time, jti string) (*sigil.DeviceAuthorization, sigil.DevicePollOutcome) {
	t.Helper()
	d, oc, err := s.PollDevice(t.Context(), hash, "tv", sigil.DevicePoll{At: at, Redemption: sigil.Redemption{At: at, AccessJTI: jti, RefreshFamily: "fam-" + jti}})
	must(t, "PollDevice("+hash+")", err)
	return d, oc
}

func testDeviceCreate(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullDevice("d1")
	createDevice(t, s, want)
	got, err := s.DeviceByUserCode(ctx, "u-d1")
	must(t, "DeviceByUserCode", err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DeviceByUserCode (-want +got):\n%s", diff)
	}
	// Either hash taken is a conflict.
	dup := fullDevice("d1")
	dup.UserCodeHash = "u-other"
	wantErr(t, "CreateDevice(same device code)", s.CreateDevice(ctx, dup), sigil.ErrConflict)
	dup = fullDevice("d2")
	dup.UserCodeHash = "u-d1"
	wantErr(t, "CreateDevice(same user code)", s.CreateDevice(ctx, dup), sigil.ErrConflict)

	_, err = s.DeviceByUserCode(ctx, "u-absent")
	wantErr(t, "DeviceByUserCode(absent)", err, sigil.ErrNotFound)
	old := fullDevice("d-old")
	old.ExpiresAt = fromNow(-time.Minute)
	createDevice(t, s, old)
	_, err = s.DeviceByUserCode(ctx, "u-d-old")
	wantErr(t, "DeviceByUserCode(expired)", err, sigil.ErrNotFound)
	_, err = s.DecideDevice(ctx, "u-d-old", approval)
	wantErr(t, "DecideDevice(expired)", err, sigil.ErrNotFound)
}

func testDeviceDecide(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullDevice("d1")
	createDevice(t, s, want)
	got, err := s.DecideDevice(ctx, "u-d1", approval)
	must(t, "DecideDevice", err)
	want.State, want.UserID, want.DecidedAt, want.AuthTime = sigil.DeviceApproved, "alice", approval.At, approval.AuthTime
	want.AMR, want.ACR, want.SessionID = approval.AMR, approval.ACR, approval.SessionID
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecideDevice (-want +got):\n%s", diff)
	}
	// Decided: no longer found by its user code, nor decided again.
	_, err = s.DeviceByUserCode(ctx, "u-d1")
	wantErr(t, "DeviceByUserCode(decided)", err, sigil.ErrNotFound)
	_, err = s.DecideDevice(ctx, "u-d1", sigil.DeviceDecision{UserID: "mallory", At: base})
	wantErr(t, "DecideDevice(decided)", err, sigil.ErrNotFound)
	_, err = s.DecideDevice(ctx, "u-absent", approval)
	wantErr(t, "DecideDevice(absent)", err, sigil.ErrNotFound)

	createDevice(t, s, fullDevice("d2"))
	got, err = s.DecideDevice(ctx, "u-d2", sigil.DeviceDecision{UserID: "bob", At: base})
	must(t, "DecideDevice(deny)", err)
	if got.State != sigil.DeviceDenied || got.UserID != "bob" {
		t.Errorf("DecideDevice(deny) = %+v, want denied by bob", got)
	}
}

func testDeviceDecideConcurrent(t *testing.T, s sigil.Store) {
	createDevice(t, s, fullDevice("d1"))
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dec := approval
			dec.Approve, dec.UserID = i%2 == 0, fmt.Sprint("user", i)
			_, errs[i] = s.DecideDevice(t.Context(), "u-d1", dec)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantErr(t, fmt.Sprintf("DecideDevice #%d", i), err, sigil.ErrNotFound)
	}
	if ok != 1 {
		t.Errorf("%d concurrent decisions succeeded, want exactly 1", ok)
	}
}

func testDevicePoll(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	createDevice(t, s, fullDevice("d1"))
	t0 := base
	d, oc := poll(t, s, "d1", t0, "j0")
	if oc != sigil.DevicePollPending || !d.LastPoll.Equal(t0) || d.Interval != 5*time.Second {
		t.Fatalf("first poll: %v, %+v; want pending, last poll %v, interval 5s", oc, d, t0)
	}
	// Too soon: slow_down, and the interval grows by 5 s for good.
	d, oc = poll(t, s, "d1", t0.Add(2*time.Second), "j1")
	if oc != sigil.DevicePollSlowDown || d.Interval != 10*time.Second {
		t.Fatalf("early poll: %v, interval %s; want slow_down, 10s", oc, d.Interval)
	}
	// 6 s later would have been fine before; now it is early again.
	d, oc = poll(t, s, "d1", t0.Add(8*time.Second), "j2")
	if oc != sigil.DevicePollSlowDown || d.Interval != 15*time.Second {
		t.Fatalf("second early poll: %v, interval %s; want slow_down, 15s", oc, d.Interval)
	}
	d, oc = poll(t, s, "d1", t0.Add(23*time.Second), "j3")
	if oc != sigil.DevicePollPending || d.Interval != 15*time.Second {
		t.Fatalf("poll after the interval: %v, interval %s; want pending, 15s", oc, d.Interval)
	}
	// Approved: the next poll redeems, even if early, with its redemption.
	_, err := s.DecideDevice(ctx, "u-d1", approval)
	must(t, "DecideDevice", err)
	d, oc = poll(t, s, "d1", t0.Add(24*time.Second), "j4")
	if oc != sigil.DevicePollRedeemed || d.State != sigil.DeviceRedeemed || d.UserID != "alice" ||
		d.Redemption == nil || d.Redemption.AccessJTI != "j4" || d.Redemption.RefreshFamily != "fam-j4" {
		t.Fatalf("poll after approval: %v, %+v; want redeemed by j4 for alice", oc, d)
	}
	// Once only: a replay returns the first redemption.
	d, _, err = s.PollDevice(ctx, "d1", "tv", sigil.DevicePoll{At: t0.Add(time.Minute), Redemption: sigil.Redemption{AccessJTI: "j5"}})
	wantErr(t, "PollDevice(redeemed)", err, sigil.ErrReplay)
	if d == nil || d.Redemption == nil || d.Redemption.AccessJTI != "j4" {
		t.Errorf("PollDevice(redeemed) = %+v, want the first redemption (j4)", d)
	}
	_, _, err = s.PollDevice(ctx, "absent", "tv", sigil.DevicePoll{At: t0})
	wantErr(t, "PollDevice(absent)", err, sigil.ErrNotFound)
}

func testDevicePollOutcomes(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	createDevice(t, s, fullDevice("denied"))
	_, err := s.DecideDevice(ctx, "u-denied", sigil.DeviceDecision{UserID: "alice", At: base})
	must(t, "DecideDevice(deny)", err)
	for i := range 2 { // stays denied
		if _, oc := poll(t, s, "denied", base.Add(time.Duration(i)*time.Minute), "j"); oc != sigil.DevicePollDenied {
			t.Errorf("poll %d of a denied authorization: %v, want denied", i, oc)
		}
	}
	// Expired: expired_token, however often asked.
	old := fullDevice("expired")
	old.ExpiresAt = fromNow(-time.Second)
	createDevice(t, s, old)
	if _, oc := poll(t, s, "expired", base, "j"); oc != sigil.DevicePollExpired {
		t.Errorf("poll of an expired authorization: %v, want expired", oc)
	}
	if _, oc := poll(t, s, "expired", base.Add(time.Hour), "j"); oc != sigil.DevicePollExpired {
		t.Errorf("second poll of an expired authorization: %v, want expired", oc)
	}
}

func testDevicePollOtherClient(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	createDevice(t, s, fullDevice("d1"))
	_, err := s.DecideDevice(ctx, "u-d1", approval)
	must(t, "DecideDevice", err)
	_, _, err = s.PollDevice(ctx, "d1", "other", sigil.DevicePoll{At: base, Redemption: sigil.Redemption{AccessJTI: "stolen"}})
	wantErr(t, "PollDevice(other client)", err, sigil.ErrNotFound)
	// Untouched: its own client still redeems it, first poll, no slow_down.
	d, oc := poll(t, s, "d1", base, "mine")
	if oc != sigil.DevicePollRedeemed || d.Redemption.AccessJTI != "mine" {
		t.Errorf("poll by its client after another's: %v, %+v", oc, d)
	}
}

func testDevicePollConcurrent(t *testing.T, s sigil.Store) {
	createDevice(t, s, fullDevice("d1"))
	_, err := s.DecideDevice(t.Context(), "u-d1", approval)
	must(t, "DecideDevice", err)
	const n = 32
	outs := make([]sigil.DevicePollOutcome, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, outs[i], errs[i] = s.PollDevice(t.Context(), "d1", "tv", sigil.DevicePoll{At: base, Redemption: sigil.Redemption{AccessJTI: fmt.Sprint(i)}})
		}()
	}
	close(start)
	wg.Wait()
	redeemed := 0
	for i := range n {
		switch {
		case errs[i] == nil && outs[i] == sigil.DevicePollRedeemed:
			redeemed++
		default:
			wantErr(t, fmt.Sprintf("PollDevice #%d", i), errs[i], sigil.ErrReplay)
		}
	}
	if redeemed != 1 {
		t.Errorf("%d concurrent polls redeemed, want exactly 1", redeemed)
	}
}

func testPurgeDevices(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	now := fromNow(10 * time.Hour)
	// Kept an hour past their expiry, whatever their state.
	for hash, exp := range map[string]time.Time{"gone": now.Add(-90 * time.Minute), "kept": now.Add(-30 * time.Minute)} {
		d := fullDevice(hash)
		d.ExpiresAt = exp
		createDevice(t, s, d)
	}
	n, err := s.PurgeAuthz(ctx, now)
	must(t, "PurgeAuthz", err)
	if n != 1 {
		t.Errorf("PurgeAuthz = %d, want 1", n)
	}
	_, _, err = s.PollDevice(ctx, "gone", "tv", sigil.DevicePoll{At: base})
	wantErr(t, "PollDevice(gone) after purge", err, sigil.ErrNotFound)
	if _, oc := poll(t, s, "kept", base, "j"); oc != sigil.DevicePollPending {
		t.Errorf("poll of kept: %v, want pending (the store's clock has not reached its expiry)", oc)
	}
}
