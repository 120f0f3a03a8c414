package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// MaxLength is the longest password accepted, in bytes. Argon2 hashes any
// length, but a bound keeps a megabyte "password" from costing a megabyte
// of hashing input on every attempt, and no person types more.
const MaxLength = 1024

// ErrTooLong reports a password longer than MaxLength bytes.
var ErrTooLong = fmt.Errorf("password: longer than %d bytes", MaxLength)

// ErrMalformedHash reports a stored hash that is not an argon2id PHC string
// this package accepts: another algorithm or version, a damaged encoding,
// or parameters outside the bounds below. Errors that say which part is
// wrong wrap it.
var ErrMalformedHash = errors.New("password: stored hash is not an argon2id PHC string")

// Params are argon2id's cost parameters (RFC 9106 §3.1) and output sizes.
type Params struct {
	// Memory is the memory cost m in KiB.
	Memory uint32
	// Time is the number of passes t over the memory.
	Time uint32
	// Threads is the degree of parallelism p.
	Threads uint8
	// SaltLen is the length of the random salt in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived key (the hash) in bytes.
	KeyLen uint32
}

// Default returns the parameters Hash uses and Verify compares stored
// hashes with: m=24 MiB, t=2, p=1, a 16-byte salt and a 32-byte key.
//
// One hash costs 30–40 ms of CPU on the project's 2-core AMD EPYC machine
// (go test -run '^$' -bench Hash ./password: BenchmarkHash 30–33
// cpu-ms/op when the machine is otherwise idle, up to 40 beside other
// load; 24 MiB allocated per op): inside the 20–50 ms a sign-in can
// afford, and above OWASP's argon2id minimum (m=19 MiB, t=2, p=1: 25–30 ms
// here).
//
// Memory is the cost that grows with concurrency: every hash in progress
// holds m. m=24 MiB with t=2 was chosen over the OWASP alternative m=46 MiB
// with t=1 (37–41 ms here) and over m=64 MiB with t=1 (53–57 ms, over
// budget): about the same time per guess for an attacker, half the memory
// per sign-in, and more than one pass, as RFC 9106 §4 recommends whenever
// memory is well below its 2 GiB first choice. p=1 because parallel lanes
// shorten one hash's latency without lowering its CPU cost, and on two
// cores concurrent sign-ins already use both.
func Default() Params {
	return Params{Memory: 24 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds on the parameters of a hash this package computes or verifies. A
// hostile or corrupted stored hash must not make Verify allocate gigabytes
// or spin for minutes: at the limits, one verification holds 256 MiB and
// takes a few seconds.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 10
	maxThreads = 16
	minSaltLen = 8 // RFC 9106 §3.1
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
	// maxPHCLen bounds the stored string before it is parsed; a hash at
	// every limit above is well under it.
	maxPHCLen = 256
)

// check reports parameters outside the bounds.
func (p Params) check() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time cost %d is outside 1..%d", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("parallelism %d is outside 1..%d", p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		// RFC 9106 §3.1: m is at least 8p KiB.
		return fmt.Errorf("memory cost %d KiB is outside %d..%d", p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt length %d is outside %d..%d", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("key length %d is outside %d..%d", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// slots bounds the hashes computed at once to the processors that can run
// them. More at once adds no throughput, only memory: each holds m KiB
// until it finishes, so a burst of sign-ins would otherwise hold m times
// the burst.
var slots = make(chan struct{}, runtime.GOMAXPROCS(0))

func (p Params) key(pw string, salt []byte) []byte {
	slots <- struct{}{}
	defer func() { <-slots }()
	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

// Hash returns the PHC string of pw hashed with Default parameters and a
// fresh random salt.
func Hash(pw string) (string, error) { return Default().Hash(pw) }

// Hash returns the PHC string of pw hashed with p and a fresh random salt:
// $argon2id$v=19$m=M,t=T,p=P$SALT$KEY, salt and key in base64 without
// padding.
func (p Params) Hash(pw string) (string, error) {
	if len(pw) > MaxLength {
		return "", ErrTooLong
	}
	if err := p.check(); err != nil {
		return "", fmt.Errorf("password: hash: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt) // crypto/rand.Read never fails; it panics instead
	return p.encode(salt, p.key(pw, salt)), nil
}

var b64 = base64.RawStdEncoding.Strict()

func (p Params) encode(salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether pw matches the stored PHC string, and whether the
// hash should be recomputed with Default parameters (see Params.Verify).
func Verify(phc, pw string) (ok, rehash bool, err error) { return Default().Verify(phc, pw) }

// Verify reports whether pw matches the stored PHC string, comparing in
// constant time. When it matches, rehash reports that the stored hash's
// parameters differ from p: the caller should store a new hash of pw made
// with p. An error means the stored hash cannot be used (ErrMalformedHash)
// or pw is too long (ErrTooLong); ok is then false.
func (p Params) Verify(phc, pw string) (ok, rehash bool, err error) {
	if len(pw) > MaxLength {
		return false, false, ErrTooLong
	}
	stored, salt, want, err := parse(phc)
	if err != nil {
		return false, false, err
	}
	got := stored.key(pw, salt)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, stored != p, nil
}

// VerifyDummy does the work of Verify for a user who does not exist (or
// has no password), with Default parameters, so that a refused sign-in
// takes as long for an unknown username as for a known one and timing
// does not tell which usernames exist. It never matches.
func VerifyDummy(pw string) { Default().VerifyDummy(pw) }

// VerifyDummy runs p.Verify against a hash made with p of no password:
// the same argon2id computation as a real verification, discarded.
func (p Params) VerifyDummy(pw string) { p.Verify(p.dummy(), pw) }

// dummy returns a PHC string with p's parameters, a random salt and a
// random key, which no password matches in practice.
func (p Params) dummy() string {
	b := make([]byte, p.SaltLen+p.KeyLen)
	rand.Read(b)
	return p.encode(b[:p.SaltLen], b[p.SaltLen:])
}

// parse splits a PHC string into its parameters, salt and key, refusing
// anything outside the bounds before any memory is set aside for it.
func parse(phc string) (p Params, salt, key []byte, err error) {
	if len(phc) > maxPHCLen {
		return p, nil, nil, fmt.Errorf("%w: longer than %d characters", ErrMalformedHash, maxPHCLen)
	}
	f := strings.Split(phc, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return p, nil, nil, ErrMalformedHash
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: version %q is not v=%d", ErrMalformedHash, f[2], argon2.Version)
	}
	var threads uint32
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return p, nil, nil, fmt.Errorf("%w: parameters %q are not m=M,t=T,p=P", ErrMalformedHash, f[3])
	}
	for i, dst := range []*uint32{&p.Memory, &p.Time, &threads} {
		if *dst, err = param(params[i], "mtp"[i:i+1]); err != nil {
			return Params{}, nil, nil, err
		}
	}
	if threads > maxThreads {
		return Params{}, nil, nil, fmt.Errorf("%w: parallelism %d is over %d", ErrMalformedHash, threads, maxThreads)
	}
	p.Threads = uint8(threads)
	if salt, err = decode(f[4], "salt"); err != nil {
		return Params{}, nil, nil, err
	}
	if key, err = decode(f[5], "key"); err != nil {
		return Params{}, nil, nil, err
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.check(); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	return p, salt, key, nil
}

// decode decodes base64 without padding in its canonical form only: the
// decoder alone would skip line breaks.
func decode(s, what string) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil || b64.EncodeToString(b) != s {
		return nil, fmt.Errorf("%w: %s is not base64 without padding", ErrMalformedHash, what)
	}
	return b, nil
}

// param parses "NAME=DECIMAL" in the canonical form: digits only, no
// leading zero.
func param(s, name string) (uint32, error) {
	v, ok := strings.CutPrefix(s, name+"=")
	if !ok || v == "" || (v[0] == '0' && len(v) > 1) || strings.TrimLeft(v, "0123456789") != "" {
		return 0, fmt.Errorf("%w: parameter %q is not %s=DECIMAL", ErrMalformedHash, s, name)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: parameter %q is out of range", ErrMalformedHash, s)
	}
	return uint32(n), nil
}
