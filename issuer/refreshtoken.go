package issuer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// A refresh token names its family and generation, so that the store
// finds the family by its primary key and rotates it in place, and a
// token of an earlier generation is recognised as reuse (RFC 9700
// §4.14.2) without a row per token. It is base64url of
//
//	version (1) | family (16) | generation (8, big-endian) | random (16) | tag (16)
//
// where tag is HMAC-SHA-256 of everything before it under a key of its
// own, truncated to 128 bits. The store keeps only the keyed hash of the
// family's current token, so the token is accepted only if it is both
// authentic (the tag) and current (the hash, which its random part keeps
// unguessable even to someone holding the tag key). The tag alone
// decides whether an old generation is reuse: a forged old token cannot
// revoke someone's family, and a token whose tag fails costs no store
// read.
const (
	refreshVersion    = 1
	familyIDBytes     = 16
	refreshRandBytes  = 16
	refreshTagBytes   = 16
	refreshTagged     = 1 + familyIDBytes + 8 + refreshRandBytes
	refreshTokenBytes = refreshTagged + refreshTagBytes
)

// newFamilyID returns a new refresh family's ID: 128 random bits,
// base64url.
func newFamilyID() string {
	var b [familyIDBytes]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newRefreshToken returns a new token of the family's generation. The
// family ID must come from newFamilyID.
func (k *flowKeys) newRefreshToken(family string, generation int64) string {
	b := make([]byte, refreshTokenBytes)
	b[0] = refreshVersion
	if n, err := base64.RawURLEncoding.Decode(b[1:1+familyIDBytes], []byte(family)); err != nil || n != familyIDBytes {
		panic("issuer: refresh family ID " + family + " is not from newFamilyID")
	}
	binary.BigEndian.PutUint64(b[1+familyIDBytes:], uint64(generation))
	rand.Read(b[1+familyIDBytes+8 : refreshTagged])
	copy(b[refreshTagged:], k.refreshTag(b[:refreshTagged]))
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseRefreshToken returns the family and generation of an authentic
// refresh token; ok is false for anything else.
func (k *flowKeys) parseRefreshToken(value string) (family string, generation int64, ok bool) {
	// The exact length: the decoder would skip a CR or LF, and 77
	// characters decode to 57 bytes too.
	if len(value) != base64.RawURLEncoding.EncodedLen(refreshTokenBytes) {
		return "", 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) != refreshTokenBytes || b[0] != refreshVersion {
		return "", 0, false
	}
	if !hmac.Equal(b[refreshTagged:], k.refreshTag(b[:refreshTagged])) {
		return "", 0, false
	}
	generation = int64(binary.BigEndian.Uint64(b[1+familyIDBytes:]))
	if generation < 0 {
		return "", 0, false
	}
	return base64.RawURLEncoding.EncodeToString(b[1 : 1+familyIDBytes]), generation, true
}

// refreshTag is the truncated MAC of a refresh token's tagged part.
func (k *flowKeys) refreshTag(tagged []byte) []byte {
	m := hmac.New(sha256.New, k.refresh)
	m.Write(tagged)
	return m.Sum(nil)[:refreshTagBytes]
}
