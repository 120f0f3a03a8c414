package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/internal/jsonobj"
)

// Registered lists the claim names that extra claims (a client's ABAC
// entitlements) may never set: RFC 7519 §4.1, RFC 9068 §2.2, RFC 8693 §4,
// RFC 9449 cnf, the status list claim and the OIDC claims with protocol
// meaning.
var Registered = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope",
	"cnf", "act", "may_act", "status", "azp", "nonce", "auth_time", "acr", "amr",
	"authorization_details",
}

// IsRegistered reports whether name is a registered claim name or differs
// from one only in case (Unicode simple folding, as strings.EqualFold and
// encoding/json's member matching use). Claim names are case-sensitive
// (RFC 7519 §4), but verifiers built on encoding/json match struct fields
// case-insensitively, so an extra claim "ISS" or "ſub" would be read as iss
// or sub there: such names are treated as registered and never emitted
// from Extra.
func IsRegistered(name string) bool {
	return slices.ContainsFunc(Registered, func(r string) bool { return strings.EqualFold(r, name) })
}

// Claims are the claims of a Sigil JWT. Extra holds every other claim; on
// encoding, Extra never overrides a registered claim.
type Claims struct {
	Issuer    string      `json:"iss,omitempty"`
	Subject   string      `json:"sub,omitempty"`
	Audience  Audience    `json:"aud,omitempty"`
	Expiry    NumericDate `json:"exp,omitempty"`
	NotBefore NumericDate `json:"nbf,omitempty"`
	IssuedAt  NumericDate `json:"iat,omitempty"`
	JTI       string      `json:"jti,omitempty"`
	ClientID  string      `json:"client_id,omitempty"`
	Scope     string      `json:"scope,omitempty"`
	// The OpenID Connect claims (Core §2) of ID tokens, and of access
	// tokens issued for a user (RFC 9068 §2.2.1).
	AuthTime        NumericDate `json:"auth_time,omitempty"`
	ACR             string      `json:"acr,omitempty"`
	AMR             []string    `json:"amr,omitempty"`
	AuthorizedParty string      `json:"azp,omitempty"`
	Nonce           string      `json:"nonce,omitempty"`
	// Act is the delegation chain of a token issued by token exchange
	// (RFC 8693 §4.1); MayAct names who may act for the subject (§4.4).
	Act    *Actor `json:"act,omitempty"`
	MayAct *Actor `json:"may_act,omitempty"`
	// Confirmation binds the token to a key (RFC 7800; RFC 9449 §6).
	Confirmation *Confirmation `json:"cnf,omitempty"`
	// Status says where the token's status is published
	// (draft-ietf-oauth-status-list §6.1).
	Status *Status `json:"status,omitempty"`
	// AuthorizationDetails are what the token grants beyond its scopes
	// (RFC 9396 §9.1): for mcp_tool, the tools it may call on which
	// resource. Nil when the grant carried none.
	AuthorizationDetails authzdetails.List `json:"authorization_details,omitempty"`
	Extra                map[string]any    `json:"-"`
}

// Status is the status claim. Only the status_list mechanism is read;
// others are ignored.
type Status struct {
	List *StatusListRef `json:"status_list,omitempty"`
}

// StatusListRef points at the token's entry in a status list: entry Index
// of the Status List Token served at URI.
type StatusListRef struct {
	Index int64  `json:"idx"`
	URI   string `json:"uri"`
}

// StatusList returns the token's status list reference, or nil.
func (c *Claims) StatusList() *StatusListRef {
	if c.Status == nil {
		return nil
	}
	return c.Status.List
}

// Confirmation is the cnf claim: JKT is the RFC 7638 thumbprint of the
// DPoP key the token is bound to.
type Confirmation struct {
	JKT string `json:"jkt,omitempty"`
}

// BoundKey returns the thumbprint of the DPoP key c is bound to, or "".
func (c *Claims) BoundKey() string {
	if c.Confirmation == nil {
		return ""
	}
	return c.Confirmation.JKT
}

