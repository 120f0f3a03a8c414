package rowcodec

import (
	"bytes"
	"math"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

// TestBlocksCopy: copies are equal to their sources, independent of them,
// and capped, so appending to one never writes over the next; fields
// larger than a block get a block of their own.
func TestBlocksCopy(t *testing.T) {
	var blk Blocks
	src := []byte("abc")
	a := blk.Copy(src)
	b := blk.Copy([]byte("def"))
	src[0] = 'x'
	if string(a) != "abc" || cap(a) != len(a) {
		t.Fatalf("copy %q cap %d, want \"abc\" with cap 3", a, cap(a))
	}
	_ = append(a, 'z')
	if string(b) != "def" {
		t.Fatalf("appending to one copy changed the next: %q", b)
	}
	big := bytes.Repeat([]byte{7}, blockSize+1)
	if c := blk.Copy(big); !bytes.Equal(c, big) {
		t.Fatal("a field larger than a block was not copied whole")
	}
}

func TestUnixNano(t *testing.T) {
	now := time.Date(2026, 11, 29, 1, 2, 3, 4, time.UTC)
	if got := FromUnixNano(UnixNano(now)); !got.Equal(now) {
		t.Errorf("round trip of %v: %v", now, got)
	}
	if UnixNano(time.Time{}) != math.MinInt64 || UnixNano(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)) != math.MaxInt64 {
		t.Error("times outside the int64 range are not clamped")
	}
}

func TestEncodeClient(t *testing.T) {
	r, err := EncodeClient(&sigil.Client{Scopes: []string{"a", "b"}, Claims: map[string]any{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := Client{GrantTypes: "[]", Scopes: `["a","b"]`, DefaultScopes: "[]", Audiences: "[]", RedirectURIs: "[]", Claims: `{"x":1}`}
	if r != want {
		t.Errorf("EncodeClient = %+v, want %+v", r, want)
	}
}
