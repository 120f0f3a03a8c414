package authzdetails_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil/authzdetails"
)

// rfcStyle is the example: one mcp_tool object.
const rfcStyle = `[{"type":"mcp_tool","tools":["search"],"resource":"https://mcp.example"}]`

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      authzdetails.List
	}{
		{"example", rfcStyle, authzdetails.List{{Type: "mcp_tool", Resource: "https://mcp.example", Tools: []string{"search"}}}},
		{"two resources", `[{"type":"mcp_tool","resource":"https://a.example/mcp","tools":["x","y.z","A_b-1"]},
			{"type":"mcp_tool","resource":"https://b.example:8443/mcp/","tools":["q"]}]`,
			authzdetails.List{
				{Type: "mcp_tool", Resource: "https://a.example/mcp", Tools: []string{"x", "y.z", "A_b-1"}},
				{Type: "mcp_tool", Resource: "https://b.example:8443/mcp/", Tools: []string{"q"}},
			}},
		{"loopback http", `[{"type":"mcp_tool","resource":"http://127.0.0.1:9000/mcp","tools":["t"]}]`,
			authzdetails.List{{Type: "mcp_tool", Resource: "http://127.0.0.1:9000/mcp", Tools: []string{"t"}}}},
		{"loopback v6", `[{"type":"mcp_tool","resource":"http://[::1]:9000","tools":["t"]}]`,
			authzdetails.List{{Type: "mcp_tool", Resource: "http://[::1]:9000", Tools: []string{"t"}}}},
		{"escaped member name is the same name", `[{"ty\u0070e":"mcp_tool","resource":"https://m.example","tools":["t"]}]`,
			authzdetails.List{{Type: "mcp_tool", Resource: "https://m.example", Tools: []string{"t"}}}},
		{"white space", " [ { \"type\" : \"mcp_tool\" , \"resource\" : \"https://m.example\" , \"tools\" : [ \"t\" ] } ] \n",
			authzdetails.List{{Type: "mcp_tool", Resource: "https://m.example", Tools: []string{"t"}}}},
		{"largest tool name", `[{"type":"mcp_tool","resource":"https://m.example","tools":["` + strings.Repeat("a", 128) + `"]}]`,
			authzdetails.List{{Type: "mcp_tool", Resource: "https://m.example", Tools: []string{strings.Repeat("a", 128)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := authzdetails.Parse(tc.raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("Parse (-want +got):\n%s", diff)
			}
			// What stores keep reads back the same.
			back, err := authzdetails.Decode(got.Encode())
			if err != nil || !cmp.Equal(got, back) {
				t.Fatalf("Decode(Encode()) = %v, %v", back, err)
			}
		})
	}
}

// TestParseRefuses is the attack table: every input is refused with an
// error wrapping ErrInvalid, never a panic, and the error never repeats
// more than a short printable part of the input.
func TestParseRefuses(t *testing.T) {
	tools := func(names ...string) string {
		b, _ := json.Marshal(names)
		return `[{"type":"mcp_tool","resource":"https://m.example","tools":` + string(b) + `}]`
	}
	resource := func(r string) string {
		b, _ := json.Marshal(r)
		return `[{"type":"mcp_tool","resource":` + string(b) + `,"tools":["t"]}]`
	}
	many := make([]string, 33)
	for i := range many {
		many[i] = "t" + strings.Repeat("x", i)
	}
	entries := make([]string, 9)
	for i := range entries {
		entries[i] = `{"type":"mcp_tool","resource":"https://m` + string(rune('a'+i)) + `.example","tools":["t"]}`
	}
	for _, tc := range []struct{ name, raw, why string }{
		{"empty", ``, "valid JSON"},
		{"not json", `[{"type":`, "valid JSON"},
		{"trailing data", rfcStyle + `[]`, "valid JSON"},
		{"object not array", `{"type":"mcp_tool","resource":"https://m.example","tools":["t"]}`, "array"},
		{"string", `"mcp_tool"`, "array"},
		{"null", `null`, "array"},
		{"empty array", `[]`, "at least one"},
		{"array of strings", `["mcp_tool"]`, "array of objects"},
		{"nested array", `[[{"type":"mcp_tool"}]]`, "array of objects"},
		{"null entry", `[null]`, "array of objects"},
		{"no type", `[{"resource":"https://m.example","tools":["t"]}]`, "need a type"},
		{"type null", `[{"type":null,"resource":"https://m.example","tools":["t"]}]`, "type must be a string"},
		{"type number", `[{"type":1}]`, "type must be a string"},
		{"type array", `[{"type":["mcp_tool"]}]`, "type must be a string"},
		{"type empty", `[{"type":""}]`, "not be empty"},
		{"unknown type", `[{"type":"payment_initiation","instructedAmount":{"amount":"1"}}]`, "not supported"},
		{"type case", `[{"type":"MCP_TOOL","resource":"https://m.example","tools":["t"]}]`, "not supported"},
		{"type with nul", `[{"type":"mcp_tool\u0000","resource":"https://m.example","tools":["t"]}]`, "not supported"},
		{"member name case", `[{"Type":"mcp_tool","type":"mcp_tool","resource":"https://m.example","tools":["t"]}]`, "not defined"},
		{"member folding to tools", `[{"type":"mcp_tool","resource":"https://m.example","tools":["t"],"TOOLS":["admin"]}]`, "not defined"},
		{"kelvin sign", "[{\"type\":\"mcp_tool\",\"resource\":\"https://m.example\",\"tools\":[\"t\"],\"\u212aey\":1}]", "not defined"},
		{"actions", `[{"type":"mcp_tool","resource":"https://m.example","tools":["t"],"actions":["read"]}]`, "not defined"},
		{"locations", `[{"type":"mcp_tool","resource":"https://m.example","tools":["t"],"locations":["https://x"]}]`, "not defined"},
		{"duplicate tools member", `[{"type":"mcp_tool","resource":"https://m.example","tools":["t"],"tools":["admin"]}]`, "repeats member"},
		{"duplicate resource member", `[{"type":"mcp_tool","resource":"https://m.example","resource":"https://evil.example","tools":["t"]}]`, "repeats member"},
		{"duplicate type via escape", `[{"type":"x","t\u0079pe":"mcp_tool","resource":"https://m.example","tools":["t"]}]`, "repeats member"},
		{"no resource", `[{"type":"mcp_tool","tools":["t"]}]`, "needs a resource"},
		{"resource null", `[{"type":"mcp_tool","resource":null,"tools":["t"]}]`, "resource must be a string"},
		{"resource array", `[{"type":"mcp_tool","resource":["https://m.example"],"tools":["t"]}]`, "resource must be a string"},
		{"resource relative", resource("/mcp"), "absolute"},
		{"resource no host", resource("https:///mcp"), "host"},
		{"resource opaque", resource("https:m.example"), "host"},
		{"resource urn", resource("urn:sigil:client:x"), "host"},
		{"resource javascript", resource("javascript://m.example/%0aalert(1)"), "https"},
		{"resource http", resource("http://m.example"), "loopback"},
		{"resource http localhost", resource("http://localhost:8080"), "loopback"},
		{"resource upper-case scheme", resource("HTTPS://m.example"), "https"},
		{"resource userinfo", resource("https://user:pw@m.example"), "user information"},
		{"resource fragment", resource("https://m.example/#x"), "query or fragment"},
		{"resource query", resource("https://m.example/?a=b"), "query or fragment"},
		{"resource space", resource("https://m.example/a b"), "URI characters"},
		{"resource angle brackets", resource("https://m.example/<script>"), "URI characters"},
		{"resource quote", resource(`https://m.example/"`), "URI characters"},
		{"resource non-ascii host", resource("https://mсp.example"), "URI characters"}, // Cyrillic с
		{"resource control", resource("https://m.example/\n"), "URI characters"},
		{"resource too long", resource("https://m.example/" + strings.Repeat("a", 512)), "longer than 512"},
		{"no tools", `[{"type":"mcp_tool","resource":"https://m.example"}]`, "needs tools"},
		{"tools null", `[{"type":"mcp_tool","resource":"https://m.example","tools":null}]`, "array of strings"},
		{"tools string", `[{"type":"mcp_tool","resource":"https://m.example","tools":"search"}]`, "array of strings"},
		{"tools numbers", `[{"type":"mcp_tool","resource":"https://m.example","tools":[1]}]`, "array of strings"},
		{"tools objects", `[{"type":"mcp_tool","resource":"https://m.example","tools":[{"name":"t"}]}]`, "array of strings"},
		{"tools null element", `[{"type":"mcp_tool","resource":"https://m.example","tools":["t",null]}]`, "tool names"},
		{"tools empty", `[{"type":"mcp_tool","resource":"https://m.example","tools":[]}]`, "at least one tool"},
		{"tool empty name", tools(""), "tool names"},
		{"tool wildcard", tools("*"), "tool names"},
		{"tool space", tools("search fetch"), "tool names"},
		{"tool slash", tools("admin/delete"), "tool names"},
		{"tool html", tools(`<img src=x onerror=alert(1)>`), "tool names"},
		{"tool cyrillic lookalike", tools("sеarch"), "tool names"}, // Cyrillic е
		{"tool zero-width", tools("sea\u200brch"), "tool names"},
		{"tool rtl override", tools("search\u202e"), "tool names"},
		{"tool fullwidth", tools("ｓearch"), "tool names"},
		{"tool nul", tools("search\x00admin"), "tool names"},
		{"tool too long", tools(strings.Repeat("a", 129)), "tool names"},
		{"tool twice", tools("t", "t"), "twice"},
		{"too many tools", tools(many...), "more than 32 tools"},
		{"resource twice", `[{"type":"mcp_tool","resource":"https://m.example","tools":["a"]},{"type":"mcp_tool","resource":"https://m.example","tools":["b"]}]`, "twice"},
		{"too many entries", `[` + strings.Join(entries, ",") + `]`, "more than 8 objects"},
		{"too large", `[{"type":"mcp_tool","resource":"https://m.example","tools":["` + strings.Repeat("a", 4096) + `"]}]`, "longer than 4096 bytes"},
		{"deep nesting", strings.Repeat("[", 2000) + strings.Repeat("]", 2000), "array of objects"},
		{"invalid utf-8", "[{\"type\":\"mcp_tool\",\"resource\":\"https://m.example\",\"tools\":[\"t\xff\"]}]", "UTF-8"},
		{"invalid utf-8 name", "[{\"type\":\"mcp_tool\",\"\xffresource\":\"https://m.example\",\"tools\":[\"t\"]}]", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := authzdetails.Parse(tc.raw)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tc.raw, l)
			}
			if !errors.Is(err, authzdetails.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error is %d bytes long: %q", len(err.Error()), err)
			}
		})
	}
}

