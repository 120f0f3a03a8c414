package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms lists the JWS algorithms Sigil signs and verifies with, all
// asymmetric (RFC 7518 §3; RFC 8037 for EdDSA). The default comes first.
var Algorithms = []string{"ES256", "EdDSA", "RS256", "PS256"}

// DefaultAlg is the algorithm of access tokens unless configured otherwise.
const DefaultAlg = "ES256"

// RSABits is the size of generated RSA keys; RSA keys are never smaller.
const RSABits = 2048

// Supported reports whether alg is one of Algorithms.
func Supported(alg string) bool { return slices.Contains(Algorithms, alg) }

// Generate creates a new private key for alg.
func Generate(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "RS256", "PS256":
		return rsa.GenerateKey(rand.Reader, RSABits)
	}
	return nil, fmt.Errorf("keys: unsupported algorithm %q (want one of %v)", alg, Algorithms)
}

// CheckPublic reports whether pub is a key of the right type and strength
// for alg: P-256 for ES256, Ed25519 for EdDSA, RSA of at least RSABits for
// RS256 and PS256. The verify package calls it for every key it accepts,
// which closes algorithm-confusion attacks at the key level.
func CheckPublic(alg string, pub crypto.PublicKey) error {
	switch alg {
	case "ES256":
		if k, ok := pub.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
			return nil
		}
	case "EdDSA":
		if k, ok := pub.(ed25519.PublicKey); ok && len(k) == ed25519.PublicKeySize {
			return nil
		}
	case "RS256", "PS256":
		if k, ok := pub.(*rsa.PublicKey); ok {
			if k.N.BitLen() < RSABits {
				return fmt.Errorf("keys: RSA key of %d bits is below the minimum of %d", k.N.BitLen(), RSABits)
			}
			return nil
		}
	default:
		return fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	return fmt.Errorf("keys: %T is not a key for %s", pub, alg)
}

func marshalPrivate(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("keys: marshal private key: %w", err)
	}
	return der, nil
}

func parsePrivate(alg string, der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: parse private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: %T is not a signer", k)
	}
	if err := CheckPublic(alg, s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// JOSEAlgorithms is Algorithms in go-jose's type, the allow-list handed to
// every go-jose parse call.
var JOSEAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}
