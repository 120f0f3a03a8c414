package storetest

import (
	"errors"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

// Run runs the conformance suite against the stores open returns. Each
// subtest calls open once and needs a new, empty store; Run closes it when
// the subtest ends and fails the subtest if Close fails. Subtests do not
// run in parallel with each other.
func Run(t *testing.T, open func(t *testing.T) sigil.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s sigil.Store)
	}{
		{"ClientRoundTrip", testClientRoundTrip},
		{"ClientZeroValue", testClientZeroValue},
		{"ClientCopies", testClientCopies},
		{"ClientConflict", testClientConflict},
		{"ClientNotFound", testClientNotFound},
		{"ClientsOrder", testClientsOrder},
		{"ClientUpdate", testClientUpdate},
		{"ClientUpdateIf", testClientUpdateIf},
		{"ClientUpdateIfConcurrent", testClientUpdateIfConcurrent},
		{"ClientDelete", testClientDelete},
		{"ClientConcurrentCreate", testClientConcurrentCreate},

		{"UserRoundTrip", testUserRoundTrip},
		{"UserCopies", testUserCopies},
		{"UserConflict", testUserConflict},
		{"UserNotFound", testUserNotFound},
		{"UsersOrder", testUsersOrder},
		{"UserUpdate", testUserUpdate},
		{"UserDelete", testUserDelete},

		{"Sessions", testSessions},
		{"DeleteSessions", testDeleteSessions},
		{"CodeCreate", testCodeCreate},
		{"RedeemCode", testRedeemCode},
		{"RedeemCodeExpired", testRedeemCodeExpired},
		{"RedeemCodeConcurrent", testRedeemCodeConcurrent},
		{"RedeemCodeOtherClient", testRedeemCodeOtherClient},
		{"Consents", testConsents},
		{"RefreshRoundTrip", testRefreshRoundTrip},
		{"RotateRefresh", testRotateRefresh},
		{"RotateRefreshRejects", testRotateRefreshRejects},
		{"RotateRefreshConcurrent", testRotateRefreshConcurrent},
		{"RotateRefreshManyFamilies", testRotateRefreshManyFamilies},
		{"RevokeRefreshFamily", testRevokeRefreshFamily},
		{"CreateRefreshRevokedFamily", testCreateRefreshRevokedFamily},
		{"CreateRefreshRevokeConcurrent", testCreateRefreshRevokeConcurrent},
		{"RevokeRefreshTokens", testRevokeRefreshTokens},
		{"PushedRequest", testPushedRequest},
		{"PushedRequestOtherClient", testPushedRequestOtherClient},
		{"PurgeAuthz", testPurgeAuthz},
		{"PurgeRevokedFamilies", testPurgeRevokedFamilies},
		{"DeviceCreate", testDeviceCreate},
		{"DeviceDecide", testDeviceDecide},
		{"DeviceDecideConcurrent", testDeviceDecideConcurrent},
		{"DevicePoll", testDevicePoll},
		{"DevicePollOutcomes", testDevicePollOutcomes},
		{"DevicePollOtherClient", testDevicePollOtherClient},
		{"DevicePollConcurrent", testDevicePollConcurrent},
		{"PurgeDevices", testPurgeDevices},

		{"KeyRoundTrip", testKeyRoundTrip},
		{"KeyConflict", testKeyConflict},
		{"KeysOrder", testKeysOrder},
		{"KeyPromote", testKeyPromote},
		{"KeyPromoteEdges", testKeyPromoteEdges},
		{"KeyDelete", testKeyDelete},
		{"KeyArchive", testKeyArchive},

		{"RevokeJTI", testRevokeJTI},
		{"RevokeClientCutoff", testRevokeCutoff(sigil.RevokeClient)},
		{"RevokeSubjectCutoff", testRevokeCutoff(sigil.RevokeSubject)},
		{"RevokeKindsDistinct", testRevokeKindsDistinct},
		{"RevokeEmptyNeverMatches", testRevokeEmptyNeverMatches},
		{"RevokeMovesForward", testRevokeMovesForward},
		{"PurgeRevocations", testPurgeRevocations},

		{"MarkJTI", testMarkJTI},
		{"MarkJTIExpired", testMarkJTIExpired},
		{"MarkJTIConcurrent", testMarkJTIConcurrent},
		{"PurgeReplay", testPurgeReplay},

		{"AuditEmpty", testAuditEmpty},
		{"AuditAppend", testAuditAppend},
		{"AuditBuildError", testAuditBuildError},
		{"AuditRejectsBrokenChain", testAuditRejectsBrokenChain},
		{"AuditConcurrent", testAuditConcurrent},
		{"AuditEntriesPaging", testAuditEntriesPaging},
		{"QueryAudit", testQueryAudit},
		{"QueryAuditDefaultLimit", testQueryAuditDefaultLimit},
		{"AuditCheckpoints", testAuditCheckpoints},
		{"AuditJournalMarks", testAuditJournalMarks},

		{"StatusListLease", testStatusListLease},
		{"StatusListLeaseConcurrent", testStatusListLeaseConcurrent},
		{"StatusListRecycle", testStatusListRecycle},
		{"StatusListQuarantine", testStatusListQuarantine},
		{"StatusListQuarantineAhead", testStatusListQuarantineAhead},
		{"StatusListQuarantineZero", testStatusListQuarantineZero},
		{"StatusListSetStatus", testStatusListSetStatus},
		{"StatusListOldGeneration", testStatusListOldGeneration},
		{"StatusListsOrder", testStatusListsOrder},
		{"StatusListVersion", testStatusListVersion},

		{"VersionStable", testVersionStable},
		{"VersionChanges", testVersionChanges},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

// base is a fixed instant with sub-second digits, microsecond precision so
// that every implementation stores it exactly.
var base = time.Date(2031, 5, 6, 7, 8, 9, 500_000_000, time.UTC)

// wantErr fails t unless err matches target with errors.Is.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", what, err, target)
	}
}

