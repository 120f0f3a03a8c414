package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
)

func fullRecord() audit.Record {
	return audit.Record{
		Time:            t0,
		Node:            "node-a",
		Event:           audit.TokenRefused,
		Outcome:         audit.Failure,
		Reason:          "invalid_scope",
		ClientID:        "billing",
		Subject:         "alice",
		Act:             []string{"agent-1", "agent-2"},
		JTI:             "3q2-7w",
		SubjectTokenJTI: "1a-subject",
		ActorTokenJTI:   "1b-actor",
		Scope:           "orders:read",
		Audience:        []string{"https://api.example.com", "https://b.example.com"},
		RequestID:       "req-1",
		Source:          "192.0.2.1:443",
		Detail:          map[string]string{"zeta": "1", "alpha": "2", "mid": "3", "Beta": "4", "kid": "k1"},
	}
}

func TestEncodeDeterministic(t *testing.T) {
	r := fullRecord()
	first, err := audit.Encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		// A fresh map each time: Go randomises map iteration order, so an
		// encoder that followed it would differ within a few rounds.
		c := fullRecord()
		c.Detail = map[string]string{}
		for k, v := range r.Detail {
			c.Detail[k] = v
		}
		b, err := audit.Encode(&c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, first) {
			t.Fatalf("round %d: encoding changed:\n%s\n%s", i, first, b)
		}
	}

	// The members come in the documented order, Detail's keys sorted.
	want := `{"time":"2026-03-14T15:09:26.535897932Z","node":"node-a","event":"token.refused","outcome":"failure",` +
		`"reason":"invalid_scope","client_id":"billing","sub":"alice","act":["agent-1","agent-2"],"jti":"3q2-7w",` +
		`"subject_token_jti":"1a-subject","actor_token_jti":"1b-actor",` +
		`"scope":"orders:read","aud":["https://api.example.com","https://b.example.com"],"request_id":"req-1",` +
		`"source":"192.0.2.1:443","detail":{"Beta":"4","alpha":"2","kid":"k1","mid":"3","zeta":"1"}}`
	if string(first) != want {
		t.Errorf("Encode =\n%s\nwant\n%s", first, want)
	}

	// Empty members are left out.
	min, err := audit.Encode(&audit.Record{Time: t0, Event: audit.KeyRotated, Outcome: audit.Success})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"time":"2026-03-14T15:09:26.535897932Z","event":"key.rotated","outcome":"success"}`; string(min) != want {
		t.Errorf("Encode(minimal) = %s, want %s", min, want)
	}
}

func TestEncodeTimeUTC(t *testing.T) {
	// The same instant in two zones encodes the same.
	paris := time.FixedZone("CET", 3600)
	a := audit.Record{Time: t0, Event: audit.TokenIssued, Outcome: audit.Success}
	b := a
	b.Time = t0.In(paris)
	ea, _ := audit.Encode(&a)
	eb, _ := audit.Encode(&b)
	if !bytes.Equal(ea, eb) {
		t.Errorf("same instant, different encodings:\n%s\n%s", ea, eb)
	}
}

func TestTimeFormatFixedWidthSortable(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	times := []time.Time{
		base,
		base.Add(time.Nanosecond),
		base.Add(10 * time.Nanosecond),
		base.Add(time.Microsecond),
		base.Add(100 * time.Millisecond),
		base.Add(500 * time.Millisecond),
		base.Add(time.Second),
		base.Add(time.Second + 1),
		time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 900_000_000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var strs []string
	for _, tm := range times {
		s := tm.Format(audit.TimeFormat)
		if len(s) != len(audit.TimeFormat) {
			t.Errorf("%v formats as %q, %d characters, want %d", tm, s, len(s), len(audit.TimeFormat))
		}
		back, err := time.Parse(audit.TimeFormat, s)
		if err != nil || !back.Equal(tm) {
			t.Errorf("%q parses back as %v, %v; want %v", s, back, err, tm)
		}
		strs = append(strs, s)
	}
	// String order is time order.
	idx := make([]int, len(times))
	for i := range idx {
		idx[i] = i
	}
	byTime := slices.Clone(idx)
	sort.SliceStable(byTime, func(i, j int) bool { return times[byTime[i]].Before(times[byTime[j]]) })
	byString := slices.Clone(idx)
	sort.SliceStable(byString, func(i, j int) bool { return strs[byString[i]] < strs[byString[j]] })
	if !slices.Equal(byTime, byString) {
		t.Errorf("string order %v differs from time order %v", byString, byTime)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for _, r := range []audit.Record{
		fullRecord(),
		{Time: t0, Event: audit.KeyRotated, Outcome: audit.Success, Detail: map[string]string{"kid": "k2"}},
		{Time: t0.Add(-time.Hour).Truncate(time.Second), Event: audit.TokenInactive, Outcome: audit.Failure, JTI: "x"},
	} {
		b, err := audit.Encode(&r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := audit.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&r, got); diff != "" {
			t.Errorf("Decode(Encode(r)) differs (-want +got):\n%s", diff)
		}
		again, err := audit.Encode(got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Errorf("re-encoding changed the bytes:\n%s\n%s", b, again)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":          `{"time":`,
		"time not RFC 3339": `{"time":"yesterday","event":"token.issued","outcome":"success"}`,
		"time not fixed":    `{"time":"2026-03-14T15:09:26Z","event":"token.issued","outcome":"success"}`,
		"time not UTC":      `{"time":"2026-03-14T15:09:26.000000000+01:00","event":"token.issued","outcome":"success"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := audit.Decode([]byte(in)); err == nil {
				t.Errorf("Decode(%s) = %+v, want an error", in, r)
			}
		})
	}
}

