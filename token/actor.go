package token

import (
	"encoding/json"
	"errors"
)

// Actor is an act or may_act claim (RFC 8693 §4.1, §4.4): who acts, or
// may act, for the token's subject. Act holds the prior actor of a
// delegation chain, so the outermost Actor is the current one.
type Actor struct {
	Subject string
	// Issuer is set when the actor's subject is another issuer's.
	Issuer string
	Act    *Actor
}

// MaxActorDepth bounds the nesting of an act claim that Parse accepts;
// issuers enforce their own, lower, limits on the chains they extend.
const MaxActorDepth = 16

// Depth is the number of actors in the chain a (0 for nil).
func (a *Actor) Depth() int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// Chain returns the subjects of the chain, the current actor first.
func (a *Actor) Chain() []string {
	var out []string
	for ; a != nil; a = a.Act {
		out = append(out, a.Subject)
	}
	return out
}

// appendActor appends a as a JSON object.
func appendActor(b []byte, a *Actor) []byte {
	b = append(b, '{')
	b = appendStringClaim(b, "sub", a.Subject)
	b = appendStringClaim(b, "iss", a.Issuer)
	if a.Act != nil {
		b = appendActor(appendName(b, "act"), a.Act)
	}
	return append(b, '}')
}

// decodeActor reads an act or may_act claim, matching member names
// exactly. sub is required; members other than sub, iss and act are
// dropped (RFC 8693 §4.1: they are not for access control).
func decodeActor(v json.RawMessage, depth int) (*Actor, error) {
	if depth > MaxActorDepth {
		return nil, errors.New("act nested too deep")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(v, &members); err != nil {
		return nil, err
	}
	if members == nil {
		return nil, errors.New("act is not an object")
	}
	var a Actor
	if err := json.Unmarshal(members["sub"], &a.Subject); err != nil || a.Subject == "" {
		return nil, errors.New("act without a sub string")
	}
	if iss, ok := members["iss"]; ok {
		if err := json.Unmarshal(iss, &a.Issuer); err != nil {
			return nil, errors.New("act iss is not a string")
		}
	}
	if inner, ok := members["act"]; ok {
		var err error
		if a.Act, err = decodeActor(inner, depth+1); err != nil {
			return nil, err
		}
	}
	return &a, nil
}
