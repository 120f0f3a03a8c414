// Package sigil holds the domain of the Sigil security token service: the
// types every part shares (clients, users, signing keys, revocations, the
// authorization state of the browser flow: sessions, codes, consents,
// refresh tokens and pushed requests) and the per-aggregate store
// interfaces that the storage implementations satisfy (ClientStore,
// UserStore, AuthzStore, KeyStore, RevocationStore, ReplayCache,
// AuditStore and StatusListStore, composed into Store).
//
// The package imports the standard library only. Protocol logic lives in
// the packages named for their concern (issuer, keys, token, verify, …);
// storage lives in store/sqlite and store/postgres, both checked by the
// conformance suite in store/storetest.
package sigil