// handHash is the documented layout, spelt out: SHA-256 over the tag
// "sigil-audit-v1\x00", seq as 8 bytes big-endian, prev and body.
func handHash(seq int64, prev, body []byte) []byte {
	var in []byte
	in = append(in, "sigil-audit-v1"...)
	in = append(in, 0)
	in = binary.BigEndian.AppendUint64(in, uint64(seq))
	in = append(in, prev...)
	in = append(in, body...)
	sum := sha256.Sum256(in)
	return sum[:]
}

func TestHashKnownAnswer(t *testing.T) {
	body := []byte(`{"time":"2026-03-14T15:09:26.535897932Z","event":"token.issued","outcome":"success","jti":"a"}`)
	prev := bytes.Repeat([]byte{0xab}, 32)
	for _, c := range []struct {
		seq  int64
		prev []byte
	}{{1, audit.ZeroHash}, {2, prev}, {1 << 40, prev}} {
		if got, want := audit.Hash(c.seq, c.prev, body), handHash(c.seq, c.prev, body); !bytes.Equal(got, want) {
			t.Errorf("Hash(%d) = %x, want %x", c.seq, got, want)
		}
	}
	// A pinned vector: stored chains must keep verifying across releases,
	// so the layout may never change silently.
	const pinned = "f26315dc55d7b0d50dde4ed55fb825f7a01d155ac963821790739b9d23586a95"
	got := hex.EncodeToString(audit.Hash(1, audit.ZeroHash, []byte(`{}`)))
	if want := hex.EncodeToString(handHash(1, audit.ZeroHash, []byte(`{}`))); got != want {
		t.Fatalf("Hash(1, zero, {}) = %s, want %s", got, want)
	}
	if got != pinned {
		t.Errorf("Hash(1, zero, {}) = %s, pinned %s", got, pinned)
	}
	if len(audit.ZeroHash) != 32 || !bytes.Equal(audit.ZeroHash, make([]byte, 32)) {
		t.Errorf("ZeroHash = %x, want 32 zero bytes", audit.ZeroHash)
	}
}

func TestHashSensitivity(t *testing.T) {
	body := []byte(`{"time":"2026-03-14T15:09:26.535897932Z","event":"token.issued","outcome":"success","jti":"a"}`)
	prev := bytes.Repeat([]byte{0x11}, 32)
	base := audit.Hash(7, prev, body)
	otherPrev := slices.Clone(prev)
	otherPrev[31] ^= 1
	otherBody := bytes.Replace(body, []byte(`"jti":"a"`), []byte(`"jti":"b"`), 1)
	for name, h := range map[string][]byte{
		"seq":                   audit.Hash(8, prev, body),
		"negative seq":          audit.Hash(-7, prev, body),
		"prev":                  audit.Hash(7, otherPrev, body),
		"body":                  audit.Hash(7, prev, otherBody),
		"body one byte shorter": audit.Hash(7, prev, body[:len(body)-1]),
	} {
		if bytes.Equal(h, base) {
			t.Errorf("changing the %s leaves the hash unchanged", name)
		}
	}
	// The layout is unambiguous only because prev is always 32 bytes: Hash
	// itself does not check it (Hash(7, prev[:31], prev[31:]‖body) equals
	// base), and Verify refuses any stored prev that is not the 32-byte
	// hash of the record before.
	if !bytes.Equal(audit.Hash(7, prev, body), base) {
		t.Error("Hash is not a function of its inputs")
	}
}

