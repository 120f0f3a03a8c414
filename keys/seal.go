package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// MasterKeyFile is the name of the generated master key in the data
// directory, used when SIGIL_MASTER_KEY is not set.
const MasterKeyFile = "master-key"

// MasterKey is the 256-bit root secret from which the key-sealing key and
// the client-secret hash key are derived. It cannot be compared with ==.
type MasterKey struct {
	_ [0]func()
	k []byte
}

// ParseMasterKey decodes a master key given as 64 hex digits or as base64
// (standard or URL alphabet, padded or not) of exactly 32 bytes.
func ParseMasterKey(s string) (MasterKey, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString,
		base64.RawURLEncoding.DecodeString,
	} {
		if b, err := dec(s); err == nil && len(b) == 32 {
			return MasterKey{k: b}, nil
		}
	}
	return MasterKey{}, errors.New("keys: master key must be 32 bytes as 64 hex digits or base64 (generate one with: openssl rand -base64 32)")
}

// LoadMasterKey returns the master key from env (the value of
// SIGIL_MASTER_KEY) when it is set, else from dataDir/master-key, creating
// that file with a new random key (mode 0600) on first use. A multi-node
// deployment must give every node the same key through the environment.
func LoadMasterKey(env, dataDir string) (MasterKey, error) {
	if env != "" {
		return ParseMasterKey(env)
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	b, err := LoadOrCreatePrivateFile(path, func() []byte {
		k := make([]byte, 32)
		rand.Read(k)
		return []byte(base64.StdEncoding.EncodeToString(k) + "\n")
	})
	if err != nil {
		return MasterKey{}, fmt.Errorf("keys: master key: %w", err)
	}
	mk, err := ParseMasterKey(string(b))
	if err != nil {
		return MasterKey{}, fmt.Errorf("keys: %s: %w", path, err)
	}
	return mk, nil
}

// Derive returns a 32-byte subkey for purpose (HKDF-SHA-256, RFC 5869).
func (m MasterKey) Derive(purpose string) []byte {
	if len(m.k) != 32 {
		panic("keys: zero MasterKey")
	}
	k, err := hkdf.Key(sha256.New, m.k, nil, "sigil "+purpose, 32)
	if err != nil {
		panic(err) // only for lengths HKDF cannot produce
	}
	return k
}

// Sealer encrypts private keys at rest with AES-256-GCM. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer under a subkey of m.
func NewSealer(m MasterKey) *Sealer {
	block, err := aes.NewCipher(m.Derive("key sealing"))
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &Sealer{aead: aead}
}

// Seal encrypts plaintext bound to kid: nonce ‖ ciphertext ‖ tag.
func (s *Sealer) Seal(kid string, plaintext []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plaintext, []byte("sigil key "+kid))
}

// Open decrypts what Seal produced for the same kid.
func (s *Sealer) Open(kid string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("keys: sealed key too short")
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte("sigil key "+kid))
	if err != nil {
		return nil, fmt.Errorf("keys: decrypt key %s (wrong master key?): %w", kid, err)
	}
	return pt, nil
}
