package token_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/token"
)

func TestClaimsJSON(t *testing.T) {
	tests := []struct {
		name   string
		claims token.Claims
		want   string
	}{
		{"empty", token.Claims{}, `{}`},
		{"one audience is a string", token.Claims{Audience: token.Audience{"a"}}, `{"aud":"a"}`},
		{"two audiences are an array", token.Claims{Audience: token.Audience{"a", "b"}}, `{"aud":["a","b"]}`},
		{"extra only", token.Claims{Extra: map[string]any{"role": "x"}}, `{"role":"x"}`},
		{"registered then extra", token.Claims{Issuer: "i", Extra: map[string]any{"role": "x"}}, `{"iss":"i","role":"x"}`},
		{"extra never overrides", token.Claims{Issuer: "i", Extra: map[string]any{"iss": "evil", "Iss": "evil", "cnf": 1}}, `{"iss":"i"}`},
		{"dates are integers", token.Claims{Expiry: 1700000000}, `{"exp":1700000000}`},
		{"authorization details after status", token.Claims{
			Status: &token.Status{}, Extra: map[string]any{"authorization_details": "evil", "z": 1},
			AuthorizationDetails: authzdetails.List{{Type: "mcp_tool", Resource: "https://m.example", Tools: []string{"search", "fetch"}}},
		}, `{"status":{},"authorization_details":[{"type":"mcp_tool","resource":"https://m.example","tools":["search","fetch"]}],"z":1}`},
		{"authorization details escaped", token.Claims{AuthorizationDetails: authzdetails.List{{Type: "<x>", Tools: []string{"&"}}, {}}},
			`{"authorization_details":[{"type":"\u003cx\u003e","tools":["\u0026"]},{"type":""}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("Marshal = %s, want %s", b, tt.want)
			}
		})
	}
}

func TestClaimsUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    token.Claims
		wantErr bool
	}{
		{"RFC 9068 §2.2 example", rfc9068Claims, token.Claims{
			Issuer: "https://authorization-server.example.com/", Subject: "5ba552d67",
			Audience: token.Audience{"https://rs.example.com/"}, Expiry: 1639528912, IssuedAt: 1618354090,
			JTI: "dbe39bf3a3ba4238a513f51d6e1691c4", ClientID: "s6BhdRkqt3", Scope: "openid profile reademail",
		}, false},
		{"aud array", `{"aud":["a","b"]}`, token.Claims{Audience: token.Audience{"a", "b"}}, false},
		{"fractional date truncated", `{"exp":1700000000.9}`, token.Claims{Expiry: 1700000000}, false},
		{"exponent date", `{"exp":1.7e9}`, token.Claims{Expiry: 1700000000}, false},
		{"extra numbers stay exact", `{"n":12345678901234567890}`, token.Claims{Extra: map[string]any{"n": json.Number("12345678901234567890")}}, false},
		{"act and may_act are fields", `{"act":{"sub":"y","iss":"i","act":{"sub":"w","x":1}},"may_act":{"sub":"z"}}`,
			token.Claims{Act: &token.Actor{Subject: "y", Issuer: "i", Act: &token.Actor{Subject: "w"}}, MayAct: &token.Actor{Subject: "z"}}, false},
		{"act without sub", `{"act":{"iss":"i"}}`, token.Claims{}, true},
		{"act a string", `{"act":"y"}`, token.Claims{}, true},
		{"act null", `{"act":null}`, token.Claims{}, true},
		{"act nested too deep", `{"act":` + strings.Repeat(`{"sub":"a","act":`, token.MaxActorDepth) + `{"sub":"b"}` + strings.Repeat(`}`, token.MaxActorDepth) + `}`, token.Claims{}, true},
		{"cnf is a field", `{"cnf":{"jkt":"x"}}`, token.Claims{Confirmation: &token.Confirmation{JKT: "x"}}, false},
		{"null claims", `null`, token.Claims{}, false},
		{"aud null is no audience", `{"aud":null}`, token.Claims{}, false},
		{"negative date", `{"exp":-5}`, token.Claims{}, true},
		{"date beyond 2^53", `{"exp":1e300}`, token.Claims{}, true},
		{"string date", `{"iat":"now"}`, token.Claims{}, true},
		{"iss number", `{"iss":1}`, token.Claims{}, true},
		{"aud object", `{"aud":{"a":1}}`, token.Claims{}, true},
		{"array", `[]`, token.Claims{}, true},
		{"truncated", `{"iss":"a"`, token.Claims{}, true},
		{"authorization details", `{"authorization_details":[{"type":"mcp_tool","resource":"https://m.example","tools":["a","b"]}]}`,
			token.Claims{AuthorizationDetails: authzdetails.List{{Type: "mcp_tool", Resource: "https://m.example", Tools: []string{"a", "b"}}}}, false},
		{"authorization details of another type keep their type", `{"authorization_details":[{"type":"payment","amount":"1","Tools":["x"]}]}`,
			token.Claims{AuthorizationDetails: authzdetails.List{{Type: "payment"}}}, false},
		{"authorization details empty", `{"authorization_details":[]}`, token.Claims{}, false},
		{"authorization details null", `{"authorization_details":null}`, token.Claims{}, false},
		{"authorization details names are exact", `{"authorization_details":[{"type":"mcp_tool","RESOURCE":"https://evil.example","TOOLS":["admin"]}]}`,
			token.Claims{AuthorizationDetails: authzdetails.List{{Type: "mcp_tool"}}}, false},
		{"authorization details not an array", `{"authorization_details":{"type":"mcp_tool"}}`, token.Claims{}, true},
		{"authorization details string", `{"authorization_details":"[]"}`, token.Claims{}, true},
		{"authorization details without type", `{"authorization_details":[{"resource":"r"}]}`, token.Claims{}, true},
		{"authorization details null entry", `{"authorization_details":[null]}`, token.Claims{}, true},
		{"authorization details type null", `{"authorization_details":[{"type":null}]}`, token.Claims{}, true},
		{"authorization details resource number", `{"authorization_details":[{"type":"t","resource":1}]}`, token.Claims{}, true},
		{"authorization details resource null", `{"authorization_details":[{"type":"t","resource":null}]}`, token.Claims{}, true},
		{"authorization details tools string", `{"authorization_details":[{"type":"t","tools":"x"}]}`, token.Claims{}, true},
		{"authorization details tools numbers", `{"authorization_details":[{"type":"t","tools":[1]}]}`, token.Claims{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c token.Claims
			err := json.Unmarshal([]byte(tt.in), &c)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Unmarshal = %+v, want an error", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestClaimsUnmarshalCoversEveryField guards the hand-written decoder:
// every JSON member of Claims must decode into its field.
func TestClaimsUnmarshalCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[token.Claims]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || name == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if !token.IsRegistered(name) {
				t.Errorf("field %s (%q) is not in Registered", f.Name, name)
			}
			val := `"x"`
			switch f.Type {
			case reflect.TypeFor[token.NumericDate]():
				val = `42`
			case reflect.TypeFor[[]string]():
				val = `["x"]`
			case reflect.TypeFor[*token.Confirmation]():
				val = `{"jkt":"x"}`
			case reflect.TypeFor[*token.Status]():
				val = `{"status_list":{"idx":1,"uri":"x"}}`
			case reflect.TypeFor[*token.Actor]():
				val = `{"sub":"x"}`
			case reflect.TypeFor[authzdetails.List]():
				val = `[{"type":"x"}]`
			}
			var c token.Claims
			if err := json.Unmarshal([]byte(`{"`+name+`":`+val+`}`), &c); err != nil {
				t.Fatal(err)
			}
			if reflect.ValueOf(c).Field(i).IsZero() {
				t.Errorf("member %q did not set field %s", name, f.Name)
			}
		})
	}
}

func TestIsRegistered(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"iss", true}, {"client_id", true}, {"cnf", true}, {"may_act", true},
		{"ISS", true}, {"Client_ID", true}, {"ſub", true}, {"ſcope", true},
		{"role", false}, {"issuer", false}, {"", false}, {"iss ", false},
	}
	for _, tt := range tests {
		if got := token.IsRegistered(tt.name); got != tt.want {
			t.Errorf("IsRegistered(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNumericDate(t *testing.T) {
	if got := token.NewNumericDate(time.Unix(1700000000, 999999999)); got != 1700000000 {
		t.Errorf("NewNumericDate dropped to %d", got)
	}
	if !token.NumericDate(0).Time().IsZero() {
		t.Error("zero NumericDate is not the zero time")
	}
	if got := token.NumericDate(1700000000).Time(); !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("Time = %v", got)
	}
}

func TestTypeIs(t *testing.T) {
	tests := []struct {
		typ, want string
		ok        bool
	}{
		{"at+jwt", "at+jwt", true},
		{"at+JWT", "at+jwt", true},
		{"application/at+jwt", "at+jwt", true},
		{"APPLICATION/AT+JWT", "at+jwt", true},
		{"JWT", "at+jwt", false},
		{"", "at+jwt", false},
		{"application/", "at+jwt", false},
		{"application/jwt", "at+jwt", false},
		{"text/at+jwt", "at+jwt", false},
		{"at+jwt ", "at+jwt", false},
		{"application/application/at+jwt", "at+jwt", false},
	}
	for _, tt := range tests {
		if got := token.TypeIs(tt.typ, tt.want); got != tt.ok {
			t.Errorf("TypeIs(%q, %q) = %v, want %v", tt.typ, tt.want, got, tt.ok)
		}
	}
}

func TestSplitScope(t *testing.T) {
	if diff := cmp.Diff([]string{"a", "b"}, token.SplitScope("  a \t b ")); diff != "" {
		t.Error(diff)
	}
	if got := token.SplitScope(""); got != nil {
		t.Errorf("SplitScope(\"\") = %q", got)
	}
}

// rfc9068Claims is the access token payload of RFC 9068 §2.2 (with the
// example's spacing).
const rfc9068Claims = `{"iss": "https://authorization-server.example.com/",
  "sub": "5ba552d67",
  "aud":   "https://rs.example.com/",
  "exp": 1639528912,
  "iat": 1618354090,
  "jti" : "dbe39bf3a3ba4238a513f51d6e1691c4",
  "client_id": "s6BhdRkqt3",
  "scope": "openid profile reademail"}`

// rfc9068Header is the header of the RFC 9068 §2.2 example.
const rfc9068Header = `{"typ":"at+JWT","alg":"RS256","kid":"RjEwOwOA"}`

// claimsRoundTrip is the comparison FuzzClaimsUnmarshal uses: an empty
// audience list and an absent one are the same claim.
var claimsRoundTrip = cmpopts.EquateEmpty()

// TestNewJTI: identifiers carry 128 random bits after a millisecond time
// prefix, so they are unique and sort by issuance time.
func TestNewJTI(t *testing.T) {
	t0 := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	a, b := token.NewJTI(t0), token.NewJTI(t0)
	if len(a) != 36 || a == b || a[:9] != b[:9] {
		t.Fatalf("NewJTI = %q, %q: want 36 characters, a shared time prefix, different random parts", a, b)
	}
	// Every step of a millisecond, over more than the 32 values of the
	// last time character, sorts after the one before.
	prev := a
	for i := 1; i <= 2000; i++ {
		next := token.NewJTI(t0.Add(time.Duration(i) * time.Millisecond))
		if next <= prev {
			t.Fatalf("jti %q (t0+%dms) does not sort after %q", next, i, prev)
		}
		prev = next
	}
	if next := token.NewJTI(t0.Add(365 * 24 * time.Hour)); next <= prev {
		t.Errorf("a jti a year later %q sorts before %q", next, prev)
	}
}

// TestConfirmationExactNames: cnf's jkt is matched exactly, like the
// registered claims; "JKT" binds nothing.
func TestConfirmationExactNames(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{`{"cnf":{"jkt":"abc"}}`, "abc"},
		{`{"cnf":{"JKT":"abc"}}`, ""},
		{`{"cnf":{"x5t#S256":"abc"}}`, ""},
	} {
		var c token.Claims
		if err := json.Unmarshal([]byte(tt.in), &c); err != nil {
			t.Fatal(err)
		}
		if got := c.BoundKey(); got != tt.want {
			t.Errorf("%s: BoundKey() = %q, want %q", tt.in, got, tt.want)
		}
	}
	var c token.Claims
	if err := json.Unmarshal([]byte(`{"cnf":"abc"}`), &c); err == nil {
		t.Error(`cnf "abc" decoded; want an error`)
	}
}

// TestStatusJTI: the status list entry and the issue time round-trip
// through the identifier; identifiers stay unique and time-ordered, and
// other strings are not read as positions.
func TestStatusJTI(t *testing.T) {
	t0 := time.Date(2031, 5, 6, 7, 8, 9, 123e6, time.UTC)
	a, b := token.NewStatusJTI(t0, 7, 1<<20-1), token.NewStatusJTI(t0, 7, 1<<20-1)
	if len(a) != 40 || a == b {
		t.Fatalf("NewStatusJTI = %q, %q: want 40 characters and different random parts", a, b)
	}
	issued, list, idx, ok := token.StatusOfJTI(a)
	if !ok || !issued.Equal(t0) || list != 7 || idx != 1<<20-1 {
		t.Fatalf("StatusOfJTI(%q) = %v, %d, %d, %v; want %v, 7, %d, true", a, issued, list, idx, ok, t0, 1<<20-1)
	}
	if later := token.NewStatusJTI(t0.Add(time.Millisecond), 0, 0); later <= a {
		t.Errorf("a jti a millisecond later %q sorts before %q", later, a)
	}
	for _, s := range []string{"", token.NewJTI(t0), a[:39], a + "0", strings.ToLower(a), a[:39] + "Z"} {
		if _, _, _, ok := token.StatusOfJTI(s); ok {
			t.Errorf("StatusOfJTI(%q) ok, want not a status jti", s)
		}
	}
}

// TestStatusClaim: the status claim round-trips, its member names are
// matched exactly, and a status_list without a well-formed idx or uri is
// an error rather than a token without status.
func TestStatusClaim(t *testing.T) {
	in := token.Claims{Subject: "s", Status: &token.Status{List: &token.StatusListRef{Index: 42, URI: "https://issuer.example/statuslists/3"}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"sub":"s","status":{"status_list":{"idx":42,"uri":"https://issuer.example/statuslists/3"}}}`; string(b) != want {
		t.Fatalf("encoded %s, want %s", b, want)
	}
	var out token.Claims
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if ref := out.StatusList(); ref == nil || *ref != *in.Status.List {
		t.Fatalf("decoded status %+v, want %+v", ref, in.Status.List)
	}
	for _, tt := range []struct {
		in   string
		ok   bool
		list bool
	}{
		{`{"status":{}}`, true, false},
		{`{"status":{"STATUS_LIST":{"idx":1,"uri":"u"}}}`, true, false},
		{`{"status":{"status_list":{"idx":1}}}`, false, false},
		{`{"status":{"status_list":{"uri":"u"}}}`, false, false},
		{`{"status":{"status_list":{"idx":-1,"uri":"u"}}}`, false, false},
		{`{"status":{"status_list":{"idx":1.5,"uri":"u"}}}`, false, false},
		{`{"status":{"status_list":{"idx":"1","uri":"u"}}}`, false, false},
		{`{"status":{"status_list":{"idx":1,"uri":""}}}`, false, false},
		{`{"status":{"status_list":{"idx":1,"uri":7}}}`, false, false},
		{`{"status":"x"}`, false, false},
		{`{"status":{"status_list":{"idx":1,"uri":"u"}}}`, true, true},
	} {
		var c token.Claims
		err := json.Unmarshal([]byte(tt.in), &c)
		if (err == nil) != tt.ok || (c.StatusList() != nil) != tt.list {
			t.Errorf("%s: err %v, list %+v; want ok %v, list %v", tt.in, err, c.StatusList(), tt.ok, tt.list)
		}
	}
}

// TestActorRoundTrip: a delegation chain encodes and decodes to itself,
// and the deepest chain Parse accepts is MaxActorDepth long.
func TestActorRoundTrip(t *testing.T) {
	var chain *token.Actor
	for i := range token.MaxActorDepth {
		chain = &token.Actor{Subject: fmt.Sprintf("agent-%d", i), Act: chain}
	}
	chain.Issuer = "https://other.example"
	in := token.Claims{Subject: "alice", Act: chain, MayAct: &token.Actor{Subject: "agent-1"}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out token.Claims
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if d := out.Act.Depth(); d != token.MaxActorDepth {
		t.Errorf("Depth = %d", d)
	}
	if c := out.Act.Chain(); len(c) != token.MaxActorDepth || c[0] != fmt.Sprintf("agent-%d", token.MaxActorDepth-1) {
		t.Errorf("Chain = %v", c)
	}
}