func TestWithin(t *testing.T) {
	granted := authzdetails.List{
		{Type: "mcp_tool", Resource: "https://a.example", Tools: []string{"search", "fetch"}},
		{Type: "mcp_tool", Resource: "https://b.example", Tools: []string{"x"}},
	}
	for _, tc := range []struct {
		name string
		req  authzdetails.List
		ok   bool
	}{
		{"same", granted, true},
		{"subset of tools", authzdetails.List{{Type: "mcp_tool", Resource: "https://a.example", Tools: []string{"fetch"}}}, true},
		{"one resource", authzdetails.List{{Type: "mcp_tool", Resource: "https://b.example", Tools: []string{"x"}}}, true},
		{"nothing", nil, true},
		{"extra tool", authzdetails.List{{Type: "mcp_tool", Resource: "https://a.example", Tools: []string{"search", "delete"}}}, false},
		{"tool of another resource", authzdetails.List{{Type: "mcp_tool", Resource: "https://b.example", Tools: []string{"search"}}}, false},
		{"other resource", authzdetails.List{{Type: "mcp_tool", Resource: "https://c.example", Tools: []string{"x"}}}, false},
		{"resource differing in case", authzdetails.List{{Type: "mcp_tool", Resource: "https://A.example", Tools: []string{"search"}}}, false},
		{"resource with trailing slash", authzdetails.List{{Type: "mcp_tool", Resource: "https://a.example/", Tools: []string{"search"}}}, false},
		{"tool differing in case", authzdetails.List{{Type: "mcp_tool", Resource: "https://a.example", Tools: []string{"Search"}}}, false},
		{"other type", authzdetails.List{{Type: "other", Resource: "https://a.example", Tools: []string{"search"}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Within(granted)
			if (err == nil) != tc.ok {
				t.Fatalf("Within = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, authzdetails.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
	if err := granted.Within(nil); err == nil {
		t.Error("details are within no grant at all")
	}
}

func TestAllowsTool(t *testing.T) {
	l := authzdetails.List{
		{Type: "mcp_tool", Resource: "https://a.example/mcp", Tools: []string{"search", "fetch"}},
		{Type: "other", Resource: "https://b.example", Tools: []string{"x"}},
	}
	for _, tc := range []struct {
		resource, tool string
		want           bool
	}{
		{"https://a.example/mcp", "search", true},
		{"https://a.example/mcp", "fetch", true},
		{"https://a.example/mcp", "delete", false},
		{"https://a.example/mcp", "Search", false},
		{"https://a.example/mcp", "", false},
		{"https://a.example/mcp/", "search", false},
		{"https://a.example", "search", false},
		{"https://b.example", "x", false}, // not an mcp_tool object
		{"", "", false},
	} {
		if got := l.AllowsTool(tc.resource, tc.tool); got != tc.want {
			t.Errorf("AllowsTool(%q, %q) = %v, want %v", tc.resource, tc.tool, got, tc.want)
		}
	}
	if authzdetails.List(nil).AllowsTool("https://a.example/mcp", "search") {
		t.Error("no details allow a tool")
	}
}

func TestFilterAndResources(t *testing.T) {
	l := authzdetails.List{
		{Type: "mcp_tool", Resource: "https://a.example", Tools: []string{"s"}},
		{Type: "mcp_tool", Resource: "https://b.example", Tools: []string{"x"}},
	}
	if got := l.Resources(); !cmp.Equal(got, []string{"https://a.example", "https://b.example"}) {
		t.Errorf("Resources = %v", got)
	}
	kept := l.Filter(func(r string) bool { return r == "https://b.example" })
	if !cmp.Equal(kept, l[1:]) {
		t.Errorf("Filter = %v", kept)
	}
	if got := l.Filter(func(string) bool { return false }); got != nil {
		t.Errorf("Filter of nothing = %#v, want nil", got)
	}
	if authzdetails.List(nil).Encode() != "" {
		t.Error("nil encodes as text")
	}
	if l, err := authzdetails.Decode(""); l != nil || err != nil {
		t.Errorf(`Decode("") = %v, %v`, l, err)
	}
}

// FuzzParse: Parse never panics; what it accepts is within the limits,
// re-encodes to JSON that parses to the same list, and is within itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		rfcStyle, `[]`, `{}`, `null`, `[{"type":"mcp_tool"}]`,
		`[{"type":"mcp_tool","resource":"http://[::1]","tools":["a","b"]}]`,
		`[{"type":"mcp_tool","resource":"https://m.example","tools":["t"],"tools":["u"]}]`,
		`[{"type":"mcp_tool","resource":"https://m.example","tools":["t"]},{"type":"mcp_tool","resource":"https://m.example","tools":["u"]}]`,
		"[{\"type\":\"mcp_tool\",\"resource\":\"https://m.example\",\"tools\":[\"\xff\"]}]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		l, err := authzdetails.Parse(raw)
		if err != nil {
			if !errors.Is(err, authzdetails.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if len(l) == 0 || len(l) > authzdetails.MaxEntries {
			t.Fatalf("accepted %d objects", len(l))
		}
		for _, d := range l {
			if d.Type != authzdetails.TypeMCPTool || authzdetails.CheckResource(d.Resource) != nil ||
				len(d.Tools) == 0 || len(d.Tools) > authzdetails.MaxTools {
				t.Fatalf("accepted %+v", d)
			}
			for _, tool := range d.Tools {
				if !authzdetails.ValidToolName(tool) {
					t.Fatalf("accepted tool %q", tool)
				}
			}
		}
		back, err := authzdetails.Parse(l.Encode())
		if err != nil || !cmp.Equal(l, back) {
			t.Fatalf("Parse(Encode()) = %v, %v; want %v", back, err, l)
		}
		if err := l.Within(l); err != nil {
			t.Fatalf("not within itself: %v", err)
		}
	})
}

// TestEncodeFitsParse: what Encode writes for a list Parse accepted is
// never longer than the request was, so Decode (a store's code or refresh
// family) reads every accepted list back, even one at MaxBytes whose
// resource holds a character encoding/json escapes for HTML ('&').
func TestEncodeFitsParse(t *testing.T) {
	raw := largestDetails("https://tools.example/a&b&c")
	l, err := authzdetails.Parse(raw)
	if err != nil {
		t.Fatalf("Parse(%d bytes): %v", len(raw), err)
	}
	enc := l.Encode()
	if len(enc) > len(raw) {
		t.Errorf("Encode wrote %d bytes for a request of %d", len(enc), len(raw))
	}
	back, err := authzdetails.Decode(enc)
	if err != nil {
		t.Fatalf("Decode(Encode(l)): %v", err)
	}
	if !cmp.Equal(back, l) {
		t.Errorf("Decode(Encode(l)) = %v, want %v", back, l)
	}
}

// largestDetails is an mcp_tool list for resource of exactly MaxBytes,
// written compactly: MaxTools tools, the first padded to fill.
func largestDetails(resource string) string {
	tools := make([]string, authzdetails.MaxTools)
	for i := range tools {
		tools[i] = fmt.Sprintf("t%02d", i)
	}
	build := func() string {
		return `[{"type":"mcp_tool","resource":"` + resource + `","tools":["` + strings.Join(tools, `","`) + `"]}]`
	}
	tools[0] += strings.Repeat("x", authzdetails.MaxToolName-len(tools[0]))
	for i := 1; len(build()) < authzdetails.MaxBytes; i++ {
		pad := min(authzdetails.MaxBytes-len(build()), authzdetails.MaxToolName-len(tools[i]))
		tools[i] += strings.Repeat("x", pad)
	}
	return build()
}
