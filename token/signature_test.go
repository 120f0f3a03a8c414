package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
)

// TestVerifySignature checks the encodings and key binding of
// VerifySignature directly; the Wycheproof vectors cover the primitives.
func TestVerifySignature(t *testing.T) {
	f := getFixture(t)
	input := []byte("header.payload")
	sigs := map[string][]byte{}
	for _, alg := range keys.Algorithms {
		sigs[alg] = rawSign(t, alg, f.keys[alg].Signer, input)
	}

	// A P-224 signature fits the 64-byte ES256 encoding (r and s are 28
	// bytes, zero-padded): only a curve check refuses it.
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(input)
	r, s, err := ecdsa.Sign(rand.Reader, p224, h[:])
	if err != nil {
		t.Fatal(err)
	}
	p224Sig := p1363(r.Bytes(), s.Bytes())

	tests := []struct {
		name  string
		alg   string
		pub   crypto.PublicKey
		input []byte
		sig   []byte
		ok    bool
	}{
		{"ES256", "ES256", f.keys["ES256"].Public, input, sigs["ES256"], true},
		{"EdDSA", "EdDSA", f.keys["EdDSA"].Public, input, sigs["EdDSA"], true},
		{"RS256", "RS256", f.keys["RS256"].Public, input, sigs["RS256"], true},
		{"PS256", "PS256", f.keys["PS256"].Public, input, sigs["PS256"], true},
		{"ES256 other input", "ES256", f.keys["ES256"].Public, []byte("header.payloaD"), sigs["ES256"], false},
		{"EdDSA other input", "EdDSA", f.keys["EdDSA"].Public, []byte("header.payloaD"), sigs["EdDSA"], false},
		{"RS256 other input", "RS256", f.keys["RS256"].Public, []byte("header.payloaD"), sigs["RS256"], false},
		{"PS256 other input", "PS256", f.keys["PS256"].Public, []byte("header.payloaD"), sigs["PS256"], false},
		{"ES256 on P-224 key", "ES256", &p224.PublicKey, input, p224Sig, false},
		{"ES256 with Ed25519 key", "ES256", f.keys["EdDSA"].Public, input, sigs["ES256"], false},
		{"EdDSA with ECDSA key", "EdDSA", f.keys["ES256"].Public, input, sigs["EdDSA"], false},
		{"RS256 with ECDSA key", "RS256", f.keys["ES256"].Public, input, sigs["RS256"], false},
		{"RS256 signature as PS256", "PS256", f.keys["RS256"].Public, input, sigs["RS256"], false},
		{"PS256 signature as RS256", "RS256", f.keys["PS256"].Public, input, sigs["PS256"], false},
		{"RS256 signature with a leading zero byte", "RS256", f.keys["RS256"].Public, input, append([]byte{0}, sigs["RS256"]...), false},
		{"RS256 signature one byte short", "RS256", f.keys["RS256"].Public, input, sigs["RS256"][1:], false},
		{"EdDSA signature with a trailing byte", "EdDSA", f.keys["EdDSA"].Public, input, append(append([]byte{}, sigs["EdDSA"]...), 0), false},
		{"ES256 nil key", "ES256", nil, input, sigs["ES256"], false},
		{"ES256 key by value", "ES256", *f.keys["ES256"].Public.(*ecdsa.PublicKey), input, sigs["ES256"], false},
		{"HS256", "HS256", []byte("secret"), input, sigs["ES256"], false},
		{"none", "none", nil, input, nil, false},
		{"empty alg", "", f.keys["ES256"].Public, input, sigs["ES256"], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := token.VerifySignature(tt.alg, tt.pub, tt.input, tt.sig)
			if tt.ok && err != nil {
				t.Errorf("VerifySignature = %v, want success", err)
			}
			if !tt.ok && err == nil {
				t.Error("VerifySignature succeeded, want an error")
			}
		})
	}
}