func TestMarshalEntry(t *testing.T) {
	r := fullRecord()
	body, err := audit.Encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	prev := bytes.Repeat([]byte{0x5a}, 32)
	e := sigil.AuditEntry{Seq: 42, Prev: prev, Hash: audit.Hash(42, prev, body), Body: body}
	out := audit.MarshalEntry(e)
	if !json.Valid(out) {
		t.Fatalf("MarshalEntry output is not JSON: %s", out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	var members map[string]any
	if err := json.Unmarshal(body, &members); err != nil {
		t.Fatal(err)
	}
	members["seq"] = float64(42)
	members["prev"] = hex.EncodeToString(prev)
	members["hash"] = hex.EncodeToString(e.Hash)
	if diff := cmp.Diff(members, got); diff != "" {
		t.Errorf("MarshalEntry members differ (-want +got):\n%s", diff)
	}
	// The body is copied byte for byte after the chain members.
	if want := `{"seq":42,"prev":"` + hex.EncodeToString(prev) + `","hash":"` + hex.EncodeToString(e.Hash) + `",` + string(body[1:]); string(out) != want {
		t.Errorf("MarshalEntry =\n%s\nwant\n%s", out, want)
	}
	if !strings.HasPrefix(string(out), `{"seq":42,`) {
		t.Errorf("seq is not first: %s", out)
	}

	// An empty body still gives a JSON object.
	empty := audit.MarshalEntry(sigil.AuditEntry{Seq: 1, Prev: audit.ZeroHash, Hash: prev, Body: []byte(`{}`)})
	if !json.Valid(empty) {
		t.Errorf("MarshalEntry of an empty body is not JSON: %s", empty)
	}
}

// jsonBody is the canonical encoding as documented: encoding/json over
// these members, in this order. Encode is written by hand for speed and
// must produce exactly these bytes.
type jsonBody struct {
	Time            string            `json:"time"`
	Node            string            `json:"node,omitempty"`
	Event           audit.Event       `json:"event"`
	Outcome         string            `json:"outcome"`
	Reason          string            `json:"reason,omitempty"`
	ClientID        string            `json:"client_id,omitempty"`
	Subject         string            `json:"sub,omitempty"`
	Act             []string          `json:"act,omitempty"`
	JTI             string            `json:"jti,omitempty"`
	SubjectTokenJTI string            `json:"subject_token_jti,omitempty"`
	ActorTokenJTI   string            `json:"actor_token_jti,omitempty"`
	Scope           string            `json:"scope,omitempty"`
	Audience        []string          `json:"aud,omitempty"`
	RequestID       string            `json:"request_id,omitempty"`
	Source          string            `json:"source,omitempty"`
	Detail          map[string]string `json:"detail,omitempty"`
}

func referenceEncode(t testing.TB, r *audit.Record) []byte {
	b, err := json.Marshal(jsonBody{
		Time: r.Time.UTC().Format(audit.TimeFormat), Node: r.Node, Event: r.Event, Outcome: r.Outcome,
		Reason: r.Reason, ClientID: r.ClientID, Subject: r.Subject, Act: r.Act, JTI: r.JTI,
		SubjectTokenJTI: r.SubjectTokenJTI, ActorTokenJTI: r.ActorTokenJTI, Scope: r.Scope, Audience: r.Audience, RequestID: r.RequestID, Source: r.Source, Detail: r.Detail,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkEncodeMatchesJSON(t testing.TB, r *audit.Record) {
	got, err := audit.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceEncode(t, r); !bytes.Equal(got, want) {
		t.Fatalf("Encode(%+v) =\n%s\nencoding/json gives\n%s", r, got, want)
	}
}

// TestEncodeMatchesJSON holds the hand-written encoder to encoding/json's
// output on the strings where they could part: escapes, HTML characters,
// control characters, invalid UTF-8, U+2028, empty and nil lists and maps.
func TestEncodeMatchesJSON(t *testing.T) {
	tricky := []string{"", "plain", `quo"te`, `back\slash`, "<script>&amp;</script>", "tab\tnew\nline\r",
		"\x00\x01\x1f\x7f", "\b\f", "héllo wörld", "日本語", "\u2028\u2029", "bad\xffutf8\xc3", "~ !#$%'()*+,-./:;=?@[]^_`{|}"}
	full := fullRecord()
	checkEncodeMatchesJSON(t, &full)
	checkEncodeMatchesJSON(t, &audit.Record{Time: t0})
	checkEncodeMatchesJSON(t, &audit.Record{Time: t0, Act: []string{}, Audience: []string{}, Detail: map[string]string{}})
	for _, s := range tricky {
		r := audit.Record{
			Time: t0.In(time.FixedZone("x", 3600)), Node: s, Event: audit.Event(s), Outcome: s, Reason: s,
			ClientID: s, Subject: s, Act: []string{s, s}, JTI: s, SubjectTokenJTI: s, ActorTokenJTI: s, Scope: s, Audience: []string{s},
			RequestID: s, Source: s, Detail: map[string]string{s: s, "k" + s: "", "": s},
		}
		checkEncodeMatchesJSON(t, &r)
	}
}

// FuzzEncode: for any strings, Encode is encoding/json's output.
func FuzzEncode(f *testing.F) {
	f.Add("a", "b", "c", int64(0))
	f.Add("<&>", "\u2028", "\xff", int64(1_700_000_000_123_456_789))
	f.Fuzz(func(t *testing.T, a, b, c string, ns int64) {
		r := audit.Record{
			Time: time.Unix(0, ns), Node: a, Event: audit.Event(b), Outcome: c, ClientID: a, Subject: b,
			Act: []string{c, a}, JTI: c, SubjectTokenJTI: a, ActorTokenJTI: b, Scope: a, Audience: []string{b}, RequestID: c, Source: a,
			Detail: map[string]string{a: b, c: a},
		}
		checkEncodeMatchesJSON(t, &r)
	})
}
