package authzdetails

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// TypeMCPTool is the built-in type: the tools an agent may call on one
// MCP server (or any JSON-RPC tool server the gateway guards).
const TypeMCPTool = "mcp_tool"

// Types lists the supported types, as authorization_details_types_supported
// names them in the metadata (RFC 9396 §10).
var Types = []string{TypeMCPTool}

// Limits on a request's authorization_details. They bound what a client
// can make the server parse, keep on the consent page and sign into every
// token: MaxBytes keeps an access token that carries the list well under
// the 8 KiB many proxies allow a request header.
const (
	// MaxBytes bounds the parameter's JSON text.
	MaxBytes = 4 << 10
	// MaxEntries bounds the objects in the array.
	MaxEntries = 8
	// MaxTools bounds the tools of one mcp_tool object.
	MaxTools = 32
	// MaxToolName bounds a tool name, as MCP does (128 characters).
	MaxToolName = 128
	// MaxResource bounds a resource URI.
	MaxResource = 512
)

// ErrInvalid is wrapped by every error of Parse and Within: the request
// is refused with invalid_authorization_details (RFC 9396 §5).
var ErrInvalid = errors.New("invalid authorization details")

// Detail is one authorization details object (RFC 9396 §2). For
// TypeMCPTool, Resource is the tool server's URI, compared exactly as the
// resource indicators of RFC 8707 are, and Tools the names of the tools
// that may be called there.
type Detail struct {
	Type     string   `json:"type"`
	Resource string   `json:"resource,omitempty"`
	Tools    []string `json:"tools,omitempty"`
}

// List is an authorization_details array. A nil List is no
// authorization details; Parse never returns an empty, non-nil one.
type List []Detail

// invalid returns an error wrapping ErrInvalid.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: authorization_details "+format, append([]any{ErrInvalid}, args...)...)
}

// Parse reads the authorization_details parameter of a request: a JSON
// array of objects, each of a supported type and conforming to it. Any
// error wraps ErrInvalid and says what is wrong without repeating more
// than a short, harmless part of the input.
func Parse(raw string) (List, error) {
	if len(raw) > MaxBytes {
		return nil, invalid("is longer than %d bytes", MaxBytes)
	}
	if !utf8.ValidString(raw) {
		// encoding/json would replace invalid bytes with U+FFFD.
		return nil, invalid("is not valid UTF-8")
	}
	if !json.Valid([]byte(raw)) {
		return nil, invalid("is not valid JSON")
	}
	d := json.NewDecoder(strings.NewReader(raw))
	if tok, _ := d.Token(); tok != json.Delim('[') {
		return nil, invalid("must be a JSON array of objects")
	}
	var l List
	for d.More() {
		if len(l) == MaxEntries {
			return nil, invalid("has more than %d objects", MaxEntries)
		}
		det, err := parseDetail(d)
		if err != nil {
			return nil, err
		}
		for _, o := range l {
			if o.Type == det.Type && o.Resource == det.Resource {
				// One object per resource: narrowing compares them pairwise.
				return nil, invalid("names resource %s twice; list its tools in one object", det.Resource)
			}
		}
		l = append(l, det)
	}
	if len(l) == 0 {
		return nil, invalid("must hold at least one object")
	}
	return l, nil
}

// parseDetail reads one object of the array, matching member names
// exactly and refusing repeats.
func parseDetail(d *json.Decoder) (Detail, error) {
	if tok, _ := d.Token(); tok != json.Delim('{') {
		return Detail{}, invalid("must be a JSON array of objects")
	}
	var typ, resource, tools json.RawMessage
	var unknown string
	var seen []string
	for d.More() {
		tok, _ := d.Token() // a valid document: a member name
		name, _ := tok.(string)
		if slices.Contains(seen, name) {
			return Detail{}, invalid("repeats member %s", shortName(name))
		}
		seen = append(seen, name)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return Detail{}, invalid("is not valid JSON")
		}
		switch name {
		case "type":
			typ = v
		case "resource":
			resource = v
		case "tools":
			tools = v
		default:
			if unknown == "" {
				unknown = name
			}
		}
	}
	d.Token() // '}'
	var det Detail
	switch {
	case typ == nil:
		return det, invalid("objects need a type")
	case !isString(typ) || json.Unmarshal(typ, &det.Type) != nil:
		return det, invalid("type must be a string")
	case det.Type == "":
		return det, invalid("type must not be empty")
	case det.Type != TypeMCPTool:
		return det, invalid("type %s is not supported (supported: %s)", shortName(det.Type), strings.Join(Types, ", "))
	case unknown != "":
		// RFC 9396 §5: details not conforming to their type are refused,
		// so a member a client meant as a restriction is never dropped.
		return det, invalid("member %s is not defined for type %s", shortName(unknown), det.Type)
	case resource == nil:
		return det, invalid("type %s needs a resource", det.Type)
	case !isString(resource) || json.Unmarshal(resource, &det.Resource) != nil:
		return det, invalid("resource must be a string")
	}
	if err := CheckResource(det.Resource); err != nil {
		return det, err
	}
	if tools == nil {
		return det, invalid("type %s needs tools", det.Type)
	}
	if tools[0] != '[' || json.Unmarshal(tools, &det.Tools) != nil {
		// Unmarshal into []string refuses numbers and objects; a null
		// element reads as "", which ValidToolName refuses below.
		return det, invalid("tools must be an array of strings")
	}
	switch n := len(det.Tools); {
	case n == 0:
		return det, invalid("tools must name at least one tool")
	case n > MaxTools:
		return det, invalid("names more than %d tools for one resource", MaxTools)
	}
	for i, t := range det.Tools {
		if !ValidToolName(t) {
			return det, invalid("tool names are 1 to %d of the characters A-Z a-z 0-9 _ - .", MaxToolName)
		}
		if slices.Contains(det.Tools[:i], t) {
			return det, invalid("names tool %s twice", t)
		}
	}
	return det, nil
}

