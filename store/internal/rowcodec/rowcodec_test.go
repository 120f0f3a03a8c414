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

// TestLists: lists and claims round-trip, and empty ones (nil, [] or {})
// decode as nil.
func TestLists(t *testing.T) {
	if got := EncodeList(nil); got != "[]" {
		t.Errorf("EncodeList(nil) = %s, want []", got)
	}
	list, err := DecodeList([]byte(EncodeList([]string{"a", "ü"})))
	if err != nil || len(list) != 2 || list[0] != "a" || list[1] != "ü" {
		t.Errorf("list round trip = %q, %v", list, err)
	}
	if list, err := DecodeList([]byte("[]")); list != nil || err != nil {
		t.Errorf("DecodeList([]) = %#v, %v; want nil, nil", list, err)
	}
	claims, err := EncodeClaims(nil)
	if err != nil || claims != "{}" {
		t.Errorf("EncodeClaims(nil) = %s, %v; want {}", claims, err)
	}
	if m, err := DecodeClaims([]byte("{}")); m != nil || err != nil {
		t.Errorf("DecodeClaims({}) = %#v, %v; want nil, nil", m, err)
	}
	if _, err := EncodeClaims(map[string]any{"f": func() {}}); err == nil {
		t.Error("EncodeClaims of a func succeeded")
	}
}
