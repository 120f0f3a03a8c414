package token

// DecodeClaimsSlow decodes claims without UnmarshalJSON's fast paths, as
// the reference FuzzClaimsFastPaths compares them with.
func DecodeClaimsSlow(b []byte, c *Claims) error { return c.decode(b, false) }

// MarshalClaimsSlow is Claims.MarshalJSON through encoding/json, the
// reference FuzzClaimsMarshal compares the hand-written encoder with.
func MarshalClaimsSlow(c Claims) ([]byte, error) { return c.marshalSlow() }
