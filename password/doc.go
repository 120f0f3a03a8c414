// Package password hashes and verifies user passwords with argon2id
// (RFC 9106) in the PHC string format
// ($argon2id$v=19$m=M,t=T,p=P$SALT$KEY, base64 without padding), with a
// 16-byte random salt and a 32-byte key.
//
// Client secrets are generated with full entropy and use a fast keyed hash
// (package secret); passwords are chosen by people, so each guess must be
// expensive. The default parameters (see Default: m=24 MiB, t=2, p=1) cost
// 30–40 ms of CPU per hash on the project's 2-core machine, measured
// with
//
//	go test -run '^$' -bench Hash ./password
//
// Verify compares in constant time. A stored hash made with other
// parameters still verifies, and Verify reports that a rehash is due: the
// next successful sign-in stores a fresh hash with today's parameters.
// Verify
// refuses stored hashes whose parameters or lengths are out of bounds, so
// a corrupted or planted hash cannot make it allocate gigabytes. VerifyDummy
// does the same work for a username that does not exist, so timing does
// not reveal which usernames do. Passwords are at most MaxLength bytes.
//
// At most GOMAXPROCS hashes run at once; further callers wait their turn,
// which bounds the memory that concurrent sign-ins hold.
package password
