// Package jsonobj splits JSON objects into members and decodes the common
// shapes of member values without reflection: the fast path under the
// JOSE header and claim decoding of packages token and dpop, where
// encoding/json's map and struct decoding cost a fifth of a resource
// server's token check (BenchmarkVerify). Names are kept exactly as
// written, which RFC 7515 §4 and RFC 7519 §4 require and encoding/json's
// case-insensitive struct matching does not give.
package jsonobj

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Member is one member of a JSON object: its name and its raw value.
type Member struct {
	Name  string
	Value []byte
}

// Members splits a JSON object into its members, in order and repeats
// included, without decoding the values. It answers only the common case:
// valid JSON, an object, member names without escapes and in valid UTF-8.
// For anything else (invalid JSON, null, another type, a name
// encoding/json would rewrite) it returns false and the caller decodes
// through encoding/json or refuses. Splitting a validated document needs
// no error handling: a value ends at the first ',' or '}' outside strings
// and brackets.
func Members(b []byte) ([]Member, bool) {
	if !json.Valid(b) {
		return nil, false
	}
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return nil, false
	}
	members := make([]Member, 0, 16)
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return members, true
	}
	for {
		end := stringEnd(b, i)
		name := b[i+1 : end-1]
		if bytes.IndexByte(name, '\\') >= 0 || !utf8.Valid(name) {
			return nil, false
		}
		i = skipSpace(b, end)
		i = skipSpace(b, i+1) // past ':'
		start := i
		i = valueEnd(b, i)
		members = append(members, Member{string(name), b[start:i]})
		i = skipSpace(b, i)
		if b[i] == '}' {
			return members, true
		}
		i = skipSpace(b, i+1) // past ','
	}
}

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts at i.
func stringEnd(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd returns the index just past the value that starts at i.
func valueEnd(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = stringEnd(b, i) - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		if depth == 0 && (b[i] == '"' || b[i] == '}' || b[i] == ']') {
			return i + 1
		}
	}
	return i
}

// String decodes a JSON string value. One without escapes and in valid
// UTF-8 is its own bytes; anything else goes through encoding/json, so
// the result, and whether there is an error, is always encoding/json's.
func String(v []byte, s *string) error {
	if n := len(v); n >= 2 && v[0] == '"' && v[n-1] == '"' {
		if inner := v[1 : n-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			*s = string(inner)
			return nil
		}
	}
	return json.Unmarshal(v, s)
}

// PlainInt parses a JSON integer of 1 to 15 digits without sign,
// exponent or leading zero: below 2^53, exact as a float64.
func PlainInt(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 15 || (v[0] == '0' && len(v) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// AppendString appends s as a JSON string, escaped exactly as
// encoding/json escapes it. Printable ASCII that encoding/json leaves
// alone is copied; anything else (quotes, backslashes, control and HTML
// characters, non-ASCII) goes through encoding/json.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}
