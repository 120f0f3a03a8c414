package password

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// cheap are the smallest parameters within bounds, for tests that need
// many hashes.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

var phcForm = regexp.MustCompile(`^\$argon2id\$v=19\$m=[1-9][0-9]*,t=[1-9][0-9]*,p=[1-9][0-9]*\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !phcForm.MatchString(h) || !strings.HasPrefix(h, "$argon2id$v=19$m=24576,t=2,p=1$") {
		t.Errorf("hash %q is not the PHC form with the default parameters", h)
	}
	ok, rehash, err := Verify(h, "correct horse battery staple")
	if !ok || rehash || err != nil {
		t.Errorf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	h2, _ := Hash("correct horse battery staple")
	if h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

// TestReferenceVector checks interoperability with the reference
// implementation (phc-winner-argon2, src/test.c: argon2id, v=19, m=2^16,
// t=2, p=1, "password", "somesalt").
func TestReferenceVector(t *testing.T) {
	const h = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	ok, rehash, err := Verify(h, "password")
	if !ok || err != nil {
		t.Fatalf("Verify(reference vector) = %v, %v", ok, err)
	}
	if !rehash {
		t.Error("m=64 MiB differs from the defaults, but rehash is false")
	}
	if ok, _, _ := Verify(h, "Password"); ok {
		t.Error("the reference vector matches another password")
	}
}

func TestWrongPassword(t *testing.T) {
	h, err := cheap.Hash("s3cret-Passw0rd")
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "s3cret-passw0rd", "s3cret-Passw0rd\n", " s3cret-Passw0rd", "s3cret-Passw0r", "s3cret-Passw0rdd", strings.Repeat("x", MaxLength)} {
		ok, rehash, err := cheap.Verify(h, pw)
		if ok || rehash || err != nil {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, nil", pw, ok, rehash, err)
		}
	}
}

func TestLength(t *testing.T) {
	long := strings.Repeat("a", MaxLength)
	h, err := cheap.Hash(long)
	if err != nil {
		t.Fatalf("a password of MaxLength bytes: %v", err)
	}
	if ok, _, err := cheap.Verify(h, long); !ok || err != nil {
		t.Errorf("Verify(MaxLength bytes) = %v, %v", ok, err)
	}
	if _, err := cheap.Hash(long + "a"); !errors.Is(err, ErrTooLong) {
		t.Errorf("Hash(MaxLength+1 bytes): %v, want ErrTooLong", err)
	}
	if ok, _, err := cheap.Verify(h, long+"a"); ok || !errors.Is(err, ErrTooLong) {
		t.Errorf("Verify(MaxLength+1 bytes) = %v, %v; want false, ErrTooLong", ok, err)
	}
	if !strings.Contains(ErrTooLong.Error(), "1024 bytes") {
		t.Errorf("ErrTooLong says %q", ErrTooLong)
	}
}

func TestRehash(t *testing.T) {
	h, err := cheap.Hash("pw-for-rehash")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		p      Params
		rehash bool
	}{
		{"same", cheap, false},
		{"memory", Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"time", Params{Memory: 64, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"threads", Params{Memory: 64, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}, true},
		{"salt", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 32, KeyLen: 32}, true},
		{"key", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 64}, true},
		{"default", Default(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := tc.p.Verify(h, "pw-for-rehash")
			if !ok || rehash != tc.rehash || err != nil {
				t.Errorf("Verify = %v, %v, %v; want true, %v, nil", ok, rehash, err, tc.rehash)
			}
			// A wrong password never asks for a rehash.
			if ok, rehash, _ := tc.p.Verify(h, "wrong"); ok || rehash {
				t.Errorf("Verify(wrong) = %v, %v", ok, rehash)
			}
		})
	}
}

// TestTampered changes every character of a hash in turn: the result
// either does not parse or does not match, never both fine and matching.
func TestTampered(t *testing.T) {
	const pw = "tamper-me"
	h, err := cheap.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(h) {
		for _, c := range []byte{'A', 'B', '0', '9', '/', '$', ','} {
			if h[i] == c {
				continue
			}
			b := []byte(h)
			b[i] = c
			// A larger m or t still parses; it must just not match.
			ok, _, err := cheap.Verify(string(b), pw)
			if ok {
				t.Fatalf("tampered hash %q (byte %d → %q) matches", b, i, c)
			}
			if err != nil && !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("tampered hash %q: error %v does not wrap ErrMalformedHash", b, err)
			}
		}
	}
}

// TestMalformed covers hashes that must be refused before any argon2
// work: other algorithms and versions, broken syntax, non-canonical
// encodings, and parameters out of bounds.
func TestMalformed(t *testing.T) {
	const salt, key = "c29tZXNhbHQ", "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	phc := func(head, params, salt, key string) string {
		return head + "$" + params + "$" + salt + "$" + key
	}
	good := "$argon2id$v=19"
	for _, tc := range []struct{ name, phc string }{
		{"empty", ""},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{"argon2i", phc("$argon2i$v=19", "m=65536,t=2,p=1", salt, key)},
		{"argon2d", phc("$argon2d$v=19", "m=65536,t=2,p=1", salt, key)},
		{"version-16", phc("$argon2id$v=16", "m=65536,t=2,p=1", salt, key)},
		{"no-version", "$argon2id$m=65536,t=2,p=1$" + salt + "$" + key},
		{"no-leading-dollar", phc("argon2id$v=19", "m=65536,t=2,p=1", salt, key)},
		{"trailing-field", phc(good, "m=65536,t=2,p=1", salt, key) + "$x"},
		{"params-order", phc(good, "t=2,m=65536,p=1", salt, key)},
		{"params-missing", phc(good, "m=65536,t=2", salt, key)},
		{"params-extra", phc(good, "m=65536,t=2,p=1,keyid=x", salt, key)},
		{"params-space", phc(good, "m=65536, t=2,p=1", salt, key)},
		{"params-leading-zero", phc(good, "m=065536,t=2,p=1", salt, key)},
		{"params-plus", phc(good, "m=+65536,t=2,p=1", salt, key)},
		{"params-negative", phc(good, "m=65536,t=-2,p=1", salt, key)},
		{"params-hex", phc(good, "m=0x10000,t=2,p=1", salt, key)},
		{"params-empty", phc(good, "m=,t=2,p=1", salt, key)},
		{"params-overflow", phc(good, "m=4294967296,t=2,p=1", salt, key)},
		{"salt-padded", phc(good, "m=65536,t=2,p=1", salt+"=", key)},
		{"salt-urlsafe", phc(good, "m=65536,t=2,p=1", "c29tZXNhbHQ-_w", key)},
		{"salt-noncanonical", phc(good, "m=65536,t=2,p=1", "c29tZXNhbHR", key)},
		{"salt-line-break", phc(good, "m=65536,t=2,p=1", "c29tZX\r\nNhbHQ", key)},
		{"key-invalid", phc(good, "m=65536,t=2,p=1", salt, key+"!")},
		{"key-padded", phc(good, "m=65536,t=2,p=1", salt, key+"=")},
		// Out of bounds: each would cost gigabytes, minutes, or nothing.
		{"memory-4GiB", phc(good, "m=4194304,t=1,p=1", salt, key)},
		{"memory-over-limit", phc(good, "m=262145,t=1,p=1", salt, key)},
		{"memory-max-uint32", phc(good, "m=4294967295,t=1,p=1", salt, key)},
		{"memory-under-8p", phc(good, "m=15,t=1,p=2", salt, key)},
		{"memory-zero", phc(good, "m=0,t=1,p=1", salt, key)},
		{"time-huge", phc(good, "m=64,t=1000000,p=1", salt, key)},
		{"time-over-limit", phc(good, "m=64,t=11,p=1", salt, key)},
		{"time-zero", phc(good, "m=64,t=0,p=1", salt, key)},
		{"threads-255", phc(good, "m=65536,t=1,p=255", salt, key)},
		{"threads-256", phc(good, "m=65536,t=1,p=256", salt, key)},
		{"threads-zero", phc(good, "m=64,t=1,p=0", salt, key)},
		{"salt-short", phc(good, "m=64,t=1,p=1", "c2FsdA", key)},
		{"salt-long", phc(good, "m=64,t=1,p=1", strings.Repeat("A", 88), key)},
		{"salt-empty", phc(good, "m=64,t=1,p=1", "", key)},
		{"key-short", phc(good, "m=64,t=1,p=1", salt, "AAAAAAAAAAAAAAAAAAAA")},
		{"key-empty", phc(good, "m=64,t=1,p=1", salt, "")},
		{"key-long", phc(good, "m=64,t=1,p=1", salt, strings.Repeat("A", 88))},
		{"string-huge", phc(good, "m=64,t=1,p=1", salt, strings.Repeat("A", 1<<20))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ok bool
			var err error
			alloc := allocated(func() { ok, _, err = Verify(tc.phc, "password") })
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("Verify(%.80q) = %v, %v; want false, ErrMalformedHash", tc.phc, ok, err)
			}
			// Refused before argon2 sets any memory aside.
			if alloc > 64<<10 {
				t.Errorf("Verify allocated %d bytes for a hash it refuses", alloc)
			}
		})
	}
}

// TestBounds checks the largest parameters still accepted: a stored hash
// may come from a larger deployment or an older default.
func TestBounds(t *testing.T) {
	for _, p := range []Params{
		{Memory: 8, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 16},
		{Memory: 16 * 8, Time: 1, Threads: 16, SaltLen: 64, KeyLen: 64},
		{Memory: 64, Time: 10, Threads: 1, SaltLen: 16, KeyLen: 32},
	} {
		t.Run(fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads), func(t *testing.T) {
			h, err := p.Hash("pw")
			if err != nil {
				t.Fatal(err)
			}
			if ok, rehash, err := p.Verify(h, "pw"); !ok || rehash || err != nil {
				t.Errorf("Verify = %v, %v, %v", ok, rehash, err)
			}
		})
	}
	if _, err := (Params{Memory: maxMemory + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}).Hash("pw"); err == nil {
		t.Error("Hash accepted parameters over the bounds")
	}
	if err := Default().check(); err != nil {
		t.Errorf("the defaults are out of bounds: %v", err)
	}
}

// TestDummy checks that VerifyDummy does what Verify does for a real user
// with the current parameters: the dummy hash has exactly those
// parameters, and the work done (the memory argon2 fills, which is its
// cost) is the same. Timing itself is measured by BenchmarkVerify and
// BenchmarkVerifyDummy, not asserted.
func TestDummy(t *testing.T) {
	for _, p := range []Params{cheap, Default()} {
		got, salt, key, err := parse(p.dummy())
		if err != nil || got != p {
			t.Fatalf("dummy hash parses as %+v, %v; want %+v", got, err, p)
		}
		if len(salt) != int(p.SaltLen) || len(key) != int(p.KeyLen) {
			t.Errorf("dummy salt and key lengths %d, %d", len(salt), len(key))
		}
		if p.dummy() == p.dummy() {
			t.Error("two dummy hashes are equal")
		}
	}
	d := Default()
	h, err := d.Hash("known-user-pw")
	if err != nil {
		t.Fatal(err)
	}
	known := allocated(func() { d.Verify(h, "guess") })
	dummy := allocated(func() { d.VerifyDummy("guess") })
	if known < int64(d.Memory)<<10 {
		t.Fatalf("Verify allocated %d bytes, less than m", known)
	}
	if ratio := float64(dummy) / float64(known); ratio < 0.95 || ratio > 1.05 {
		t.Errorf("VerifyDummy allocated %d bytes, Verify %d: not the same work", dummy, known)
	}
	if alloc := allocated(func() { VerifyDummy(strings.Repeat("x", MaxLength+1)) }); alloc > 64<<10 {
		t.Errorf("VerifyDummy hashed a password over MaxLength (%d bytes allocated)", alloc)
	}
}

// allocated returns the bytes allocated while f runs.
func allocated(f func()) int64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc)
}

// FuzzParse checks that parse never panics, accepts only parameters
// within bounds, and accepts only the canonical encoding of what it reads.
func FuzzParse(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$v=19$m=10,t=1,p=1$00000000000$000000000000000\r00000000")
	f.Add("$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parse(%q): %v does not wrap ErrMalformedHash", s, err)
			}
			return
		}
		if err := p.check(); err != nil {
			t.Fatalf("parse(%q) accepted %+v: %v", s, p, err)
		}
		if again := p.encode(salt, key); again != s {
			t.Fatalf("parse(%q) accepted a non-canonical form of %q", s, again)
		}
	})
}
