// Package storetest is the conformance suite every sigil.Store
// implementation runs: store/sqlite and store/postgres. Run checks the
// behaviour the interface doc comments in package sigil promise —
// sentinel errors, ordering, atomic steps, revocation cutoffs at whole
// seconds, replay detection under concurrency, users, one redemption per
// authorization code and one rotation per refresh token under
// concurrency, refresh family revocation, the key archive, one audit
// chain under concurrent appends and the audit queries, status-list
// leases, recycling and quarantine under concurrency, Version — against
// a fresh store per subtest, so an implementation passes or fails on
// behaviour alone. Chain and AppendConcurrently are exported for an
// implementation's own tests, such as appends through two Stores on one
// database.
//
// Implementations call it from an ordinary test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) sigil.Store {
//			s, err := sqlite.Open(t.Context(), t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite uses the real clock: it cannot reach into a store's notion of
// "now", so time-dependent checks use instants hours away from it.
package storetest
