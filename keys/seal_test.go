package keys_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sigil-sts/sigil/keys"
)

// masterKey returns the master key of 32 bytes of b.
func masterKey(tb testing.TB, b byte) keys.MasterKey {
	tb.Helper()
	mk, err := keys.ParseMasterKey(hex.EncodeToString(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		tb.Fatal(err)
	}
	return mk
}

func TestSealerRoundTrip(t *testing.T) {
	s := keys.NewSealer(masterKey(t, 1))
	for _, pt := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("private key "), 200)} {
		sealed := s.Seal("kid-1", pt)
		// Only a plaintext of some length says anything: a one-byte one
		// turns up in 29 random bytes one time in nine.
		if len(pt) >= 16 && bytes.Contains(sealed, pt) {
			t.Errorf("sealed blob contains the plaintext")
		}
		got, err := s.Open("kid-1", sealed)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("Open = %q, want %q", got, pt)
		}
	}
	if a, b := s.Seal("k", []byte("same")), s.Seal("k", []byte("same")); bytes.Equal(a, b) {
		t.Error("two seals of the same plaintext are equal: nonce reused")
	}
}

func TestSealerOpenRejects(t *testing.T) {
	s := keys.NewSealer(masterKey(t, 1))
	sealed := s.Seal("kid-1", []byte("secret key material"))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name   string
		sealer *keys.Sealer
		kid    string
		sealed []byte
	}{
		{"another kid (AAD binding)", s, "kid-2", sealed},
		{"kid prefix", s, "kid-", sealed},
		{"another master key", keys.NewSealer(masterKey(t, 2)), "kid-1", sealed},
		{"truncated by one byte", s, "kid-1", sealed[:len(sealed)-1]},
		{"nonce and tag only", s, "kid-1", sealed[:12+16]},
		{"shorter than nonce and tag", s, "kid-1", sealed[:12+15]},
		{"nonce only", s, "kid-1", sealed[:12]},
		{"empty", s, "kid-1", nil},
		{"bit flipped", s, "kid-1", flipped},
		{"extended", s, "kid-1", append(bytes.Clone(sealed), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if pt, err := tt.sealer.Open(tt.kid, tt.sealed); err == nil {
				t.Errorf("Open = %q, want an error", pt)
			}
		})
	}
}

func TestParseMasterKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i*7 + 0xf0) // bytes that make + / - _ appear in base64
	}
	want := keys.NewSealer(mustParse(t, hex.EncodeToString(raw)))
	sealed := want.Seal("k", []byte("probe"))
	ok := []struct{ name, in string }{
		{"hex lower", hex.EncodeToString(raw)},
		{"hex upper", strings.ToUpper(hex.EncodeToString(raw))},
		{"base64 std padded", base64.StdEncoding.EncodeToString(raw)},
		{"base64 std raw", base64.RawStdEncoding.EncodeToString(raw)},
		{"base64 url padded", base64.URLEncoding.EncodeToString(raw)},
		{"base64 url raw", base64.RawURLEncoding.EncodeToString(raw)},
		{"surrounding whitespace", " \t" + base64.StdEncoding.EncodeToString(raw) + "\n"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			mk, err := keys.ParseMasterKey(tt.in)
			if err != nil {
				t.Fatalf("ParseMasterKey(%q): %v", tt.in, err)
			}
			// Same key: it opens what the reference key sealed.
			if _, err := keys.NewSealer(mk).Open("k", sealed); err != nil {
				t.Errorf("decoded to a different key: %v", err)
			}
		})
	}
	bad := []struct{ name, in string }{
		{"empty", ""},
		{"31 bytes hex", hex.EncodeToString(raw[:31])},
		{"33 bytes hex", hex.EncodeToString(append(bytes.Clone(raw), 0))},
		{"63 hex digits", hex.EncodeToString(raw)[:63]},
		{"31 bytes base64", base64.StdEncoding.EncodeToString(raw[:31])},
		{"33 bytes base64", base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 0))},
		{"16 bytes base64", base64.StdEncoding.EncodeToString(raw[:16])},
		{"64 bytes base64", base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), raw...))},
		{"not an encoding", "correct horse battery staple correct horse battery"},
		{"inner space", hex.EncodeToString(raw[:16]) + " " + hex.EncodeToString(raw[16:])},
	}
	for _, tt := range bad {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			if _, err := keys.ParseMasterKey(tt.in); err == nil {
				t.Errorf("ParseMasterKey(%q) succeeded", tt.in)
			}
		})
	}
}

