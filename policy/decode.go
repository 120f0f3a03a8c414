package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Limits bounds what DecodeRequest and DecodeEvaluations accept. A zero
// field takes its default.
type Limits struct {
	// MaxBytes is the largest body accepted. Default 256 KiB.
	MaxBytes int64
	// MaxDepth is the deepest JSON nesting accepted, counting the
	// top-level object as 1: with the default of 16, properties and
	// context values may nest about 13 levels. Deep nesting buys a policy
	// nothing and costs every recursive step of decoding and evaluation.
	MaxDepth int
	// MaxEvaluations is the most items a batch may hold. Default 256.
	MaxEvaluations int
}

// Default limits.
const (
	DefaultMaxBytes       = 256 << 10
	DefaultMaxDepth       = 16
	DefaultMaxEvaluations = 256
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxEvaluations <= 0 {
		l.MaxEvaluations = DefaultMaxEvaluations
	}
	return l
}

// DecodeRequest parses an access evaluation request body (AuthZEN §6.1)
// within the limits and validates it. Member names match exactly
// (encoding/json's struct decoding would also take "Subject"), unknown
// members are ignored as §10.1 requires, and numbers keep their exact text
// as json.Number. Every failure is a *RequestError.
func DecodeRequest(body []byte, lim Limits) (Request, error) {
	obj, err := decodeObject(body, lim.withDefaults())
	if err != nil {
		return Request{}, err
	}
	var r Request
	if r.Subject, err = subjectFrom(obj, "subject", true); err != nil {
		return Request{}, err
	}
	if r.Action, err = actionFrom(obj, "action", true); err != nil {
		return Request{}, err
	}
	if r.Resource, err = resourceFrom(obj, "resource", true); err != nil {
		return Request{}, err
	}
	if r.Context, err = objectMember(obj, "context", "context"); err != nil {
		return Request{}, err
	}
	if err := r.Validate(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// ReadRequest reads at most lim.MaxBytes from r and decodes it with
// DecodeRequest; a longer body is a *RequestError.
func ReadRequest(r io.Reader, lim Limits) (Request, error) {
	body, err := readLimited(r, lim.withDefaults())
	if err != nil {
		return Request{}, err
	}
	return DecodeRequest(body, lim)
}

func readLimited(r io.Reader, lim Limits) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, &RequestError{Reason: "cannot be read", Err: err}
	}
	if int64(len(body)) > lim.MaxBytes {
		return nil, &RequestError{Reason: fmt.Sprintf("is larger than %d bytes", lim.MaxBytes)}
	}
	return body, nil
}

// decodeObject checks size and depth, then decodes body as one JSON object.
func decodeObject(body []byte, lim Limits) (map[string]any, error) {
	if int64(len(body)) > lim.MaxBytes {
		return nil, &RequestError{Reason: fmt.Sprintf("is larger than %d bytes", lim.MaxBytes)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &RequestError{Reason: "is empty"}
	}
	// The depth check runs on the raw bytes before decoding, so a hostile
	// body never makes the decoder (or later the engines) recurse deeply.
	if depth := jsonDepth(body); depth > lim.MaxDepth {
		return nil, &RequestError{Reason: fmt.Sprintf("nests deeper than %d levels", lim.MaxDepth)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &RequestError{Reason: "is not valid JSON", Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &RequestError{Reason: "has data after the JSON object"}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &RequestError{Reason: "is not a JSON object"}
	}
	return obj, nil
}

// jsonDepth returns the deepest nesting of objects and arrays in b,
// ignoring brackets inside strings. It does not validate b; the decoder
// does that afterwards.
func jsonDepth(b []byte) int {
	depth, max := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				max = depth
			}
		case '}', ']':
			depth--
		}
	}
	return max
}

func subjectFrom(obj map[string]any, field string, required bool) (Subject, error) {
	m, err := entityObject(obj, field, required)
	if err != nil || m == nil {
		return Subject{}, err
	}
	var s Subject
	if s.Type, err = stringMember(m, "type", field+".type"); err != nil {
		return Subject{}, err
	}
	if s.ID, err = stringMember(m, "id", field+".id"); err != nil {
		return Subject{}, err
	}
	if s.Properties, err = objectMember(m, "properties", field+".properties"); err != nil {
		return Subject{}, err
	}
	return s, nil
}

func resourceFrom(obj map[string]any, field string, required bool) (Resource, error) {
	s, err := subjectFrom(obj, field, required)
	return Resource(s), err
}

func actionFrom(obj map[string]any, field string, required bool) (Action, error) {
	m, err := entityObject(obj, field, required)
	if err != nil || m == nil {
		return Action{}, err
	}
	var a Action
	if a.Name, err = stringMember(m, "name", field+".name"); err != nil {
		return Action{}, err
	}
	if a.Properties, err = objectMember(m, "properties", field+".properties"); err != nil {
		return Action{}, err
	}
	return a, nil
}

// entityObject returns obj[name] as an object; nil if absent and optional.
func entityObject(obj map[string]any, field string, required bool) (map[string]any, error) {
	v, ok := obj[lastName(field)]
	if !ok || v == nil {
		if required {
			return nil, &RequestError{Field: field, Reason: "is required"}
		}
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &RequestError{Field: field, Reason: "must be an object"}
	}
	return m, nil
}

// stringMember returns m[name], which must be a string if present. An
// absent member is "", which Validate then reports as missing.
func stringMember(m map[string]any, name, field string) (string, error) {
	v, ok := m[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", &RequestError{Field: field, Reason: "must be a string"}
	}
	return s, nil
}

// objectMember returns m[name], which must be an object if present.
func objectMember(m map[string]any, name, field string) (map[string]any, error) {
	v, ok := m[name]
	if !ok || v == nil {
		return nil, nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, &RequestError{Field: field, Reason: "must be an object"}
	}
	return o, nil
}

// lastName returns the member name at the end of a dotted field path
// ("evaluations[2].subject" → "subject").
func lastName(field string) string {
	for i := len(field) - 1; i >= 0; i-- {
		if field[i] == '.' {
			return field[i+1:]
		}
	}
	return field
}
