package token

// DecodeClaimsSlow decodes claims without UnmarshalJSON's fast paths, as
// the reference FuzzClaimsFastPaths compares them with.
func DecodeClaimsSlow(b []byte, c *Claims) error { return c.decode(b, false) }