func mustParse(tb testing.TB, s string) keys.MasterKey {
	tb.Helper()
	mk, err := keys.ParseMasterKey(s)
	if err != nil {
		tb.Fatal(err)
	}
	return mk
}

func TestLoadMasterKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	mk, err := keys.LoadMasterKey("", dir)
	if err != nil {
		t.Fatalf("LoadMasterKey (create): %v", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		t.Errorf("data dir mode %o, want 700", perm)
	}
	path := filepath.Join(dir, keys.MasterKeyFile)
	st, err = os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("master key file mode %o, want 600", perm)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.ParseMasterKey(string(content)); err != nil {
		t.Errorf("file content does not parse: %v", err)
	}

	sealed := keys.NewSealer(mk).Seal("k", []byte("probe"))
	again, err := keys.LoadMasterKey("", dir)
	if err != nil {
		t.Fatalf("LoadMasterKey (read): %v", err)
	}
	if _, err := keys.NewSealer(again).Open("k", sealed); err != nil {
		t.Errorf("second load returned another key: %v", err)
	}

	env := hex.EncodeToString(bytes.Repeat([]byte{9}, 32))
	fromEnv, err := keys.LoadMasterKey(env, dir)
	if err != nil {
		t.Fatalf("LoadMasterKey (env): %v", err)
	}
	if _, err := keys.NewSealer(fromEnv).Open("k", sealed); err == nil {
		t.Error("with the environment set, the file's key was used")
	}
	if _, err := keys.NewSealer(masterKey(t, 9)).Open("k", keys.NewSealer(fromEnv).Seal("k", []byte("x"))); err != nil {
		t.Errorf("environment key not used: %v", err)
	}
	if _, err := keys.LoadMasterKey("too short", dir); err == nil {
		t.Error("an invalid environment value fell back to the file")
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(after, content) {
		t.Errorf("master key file changed: %q, %v", after, err)
	}
}

// TestLoadMasterKeyOpenToOthers: a master key file that group or others
// can read is refused with a message that says how to fix it.
func TestLoadMasterKeyOpenToOthers(t *testing.T) {
	dir := t.TempDir()
	if _, err := keys.LoadMasterKey("", dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, keys.MasterKeyFile)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := keys.LoadMasterKey("", dir)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %o: err = %v, want a refusal naming chmod 600", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.LoadMasterKey("", dir); err != nil {
		t.Errorf("mode 400: %v", err)
	}
}

func TestLoadMasterKeyCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, keys.MasterKeyFile), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.LoadMasterKey("", dir); err == nil {
		t.Error("a corrupt master key file was accepted (or replaced)")
	}
}

func TestDerive(t *testing.T) {
	mk := masterKey(t, 3)
	a, b := mk.Derive("key sealing"), mk.Derive("client secrets")
	if len(a) != 32 || len(b) != 32 || bytes.Equal(a, b) {
		t.Errorf("Derive: %x, %x", a, b)
	}
	if !bytes.Equal(a, masterKey(t, 3).Derive("key sealing")) {
		t.Error("Derive is not deterministic")
	}
	defer func() {
		if recover() == nil {
			t.Error("Derive on the zero MasterKey did not panic")
		}
	}()
	var zero keys.MasterKey
	zero.Derive("x")
}

// TestLoadOrCreatePrivateFileConcurrent: processes starting together on a
// new data dir all end up with the same complete file, mode 0600, and no
// temporary file is left behind.
func TestLoadOrCreatePrivateFileConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "secret")
	var wg sync.WaitGroup
	got := make([][]byte, 16)
	errs := make([]error, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = keys.LoadOrCreatePrivateFile(path, func() []byte { return []byte(fmt.Sprintf("secret-%02d-%s", i, strings.Repeat("x", 64))) })
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !bytes.Equal(got[i], got[0]) || len(got[i]) != 74 {
			t.Fatalf("caller %d got %q, caller 0 %q", i, got[i], got[0])
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v, mode %v", err, st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
}