// must fails t at once if err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func version(t *testing.T, s sigil.Store) int64 {
	t.Helper()
	v, err := s.Version(t.Context())
	must(t, "Version", err)
	return v
}

func testVersionStable(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	must(t, "CreateClient", s.CreateClient(ctx, &sigil.Client{ID: "c1"}))
	v1 := version(t, s)
	// Reads are not changes.
	if _, err := s.Clients(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Keys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoked(ctx, sigil.TokenRef{JTI: "j", ClientID: "c1", Subject: "s", IssuedAt: base}); err != nil {
		t.Fatal(err)
	}
	if v2 := version(t, s); v2 != v1 {
		t.Errorf("Version moved from %d to %d without a write", v1, v2)
	}
	if v3 := version(t, s); v3 != v1 {
		t.Errorf("Version moved from %d to %d on a second read", v1, v3)
	}
}

func testVersionChanges(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	now := time.Now()
	writes := []struct {
		name string
		fn   func() error
	}{
		{"CreateClient", func() error { return s.CreateClient(ctx, &sigil.Client{ID: "c1"}) }},
		{"UpdateClient", func() error { return s.UpdateClient(ctx, &sigil.Client{ID: "c1", Name: "renamed"}) }},
		{"DeleteClient", func() error { return s.DeleteClient(ctx, "c1") }},
		{"CreateKey", func() error {
			return s.CreateKey(ctx, &sigil.SigningKey{ID: "k1", Alg: "ES256", State: sigil.KeyNext,
				Public: []byte{1}, Sealed: []byte{2}, CreatedAt: base})
		}},
		{"PromoteKey", func() error { return s.PromoteKey(ctx, "k1", base) }},
		{"DeleteKey", func() error { return s.DeleteKey(ctx, "k1") }},
		{"CreateUser", func() error { return s.CreateUser(ctx, &sigil.User{ID: "u1", Username: "alice"}) }},
		{"UpdateUser", func() error {
			return s.UpdateUser(ctx, &sigil.User{ID: "u1", Username: "alice", Disabled: true})
		}},
		{"DeleteUser", func() error { return s.DeleteUser(ctx, "u1") }},
	}
	for _, w := range writes {
		before := version(t, s)
		must(t, w.name, w.fn())
		if after := version(t, s); after == before {
			t.Errorf("Version stayed %d after %s", before, w.name)
		}
	}
	// Any client can write a revocation (RFC 7009), the replay cache is
	// written on every client assertion and the audit trail and status
	// lists on every token; moving the version there would let anyone
	// flush every cache.
	var list int64
	quiet := []struct {
		name string
		fn   func() error
	}{
		{"Revoke", func() error {
			return s.Revoke(ctx, sigil.Revocation{Kind: sigil.RevokeJTI, Value: "j1", Cutoff: now, ExpiresAt: now.Add(-time.Hour)})
		}},
		{"PurgeRevocations", func() error { _, err := s.PurgeRevocations(ctx, now); return err }},
		{"MarkJTI", func() error { return s.MarkJTI(ctx, "m1", now.Add(time.Hour)) }},
		{"PurgeReplay", func() error { _, err := s.PurgeReplay(ctx, now.Add(2*time.Hour)); return err }},
		{"AppendAudit", func() error { return s.AppendAudit(ctx, sigil.JournalMark{}, Chain([]byte(`{"event":"e"}`))) }},
		{"AppendAudit batch", func() error {
			return s.AppendAudit(ctx, sigil.JournalMark{}, Chain([]byte(`{"event":"e"}`), []byte(`{"event":"f"}`)))
		}},
		{"AddCheckpoint", func() error {
			return s.AddCheckpoint(ctx, sigil.AuditCheckpoint{Seq: 3, Hash: make([]byte, 32), JWS: "h.p.s", CreatedAt: base})
		}},
		{"LeaseStatusList", func() error {
			l, err := s.LeaseStatusList(ctx, statusLease("node", 16, base))
			list = l.ID
			return err
		}},
		{"SetTokenStatus", func() error {
			return s.SetTokenStatus(ctx, list, base, []uint32{1}, sigil.StatusInvalid)
		}},
	}
	for _, w := range quiet {
		before := version(t, s)
		must(t, w.name, w.fn())
		if after := version(t, s); after != before {
			t.Errorf("Version moved from %d to %d after %s", before, after, w.name)
		}
	}
}
