package issuer

import (
	"bytes"
	"encoding/base64"
	"testing"
)

func testFlowKeys(t *testing.T, seed byte) *flowKeys {
	t.Helper()
	k, err := newFlowKeys(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRefreshTokenFormat: a token parses back to its family and
// generation under the key that made it, and not under another key, nor
// with any bit changed, nor cut or padded.
func TestRefreshTokenFormat(t *testing.T) {
	k := testFlowKeys(t, 1)
	family := newFamilyID()
	for _, gen := range []int64{0, 1, 1 << 40} {
		v := k.newRefreshToken(family, gen)
		f, g, ok := k.parseRefreshToken(v)
		if !ok || f != family || g != gen {
			t.Errorf("parse(new(%s, %d)) = %s, %d, %v", family, gen, f, g, ok)
		}
	}
	v := k.newRefreshToken(family, 7)
	if v == k.newRefreshToken(family, 7) {
		t.Error("two tokens of one generation are equal: no random part")
	}
	if _, _, ok := testFlowKeys(t, 2).parseRefreshToken(v); ok {
		t.Error("a token parsed under another key")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	for i := range len(raw) * 8 {
		b := bytes.Clone(raw)
		b[i/8] ^= 1 << (i % 8)
		if f, g, ok := k.parseRefreshToken(base64.RawURLEncoding.EncodeToString(b)); ok {
			t.Fatalf("bit %d flipped: parsed as %s, %d", i, f, g)
		}
	}
	for _, bad := range []string{
		"", v[:len(v)-1], v + "A", v[:len(v)-2] + "==", "!" + v[1:],
		base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]),
		// Standard base64's alphabet: + and / are not base64url. (The
		// standard encoding of raw is v itself when v holds neither.)
		v[:5] + "+" + v[6:], v[:5] + "/" + v[6:],
		// The decoder skips CR and LF; the length check must not.
		v[:10] + "\n" + v[10:], v[:10] + "\r" + v[10:], v + "\n",
	} {
		if _, _, ok := k.parseRefreshToken(bad); ok {
			t.Errorf("parse(%q) succeeded", bad)
		}
	}
}

// FuzzParseRefreshToken: no input panics, and whatever parses has a
// well-formed family and generation.
func FuzzParseRefreshToken(f *testing.F) {
	k, err := newFlowKeys(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.newRefreshToken(newFamilyID(), 3))
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		family, gen, ok := k.parseRefreshToken(v)
		if ok && (gen < 0 || len(family) != 22) {
			t.Fatalf("parsed %q as %q, %d", v, family, gen)
		}
	})
}
