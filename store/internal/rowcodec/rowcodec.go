// Package rowcodec holds what the SQLite and PostgreSQL stores encode the
// same way: times as unix nanoseconds, lists and claims as JSON, and the
// block allocator audit reads copy their fields into.
package rowcodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// UnixNano returns t in unix nanoseconds, clamped to the int64 range
// (years 1677 to 2262) instead of overflowing as time.Time.UnixNano does.
func UnixNano(t time.Time) int64 {
	switch {
	case t.Before(minNano):
		return math.MinInt64
	case t.After(maxNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// FromUnixNano is UnixNano's inverse, in UTC.
func FromUnixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

// Client is a Client's lists and claims encoded as JSON text for their
// columns.
type Client struct {
	GrantTypes, Scopes, DefaultScopes, Audiences, RedirectURIs, Claims string
}

// EncodeClient encodes c's lists (nil as []) and claims (nil as {}).
func EncodeClient(c *sigil.Client) (Client, error) {
	claims, err := EncodeClaims(c.Claims)
	if err != nil {
		return Client{}, err
	}
	return Client{
		GrantTypes:    EncodeList(c.GrantTypes),
		Scopes:        EncodeList(c.Scopes),
		DefaultScopes: EncodeList(c.DefaultScopes),
		Audiences:     EncodeList(c.Audiences),
		RedirectURIs:  EncodeList(c.RedirectURIs),
		Claims:        claims,
	}, nil
}

// EncodeList encodes a list of strings as a JSON array, nil as [].
func EncodeList(list []string) string {
	if list == nil {
		list = []string{}
	}
	b, err := json.Marshal(list)
	if err != nil {
		panic(err) // json.Marshal of a []string cannot fail
	}
	return string(b)
}

// EncodeClaims encodes claims as a JSON object, nil as {}.
func EncodeClaims(claims map[string]any) (string, error) {
	if claims == nil {
		claims = map[string]any{}
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	return string(b), nil
}

// DecodeList decodes a JSON array of strings; an empty one decodes as nil.
func DecodeList(src []byte) ([]string, error) {
	var list []string
	if err := json.Unmarshal(src, &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}

// DecodeClaims decodes a JSON object; an empty one decodes as nil.
func DecodeClaims(src []byte) (map[string]any, error) {
	var claims map[string]any
	if err := json.Unmarshal(src, &claims); err != nil {
		return nil, err
	}
	if len(claims) == 0 {
		return nil, nil
	}
	return claims, nil
}

// blockSize is the size of the blocks Blocks copies into: about 700 audit
// records of 300-byte bodies.
const blockSize = 256 << 10

// Blocks hands out copies of byte slices carved from large blocks: one
// allocation per block instead of one per field when a page of audit
// records is read.
type Blocks struct{ cur []byte }

// Copy returns a copy of b whose capacity equals its length.
func (a *Blocks) Copy(b []byte) []byte {
	if len(b) > cap(a.cur)-len(a.cur) {
		a.cur = make([]byte, 0, max(blockSize, len(b)))
	}
	n := len(a.cur)
	a.cur = append(a.cur, b...)
	return a.cur[n:len(a.cur):len(a.cur)]
}

// CheckChain reports whether entries continue the audit chain at head:
// Seq head.Seq+1, head.Seq+2, …, each Prev the Hash before it (head.Hash
// for the first), and no empty Hash.
func CheckChain(head sigil.AuditHead, entries []sigil.AuditEntry) error {
	seq, prev := head.Seq, head.Hash
	for i, e := range entries {
		seq++
		if e.Seq != seq {
			return fmt.Errorf("entry %d has seq %d, want %d: the batch does not continue the chain", i, e.Seq, seq)
		}
		if !bytes.Equal(e.Prev, prev) {
			return fmt.Errorf("entry %d (seq %d): prev is not the hash of seq %d", i, e.Seq, seq-1)
		}
		if len(e.Hash) == 0 {
			return fmt.Errorf("entry %d (seq %d): empty hash", i, e.Seq)
		}
		prev = e.Hash
	}
	return nil
}

// AuditTimeFormat is audit.TimeFormat, the layout of the "time" member of
// record bodies and of the stores' time column: RFC 3339 in UTC with nine
// fraction digits, whose fixed width makes string order time order (in
// byte order: PostgreSQL's column has the "C" collation).
const AuditTimeFormat = "2006-01-02T15:04:05.000000000Z"

// Years AuditTimeFormat renders with four digits: outside them the width,
// and with it the string order, breaks.
var (
	minAuditTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxAuditTime = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
)

// AuditTime renders a query bound as record bodies render times, clamped
// to the years 0000 to 9999 so that a far bound (an Until of year 20000)
// still compares as intended.
func AuditTime(t time.Time) string {
	switch {
	case t.Before(minAuditTime):
		t = minAuditTime
	case t.After(maxAuditTime):
		t = maxAuditTime
	}
	return t.UTC().Format(AuditTimeFormat)
}