// isString reports whether a raw JSON value is a string (not null, which
// encoding/json would decode into "" without complaint).
func isString(v json.RawMessage) bool { return len(v) > 0 && v[0] == '"' }

// shortName quotes a member name or type for an error, cut to a bounded,
// printable ASCII form: the description goes back to the client.
func shortName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 40 {
			b.WriteString("...")
			break
		}
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return `"` + b.String() + `"`
}

// ValidToolName reports whether s is a tool name MCP recommends: 1 to
// MaxToolName ASCII letters, digits, '_', '-' and '.'. Anything else (a
// space, a look-alike letter from another script, a zero-width
// character, a wildcard) is refused rather than normalised, so the name
// on the consent page is the name in the token, byte for byte.
func ValidToolName(s string) bool {
	if len(s) == 0 || len(s) > MaxToolName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// CheckResource says why s cannot be an mcp_tool resource: it must be an
// absolute https URI with a host (http only on a loopback IP address, for
// development), written in URI characters only (RFC 3986 §2; no
// non-ASCII look-alikes on the consent page), without user information,
// query or fragment, and at most MaxResource bytes. It is compared with
// the client's audiences and with tokens' details exactly, as resource
// indicators are.
func CheckResource(s string) error {
	if len(s) > MaxResource {
		return invalid("resource is longer than %d bytes", MaxResource)
	}
	for i := 0; i < len(s); i++ {
		if !uriChar(s[i]) {
			return invalid("resource must be written in URI characters (RFC 3986)")
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return invalid("resource must be an absolute URI with a host")
	case !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://"):
		return invalid("resource must be an https URI")
	case u.User != nil:
		return invalid("resource must not carry user information")
	case strings.ContainsAny(s, "?#"):
		return invalid("resource must not have a query or fragment")
	case u.Scheme == "http":
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			return invalid("resource must be https (http only on a loopback IP address)")
		}
	}
	return nil
}

// uriChar reports whether c may appear in a URI (RFC 3986 §2: unreserved,
// reserved, and '%' of percent-encoding).
func uriChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-._~:/?#[]@!$&'()*+,;=%", c) >= 0
}

// find returns the object of type typ for resource, or nil.
func (l List) find(typ, resource string) *Detail {
	for i := range l {
		if l[i].Type == typ && l[i].Resource == resource {
			return &l[i]
		}
	}
	return nil
}

// Within reports, with an error wrapping ErrInvalid, how l asks for more
// than granted: an object of a type or resource that granted has no
// object for, or a tool granted's object for that resource does not list.
// Nil means l is granted or narrower. Every type supported so far is
// narrowed this way; a new type needs its own rule here.
func (l List) Within(granted List) error {
	for _, d := range l {
		g := granted.find(d.Type, d.Resource)
		if g == nil {
			if len(granted) == 0 {
				return invalid("cannot be added: the grant carries none")
			}
			return invalid("asks for %s on %s, which was not granted", d.Type, d.Resource)
		}
		for _, t := range d.Tools {
			if !slices.Contains(g.Tools, t) {
				return invalid("asks for tool %s on %s, which was not granted", t, d.Resource)
			}
		}
	}
	return nil
}

// Filter returns the objects of l whose resource keep accepts, nil when
// none is left. l is not changed.
func (l List) Filter(keep func(resource string) bool) List {
	var out List
	for _, d := range l {
		if keep(d.Resource) {
			out = append(out, d)
		}
	}
	return out
}

// Resources returns the resources l names, each once, in order.
func (l List) Resources() []string {
	var out []string
	for _, d := range l {
		if d.Resource != "" && !slices.Contains(out, d.Resource) {
			out = append(out, d.Resource)
		}
	}
	return out
}

// AllowsTool reports whether l grants calling tool on resource: an
// mcp_tool object for exactly that resource lists exactly that tool. Nil
// (no authorization details) allows no tool; whether a token without
// details may call tools on its scopes alone is the resource server's
// policy, not this method's.
func (l List) AllowsTool(resource, tool string) bool {
	for _, d := range l {
		if d.Type == TypeMCPTool && d.Resource == resource && slices.Contains(d.Tools, tool) {
			return true
		}
	}
	return false
}

// Encode returns l as compact JSON, "" for a nil or empty list: the form
// stores keep it in. It does not escape '&' as encoding/json does by
// default ('<' and '>' never pass Parse): a resource may hold '&', and
// an escaped one is six bytes, so a list Parse accepted near MaxBytes
// would encode past it and Decode would refuse the stored code or
// refresh family. Unescaped, Encode of a parsed list is never longer than
// the request it came from.
func (l List) Encode() string {
	if len(l) == 0 {
		return ""
	}
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(l); err != nil {
		panic(err) // strings and string slices always encode
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Decode reads a list Encode wrote: "" is nil; anything else must pass
// Parse.
func Decode(s string) (List, error) {
	if s == "" {
		return nil, nil
	}
	return Parse(s)
}
