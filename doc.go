// Package sigil holds the domain of the Sigil security token service: the
// types every part shares (clients, signing keys, revocations) and the
// per-aggregate store interfaces that the storage implementations satisfy.
//
// The package imports the standard library only. Protocol logic lives in
// the packages named for their concern (issuer, keys, token, verify, …);
// storage lives in store/sqlite and, later, store/postgres, both checked by
// the conformance suite in store/storetest.
package sigil
