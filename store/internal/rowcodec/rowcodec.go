// Package rowcodec holds what the SQLite and PostgreSQL stores encode the
// same way: times as unix nanoseconds, a client's lists and claims as JSON,
// and the block allocator audit reads copy their fields into.
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
	var r Client
	var err error
	for _, f := range []struct {
		dst  *string
		list []string
	}{
		{&r.GrantTypes, c.GrantTypes},
		{&r.Scopes, c.Scopes},
		{&r.DefaultScopes, c.DefaultScopes},
		{&r.Audiences, c.Audiences},
		{&r.RedirectURIs, c.RedirectURIs},
	} {
		if *f.dst, err = encodeList(f.list); err != nil {
			return r, err
		}
	}
	claims := c.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return r, fmt.Errorf("encode claims: %w", err)
	}
	r.Claims = string(b)
	return r, nil
}

func encodeList(list []string) (string, error) {
	if list == nil {
		list = []string{}
	}
	b, err := json.Marshal(list)
	return string(b), err
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
