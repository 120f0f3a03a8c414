package keys_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"

	"github.com/sigil-sts/sigil/keys"
)

func TestGenerate(t *testing.T) {
	for _, alg := range keys.Algorithms {
		t.Run(alg, func(t *testing.T) {
			k, err := keys.Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			if err := keys.CheckPublic(alg, k.Public()); err != nil {
				t.Errorf("CheckPublic refuses a generated key: %v", err)
			}
			if r, ok := k.(*rsa.PrivateKey); ok && r.N.BitLen() != keys.RSABits {
				t.Errorf("RSA key of %d bits, want %d", r.N.BitLen(), keys.RSABits)
			}
		})
	}
	for _, alg := range []string{"HS256", "none", "", "ES384", "es256"} {
		if _, err := keys.Generate(alg); err == nil {
			t.Errorf("Generate(%q) succeeded", alg)
		}
	}
}

func TestCheckPublic(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	// 2047 bits: just under the floor.
	short := &rsa.PublicKey{N: new(big.Int).Rsh(rsa2048.N, 1), E: 65537}

	tests := []struct {
		name string
		alg  string
		pub  crypto.PublicKey
		ok   bool
	}{
		{"ES256 P-256", "ES256", &p256.PublicKey, true},
		{"ES256 P-384", "ES256", &p384.PublicKey, false},
		{"ES256 P-224", "ES256", &p224.PublicKey, false},
		{"ES256 Ed25519", "ES256", edPub, false},
		{"ES256 RSA", "ES256", &rsa2048.PublicKey, false},
		{"ES256 private key", "ES256", p256, false},
		{"ES256 by value", "ES256", p256.PublicKey, false},
		{"EdDSA Ed25519", "EdDSA", edPub, true},
		{"EdDSA short", "EdDSA", edPub[:31], false},
		{"EdDSA raw bytes", "EdDSA", []byte(edPub), false},
		{"EdDSA P-256", "EdDSA", &p256.PublicKey, false},
		{"RS256 2048", "RS256", &rsa2048.PublicKey, true},
		{"PS256 2048", "PS256", &rsa2048.PublicKey, true},
		{"RS256 2047", "RS256", short, false},
		{"RS256 1024", "RS256", &rsa1024.PublicKey, false},
		{"PS256 1024", "PS256", &rsa1024.PublicKey, false},
		{"RS256 P-256", "RS256", &p256.PublicKey, false},
		{"RS256 nil", "RS256", nil, false},
		{"HS256 bytes", "HS256", []byte("secret"), false},
		{"none", "none", nil, false},
		{"lower-case alg", "es256", &p256.PublicKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := keys.CheckPublic(tt.alg, tt.pub)
			if tt.ok && err != nil {
				t.Errorf("CheckPublic = %v, want nil", err)
			}
			if !tt.ok && err == nil {
				t.Error("CheckPublic = nil, want an error")
			}
		})
	}
}

func TestSupported(t *testing.T) {
	for _, alg := range keys.Algorithms {
		if !keys.Supported(alg) {
			t.Errorf("Supported(%q) = false", alg)
		}
	}
	if len(keys.JOSEAlgorithms) != len(keys.Algorithms) {
		t.Fatalf("JOSEAlgorithms %v and Algorithms %v differ", keys.JOSEAlgorithms, keys.Algorithms)
	}
	for i, a := range keys.JOSEAlgorithms {
		if string(a) != keys.Algorithms[i] {
			t.Errorf("JOSEAlgorithms[%d] = %s, want %s", i, a, keys.Algorithms[i])
		}
	}
	for _, alg := range []string{"none", "HS256", "RS384", "ES512", "", "es256"} {
		if keys.Supported(alg) {
			t.Errorf("Supported(%q) = true", alg)
		}
	}
}
