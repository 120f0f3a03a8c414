package jsonobj_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/sigil-sts/sigil/internal/jsonobj"
)

// FuzzMembers holds Members to encoding/json: whenever it splits an
// object, encoding/json decodes the same object into the same names,
// each with the raw bytes of its last value.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":"}","b":"\"","c":{"d":[1,{"e":"]"}]},"f":[]}`,
		`{"a":1,"a":2}`, "{\"a\"\t:\r\n\"x\" ,\"b\":true}", `{"a":null,"b":false,"c":-1.5e3}`,
		`{"a\u0062":1}`, "{\"\xff\":1}", `[]`, `null`, `"{}"`, `{"a":1`, `{"a":1}x`, `{"":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		members, ok := jsonobj.Members(b)
		if !ok {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(b, &want); err != nil || want == nil {
			t.Fatalf("Members(%q) split it, encoding/json: %v, %v", b, want, err)
		}
		got := map[string][]byte{}
		for _, m := range members {
			got[m.Name] = m.Value
		}
		if len(got) != len(want) {
			t.Fatalf("%q: names %q, encoding/json %q", b, members, want)
		}
		for name, v := range want {
			if !bytes.Equal(got[name], v) {
				t.Fatalf("%q: member %q = %q, encoding/json %q", b, name, got[name], v)
			}
		}
	})
}

// FuzzString holds String to encoding/json.
func FuzzString(f *testing.F) {
	for _, s := range []string{`""`, `"a"`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", `1`, `null`, `"`, `"a" `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return // String's callers pass values of validated documents
		}
		var got, want string
		errGot, errWant := jsonobj.String(b, &got), json.Unmarshal(b, &want)
		if (errGot == nil) != (errWant == nil) || got != want {
			t.Fatalf("String(%q) = %q, %v; encoding/json %q, %v", b, got, errGot, want, errWant)
		}
	})
}

func TestPlainInt(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "7": 7, "1700000000": 1700000000, "999999999999999": 999999999999999} {
		if got, ok := jsonobj.PlainInt([]byte(in)); !ok || got != want {
			t.Errorf("PlainInt(%s) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "01", "-1", "1.0", "1e3", "1000000000000000", " 1", "+1", "1a"} {
		if _, ok := jsonobj.PlainInt([]byte(in)); ok {
			t.Errorf("PlainInt(%q) ok", in)
		}
	}
}
