package statuslist_test

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/sigil-sts/sigil/statuslist"
)

// The draft's test vectors (draft-ietf-oauth-status-list-20 §4.1 and its
// examples directory).
const (
	long1 = "eNrt3AENwCAMAEGogklACtKQPg9LugC9k_ACvreiogEAAKkeCQAAAAAAAAAAAAAAAAAAAIBylgQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAXG9IAAAAAAAAAPwsJAAAAAAAAAAAAAAAvhsSAAAAAAAAAAAA7KpLAAAAAAAAAAAAAAAAAAAAAJsLCQAAAAAAAAAAADjelAAAAAAAAAAAKjDMAQAAAACAZC8L2AEb"
	long2 = "eNrt2zENACEQAEEuoaBABP5VIO01fCjIHTMStt9ovGVIAAAAAABAbiEBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEB5WwIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAID0ugQAAAAAAAAAAAAAAAAAQG12SgAAAAAAAAAAAAAAAAAAAAAAAAAAAOCSIQEAAAAAAAAAAAAAAAAAAAAAAAD8ExIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAwJEuAQAAAAAAAAAAAAAAAAAAAAAAAMB9SwIAAAAAAAAAAAAAAAAAAACoYUoAAAAAAAAAAAAAAEBqH81gAQw"
)

func TestDecodeVectors(t *testing.T) {
	for _, tt := range []struct {
		name string
		json statuslist.JSON
		len  int
		want map[int64]uint8 // every other index is 0
	}{
		{"1-bit", statuslist.JSON{Bits: 1, Lst: "eNrbuRgAAhcBXQ"}, 16,
			map[int64]uint8{0: 1, 3: 1, 4: 1, 5: 1, 7: 1, 8: 1, 9: 1, 13: 1, 15: 1}},
		{"2-bit", statuslist.JSON{Bits: 2, Lst: "eNo76fITAAPfAgc"}, 12,
			map[int64]uint8{0: 1, 1: 2, 3: 3, 5: 1, 7: 1, 8: 1, 9: 2, 10: 3, 11: 3}},
		{"long 1-bit", statuslist.JSON{Bits: 1, Lst: long1}, 1 << 20,
			map[int64]uint8{0: 1, 1993: 1, 25460: 1, 159495: 1, 495669: 1, 554353: 1, 645645: 1, 723232: 1, 854545: 1, 934534: 1, 1000345: 1}},
		{"long 2-bit", statuslist.JSON{Bits: 2, Lst: long2}, 1 << 20,
			map[int64]uint8{0: 1, 1993: 2, 25460: 1, 159495: 3, 495669: 1, 554353: 1, 645645: 2, 723232: 1, 854545: 1, 934534: 2, 1000345: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := statuslist.Decode(tt.json)
			if err != nil {
				t.Fatal(err)
			}
			if l.Len() != tt.len {
				t.Fatalf("Len = %d, want %d", l.Len(), tt.len)
			}
			for i := range int64(tt.len) {
				got, err := l.Get(i)
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want[i] {
					t.Fatalf("entry %d = %d, want %d", i, got, tt.want[i])
				}
			}
			// §8.1 step 8: out of range is an error, never VALID.
			for _, i := range []int64{-1, int64(tt.len), 1 << 40} {
				if _, err := l.Get(i); err == nil {
					t.Errorf("Get(%d) on %d entries: no error", i, tt.len)
				}
			}
			// Encoding what was decoded and decoding again keeps every entry.
			again, err := l.Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := statuslist.Decode(again)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range tt.want {
				if got, _ := back.Get(i); got != v {
					t.Errorf("after re-encoding, entry %d = %d, want %d", i, got, v)
				}
			}
		})
	}
}

// TestEncodeVector: the 1-bit example packs into the draft's bytes, b9 a3,
// compressed as ZLIB (deflate, 32 KiB window). (Compressed streams are not
// canonical: Go's differs from the draft's zlib output, so the bytes
// inside are compared.)
func TestEncodeVector(t *testing.T) {
	l, err := statuslist.New(1, 16)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []uint8{1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1} {
		if err := l.Set(i, v); err != nil {
			t.Fatal(err)
		}
	}
	j, err := l.Encode()
	if err != nil {
		t.Fatal(err)
	}
	compressed, err := base64.RawURLEncoding.DecodeString(j.Lst)
	if err != nil {
		t.Fatal(err)
	}
	r, err := zlib.NewReader(bytes.NewReader(compressed))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if j.Bits != 1 || !bytes.Equal(raw, []byte{0xb9, 0xa3}) || compressed[0] != 0x78 {
		t.Errorf("Encode = %+v: bytes %x, zlib header %x; want bits 1, bytes b9a3, a header starting 78", j, raw, compressed[:2])
	}
}

func TestSetGet(t *testing.T) {
	for _, bits := range []int{1, 2, 4, 8} {
		l, err := statuslist.New(bits, 100)
		if err != nil {
			t.Fatal(err)
		}
		max := uint8(1<<bits - 1)
		for i := range 100 {
			if err := l.Set(i, uint8(i)&max); err != nil {
				t.Fatal(err)
			}
		}
		// Overwriting a neighbour leaves an entry alone.
		if err := l.Set(50, 0); err != nil {
			t.Fatal(err)
		}
		for i := range int64(100) {
			want := uint8(i) & max
			if i == 50 {
				want = 0
			}
			if got, _ := l.Get(i); got != want {
				t.Fatalf("bits %d: entry %d = %d, want %d", bits, i, got, want)
			}
		}
		if bits < 8 {
			if err := l.Set(0, max+1); err == nil {
				t.Errorf("bits %d: Set(0, %d) fits no entry but succeeded", bits, max+1)
			}
		}
		if err := l.Set(l.Len(), 0); err == nil {
			t.Errorf("bits %d: Set past the end succeeded", bits)
		}
	}
	if _, err := statuslist.New(3, 8); err == nil {
		t.Error("New(3 bits) succeeded")
	}
}

// TestDecodeRefuses: malformed input and a zlib bomb are errors.
func TestDecodeRefuses(t *testing.T) {
	var bomb bytes.Buffer
	w, _ := zlib.NewWriterLevel(&bomb, zlib.BestCompression)
	w.Write(make([]byte, statuslist.MaxEntries/8+1))
	w.Close()
	var bad bytes.Buffer
	w, _ = zlib.NewWriterLevel(&bad, zlib.BestCompression)
	w.Write([]byte{0xff, 0x01})
	w.Close()
	corrupt := bad.Bytes()
	corrupt[len(corrupt)-1] ^= 1 // the Adler-32 checksum
	for name, j := range map[string]statuslist.JSON{
		"bits 3":      {Bits: 3, Lst: "eNrbuRgAAhcBXQ"},
		"bits 0":      {Bits: 0, Lst: "eNrbuRgAAhcBXQ"},
		"padded":      {Bits: 1, Lst: "eNrbuRgAAhcBXQ=="},
		"std base64":  {Bits: 1, Lst: strings.ReplaceAll(long1, "_", "/")},
		"not zlib":    {Bits: 1, Lst: "AAAA"},
		"truncated":   {Bits: 1, Lst: "eNrbuRgAAhcB"},
		"bad adler32": {Bits: 1, Lst: base64.RawURLEncoding.EncodeToString(corrupt)},
		"bomb":        {Bits: 1, Lst: base64.RawURLEncoding.EncodeToString(bomb.Bytes())},
	} {
		if _, err := statuslist.Decode(j); err == nil {
			t.Errorf("%s: Decode succeeded", name)
		}
	}
}