type plainClaims Claims // no methods: avoids recursion

// marshalSlow is MarshalJSON through encoding/json: the reference the
// hand-written encoder is held to.
func (c Claims) marshalSlow() ([]byte, error) {
	b, err := json.Marshal(plainClaims(c))
	if err != nil {
		return nil, err
	}
	if len(c.Extra) == 0 {
		return b, nil
	}
	extra := make(map[string]any, len(c.Extra))
	for k, v := range c.Extra {
		if !IsRegistered(k) {
			extra[k] = v
		}
	}
	if len(extra) == 0 {
		return b, nil
	}
	e, err := json.Marshal(extra)
	if err != nil {
		return nil, fmt.Errorf("token: encode extra claims: %w", err)
	}
	if len(b) == 2 { // "{}"
		return e, nil
	}
	out := make([]byte, 0, len(b)+len(e))
	out = append(out, b[:len(b)-1]...)
	out = append(out, ',')
	return append(out, e[1:]...), nil
}

// MarshalJSON encodes the registered claims followed by Extra, skipping any
// Extra member with a registered name: exactly what encoding/json makes of
// the struct's tags and of Extra as a map (FuzzClaimsMarshal holds the two
// equal byte for byte). It is written by hand because it runs for every
// token issued: encoding/json took 3.5 µs for an access token with a
// status claim and two entitlements.
func (c Claims) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 384)
	b = append(b, '{')
	b = appendStringClaim(b, "iss", c.Issuer)
	b = appendStringClaim(b, "sub", c.Subject)
	switch len(c.Audience) {
	case 0:
	case 1:
		b = jsonobj.AppendString(appendName(b, "aud"), c.Audience[0])
	default:
		b = append(appendName(b, "aud"), '[')
		for i, a := range c.Audience {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonobj.AppendString(b, a)
		}
		b = append(b, ']')
	}
	b = appendDateClaim(b, "exp", c.Expiry)
	b = appendDateClaim(b, "nbf", c.NotBefore)
	b = appendDateClaim(b, "iat", c.IssuedAt)
	b = appendStringClaim(b, "jti", c.JTI)
	b = appendStringClaim(b, "client_id", c.ClientID)
	b = appendStringClaim(b, "scope", c.Scope)
	b = appendDateClaim(b, "auth_time", c.AuthTime)
	b = appendStringClaim(b, "acr", c.ACR)
	if len(c.AMR) > 0 {
		b = append(appendName(b, "amr"), '[')
		for i, m := range c.AMR {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonobj.AppendString(b, m)
		}
		b = append(b, ']')
	}
	b = appendStringClaim(b, "azp", c.AuthorizedParty)
	b = appendStringClaim(b, "nonce", c.Nonce)
	if c.Act != nil {
		b = appendActor(appendName(b, "act"), c.Act)
	}
	if c.MayAct != nil {
		b = appendActor(appendName(b, "may_act"), c.MayAct)
	}
	if c.Confirmation != nil {
		b = append(appendName(b, "cnf"), '{')
		if c.Confirmation.JKT != "" {
			b = jsonobj.AppendString(append(b, `"jkt":`...), c.Confirmation.JKT)
		}
		b = append(b, '}')
	}
	if c.Status != nil {
		b = append(appendName(b, "status"), '{')
		if l := c.Status.List; l != nil {
			b = strconv.AppendInt(append(b, `"status_list":{"idx":`...), l.Index, 10)
			b = append(jsonobj.AppendString(append(b, `,"uri":`...), l.URI), '}')
		}
		b = append(b, '}')
	}
	if len(c.AuthorizationDetails) > 0 {
		b = appendDetails(appendName(b, "authorization_details"), c.AuthorizationDetails)
	}
	if len(c.Extra) > 0 {
		names := make([]string, 0, len(c.Extra))
		for k := range c.Extra {
			if !IsRegistered(k) {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		for _, k := range names {
			v, err := json.Marshal(c.Extra[k])
			if err != nil {
				return nil, fmt.Errorf("token: encode extra claims: %w", err)
			}
			b = append(jsonobj.AppendString(appendComma(b), k), ':')
			b = append(b, v...)
		}
	}
	return append(b, '}'), nil
}

// appendDetails appends an authorization_details array as encoding/json
// encodes authzdetails.List.
func appendDetails(b []byte, l authzdetails.List) []byte {
	b = append(b, '[')
	for i, d := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonobj.AppendString(append(b, `{"type":`...), d.Type)
		if d.Resource != "" {
			b = jsonobj.AppendString(append(b, `,"resource":`...), d.Resource)
		}
		if len(d.Tools) > 0 {
			b = append(b, `,"tools":[`...)
			for j, t := range d.Tools {
				if j > 0 {
					b = append(b, ',')
				}
				b = jsonobj.AppendString(b, t)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendComma appends the comma before a member, unless b holds only the
// object's opening brace.
func appendComma(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	return b
}

// appendName appends a member's name (a plain ASCII literal) and colon.
func appendName(b []byte, name string) []byte {
	b = append(appendComma(b), '"')
	return append(append(b, name...), `":`...)
}

// appendStringClaim appends a string member, or nothing when it is empty
// (omitempty).
func appendStringClaim(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return jsonobj.AppendString(appendName(b, name), v)
}

// appendDateClaim appends a NumericDate member, or nothing when it is
// zero (omitempty).
func appendDateClaim(b []byte, name string, d NumericDate) []byte {
	if d == 0 {
		return b
	}
	return strconv.AppendInt(appendName(b, name), int64(d), 10)
}

// UnmarshalJSON decodes registered claims into their fields and every other
// member into Extra. Member names are matched exactly (RFC 7519 §4): unlike
// encoding/json's struct decoding, "ISS" or "ſub" (U+017F) never sets a
// registered field; names that fold to a registered one are dropped. A
// repeated member takes its last value.
func (c *Claims) UnmarshalJSON(b []byte) error { return c.decode(b, true) }

// decode is UnmarshalJSON; fast selects the fast paths, which tests turn
// off to hold them to encoding/json.
func (c *Claims) decode(b []byte, fast bool) error {
	var members []jsonobj.Member
	ok := false
	if fast {
		members, ok = jsonobj.Members(b)
	}
	if !ok {
		var all map[string]json.RawMessage
		if err := json.Unmarshal(b, &all); err != nil {
			return err
		}
		members = make([]jsonobj.Member, 0, len(all))
		for k, v := range all {
			members = append(members, jsonobj.Member{Name: k, Value: v})
		}
	}
	var p Claims
	// A repeated member takes its last value, so an error stands only if
	// no later member of the same name decodes.
	var failed []failure
	for _, m := range members {
		k, v := m.Name, m.Value
		var err error
		switch k {
		case "iss":
			err = decodeString(v, &p.Issuer, fast)
		case "sub":
			err = decodeString(v, &p.Subject, fast)
		case "aud":
			err = json.Unmarshal(v, &p.Audience)
		case "exp":
			err = decodeDate(v, &p.Expiry, fast)
		case "nbf":
			err = decodeDate(v, &p.NotBefore, fast)
		case "iat":
			err = decodeDate(v, &p.IssuedAt, fast)
		case "jti":
			err = decodeString(v, &p.JTI, fast)
		case "client_id":
			err = decodeString(v, &p.ClientID, fast)
		case "scope":
			err = decodeString(v, &p.Scope, fast)
		case "auth_time":
			err = decodeDate(v, &p.AuthTime, fast)
		case "acr":
			err = decodeString(v, &p.ACR, fast)
		case "amr":
			p.AMR = nil
			err = json.Unmarshal(v, &p.AMR)
		case "azp":
			err = decodeString(v, &p.AuthorizedParty, fast)
		case "nonce":
			err = decodeString(v, &p.Nonce, fast)
		case "cnf":
			p.Confirmation, err = decodeConfirmation(v)
		case "status":
			p.Status, err = decodeStatus(v, fast)
		case "act":
			p.Act, err = decodeActor(v, 1)
		case "may_act":
			p.MayAct, err = decodeActor(v, 1)
		case "authorization_details":
			p.AuthorizationDetails, err = decodeDetails(v)
		default:
			if IsRegistered(k) {
				continue
			}
			var x any
			d := json.NewDecoder(bytes.NewReader(v))
			d.UseNumber()
			if err = d.Decode(&x); err == nil {
				if p.Extra == nil {
					p.Extra = map[string]any{}
				}
				p.Extra[k] = x
			}
		}
		failed = slices.DeleteFunc(failed, func(f failure) bool { return f.name == k })
		if err != nil {
			failed = append(failed, failure{k, err})
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("token: claim %q: %w", failed[0].name, failed[0].err)
	}
	*c = p
	return nil
}

// failure is a member that did not decode.
type failure struct {
	name string
	err  error
}

// The decoders below take a fast path (package jsonobj) for the common
// shapes of a member and hand anything else to encoding/json. Decoding
// claims through encoding/json alone was a fifth of a resource server's
// token check (BenchmarkVerify: 92 µs per token against 69 µs for the bare
// ES256 verification); FuzzClaimsFastPaths holds the fast paths to it.

// decodeString decodes a JSON string.
func decodeString(v json.RawMessage, s *string, fast bool) error {
	// A repeated member takes its last value, even null: encoding/json
	// leaves the field alone for null, so it is cleared first.
	*s = ""
	if fast {
		return jsonobj.String(v, s)
	}
	return json.Unmarshal(v, s)
}

// decodeDate decodes a NumericDate; a plain integer is read directly.
func decodeDate(v json.RawMessage, d *NumericDate, fast bool) error {
	if n, ok := jsonobj.PlainInt(v); fast && ok {
		*d = NumericDate(n)
		return nil
	}
	return d.UnmarshalJSON(v)
}

// decodeConfirmation reads a cnf claim, matching "jkt" exactly as the
// registered claims are matched; other confirmation methods are ignored.
func decodeConfirmation(v json.RawMessage) (*Confirmation, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(v, &members); err != nil {
		return nil, err
	}
	var cnf Confirmation
	if jkt, ok := members["jkt"]; ok {
		if err := json.Unmarshal(jkt, &cnf.JKT); err != nil {
			return nil, err
		}
	}
	return &cnf, nil
}

// decodeDetails reads an authorization_details claim: an array of
// objects, each with a string type, and for the members Sigil issues
// (resource, a string; tools, an array of strings) the right JSON types.
// Names are matched exactly; other members are ignored. It checks the
// structure only: a signed token's details are what its issuer granted,
// and the limits and rules of requests (authzdetails.Parse) are the
// issuer's business. An empty array reads as none.
func decodeDetails(v json.RawMessage) (authzdetails.List, error) {
	var objects []map[string]json.RawMessage
	if err := json.Unmarshal(v, &objects); err != nil {
		return nil, err
	}
	if len(objects) == 0 {
		return nil, nil
	}
	l := make(authzdetails.List, len(objects))
	for i, o := range objects {
		d := &l[i]
		t, ok := o["type"]
		if !ok || !isJSONString(t) {
			return nil, errors.New("authorization_details objects need a string type")
		}
		if err := json.Unmarshal(t, &d.Type); err != nil {
			return nil, err
		}
		if r, ok := o["resource"]; ok {
			if !isJSONString(r) {
				return nil, errors.New("authorization_details resource is not a string")
			}
			if err := json.Unmarshal(r, &d.Resource); err != nil {
				return nil, err
			}
		}
		if tools, ok := o["tools"]; ok {
			if err := json.Unmarshal(tools, &d.Tools); err != nil {
				return nil, err
			}
			if len(d.Tools) == 0 {
				d.Tools = nil
			}
		}
	}
	return l, nil
}

// isJSONString reports whether a raw value is a JSON string.
func isJSONString(v json.RawMessage) bool {
	v = bytes.TrimLeft(v, " \t\r\n")
	return len(v) > 0 && v[0] == '"'
}

// decodeStatus reads a status claim, matching member names exactly. A
// status_list member must have both idx, a non-negative integer, and uri.
func decodeStatus(v json.RawMessage, fast bool) (*Status, error) {
	if ref, ok := canonicalStatus(v); fast && ok {
		return &Status{List: ref}, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(v, &members); err != nil {
		return nil, err
	}
	var st Status
	raw, ok := members["status_list"]
	if !ok {
		return &st, nil
	}
	var list map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	var ref StatusListRef
	idx, hasIdx := list["idx"]
	uri, hasURI := list["uri"]
	if !hasIdx || !hasURI {
		return nil, errors.New("status_list needs idx and uri")
	}
	if err := json.Unmarshal(idx, &ref.Index); err != nil || ref.Index < 0 {
		return nil, errors.New("status_list idx is not a non-negative integer")
	}
	if err := json.Unmarshal(uri, &ref.URI); err != nil || ref.URI == "" {
		return nil, errors.New("status_list uri is not a string")
	}
	st.List = &ref
	return &st, nil
}

// canonicalStatus reads the status claim as encoding/json writes it for
// Status: {"status_list":{"idx":N,"uri":"…"}} with no white space and a
// uri without escapes.
func canonicalStatus(v []byte) (*StatusListRef, bool) {
	const head, mid, tail = `{"status_list":{"idx":`, `,"uri":"`, `"}}`
	rest, ok := bytes.CutPrefix(v, []byte(head))
	if !ok {
		return nil, false
	}
	digits, rest, ok := bytes.Cut(rest, []byte(mid))
	if !ok {
		return nil, false
	}
	idx, ok := jsonobj.PlainInt(digits)
	if !ok {
		return nil, false
	}
	uri, ok := bytes.CutSuffix(rest, []byte(tail))
	if !ok || len(uri) == 0 || bytes.IndexByte(uri, '"') >= 0 || bytes.IndexByte(uri, '\\') >= 0 || !utf8.Valid(uri) {
		return nil, false
	}
	return &StatusListRef{Index: idx, URI: string(uri)}, true
}

// Scopes returns the space-delimited scope claim as a list.
func (c *Claims) Scopes() []string { return SplitScope(c.Scope) }

// SplitScope splits a space-delimited scope string (RFC 6749 §3.3).
func SplitScope(s string) []string {
	var out []string
	for _, f := range bytes.Fields([]byte(s)) {
		out = append(out, string(f))
	}
	return out
}

// Audience is the aud claim: one string or an array (RFC 7519 §4.1.3). A
// single audience is encoded as a string.
type Audience []string

// Contains reports whether aud is one of the audiences.
func (a Audience) Contains(aud string) bool { return slices.Contains(a, aud) }

// MarshalJSON encodes one audience as a string, several as an array.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*a = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = Audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("token: aud is neither a string nor an array of strings")
	}
	*a = l
	return nil
}

// NumericDate is a JWT time: seconds since the epoch (RFC 7519 §2). Zero
// means absent.
type NumericDate int64

// NewNumericDate converts t, dropping sub-second precision.
func NewNumericDate(t time.Time) NumericDate { return NumericDate(t.Unix()) }

// Time returns the date as a time.Time; the zero value for an absent date.
func (n NumericDate) Time() time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(int64(n), 0)
}

// UnmarshalJSON accepts an integer or a finite non-negative number, whose
// fraction is dropped.
func (n *NumericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return errors.New("token: date claim is not a number")
	}
	if math.IsNaN(f) || f < 0 || f > 1<<53 {
		return errors.New("token: date claim out of range")
	}
	*n = NumericDate(int64(f))
	return nil
}
