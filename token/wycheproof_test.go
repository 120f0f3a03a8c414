package token_test

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
)

// wycheproofFile is the part of a Wycheproof signature-verification file
// (schemas ecdsa_p1363_verify, eddsa_verify, rsassa_pkcs1_verify,
// rsassa_pss_verify) the test reads. Every group carries its key as
// publicKeyDer, a PKIX SubjectPublicKeyInfo in hex.
type wycheproofFile struct {
	Algorithm     string `json:"algorithm"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		PublicKeyDER string `json:"publicKeyDer"`
		Tests        []struct {
			TcID    int      `json:"tcId"`
			Comment string   `json:"comment"`
			Flags   []string `json:"flags"`
			Msg     string   `json:"msg"`
			Sig     string   `json:"sig"`
			Result  string   `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// wycheproofDir is ../shared/testdata/wycheproof beside the repository
// (README "Test vectors"). CI always has it; a missing directory fails
// the test rather than skipping it.
func wycheproofDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "..", "shared", "testdata", "wycheproof")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("Wycheproof vectors not found at %s (the shared/ folder must sit beside the repository clone): %v", dir, err)
	}
	return dir
}

// TestWycheproof runs every vector of the four files against the path
// token verification takes: keys.CheckPublic on the key, then
// VerifySignature. valid must pass, invalid must fail; acceptable may go
// either way and is counted.
func TestWycheproof(t *testing.T) {
	dir := wycheproofDir(t)
	files := []struct {
		file string
		alg  string
		// maxRefused bounds the valid vectors whose key CheckPublic
		// refuses (so token verification rejects them by policy).
		maxRefused int
	}{
		// All groups are P-256 keys, which CheckPublic accepts.
		{"ecdsa_secp256r1_sha256_p1363_test.json", "ES256", 0},
		{"ed25519_test.json", "EdDSA", 0},
		// All groups are 2048-bit keys (the file's name and its keySize
		// fields), exactly RSABits.
		{"rsa_signature_2048_sha256_test.json", "RS256", 0},
		{"rsa_pss_2048_sha256_mgf1_32_test.json", "PS256", 0},
	}
	for _, tf := range files {
		t.Run(tf.alg, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, tf.file))
			if err != nil {
				t.Fatal(err)
			}
			var wf wycheproofFile
			if err := json.Unmarshal(b, &wf); err != nil {
				t.Fatalf("%s: %v", tf.file, err)
			}
			var c struct {
				total, validOK, invalidRejected      int
				acceptableOK, acceptableRejected     int
				refusedKeyValid, refusedKeyOther     int
				unparsedKeyValid, unparsedKeyInvalid int
			}
			for gi, g := range wf.TestGroups {
				der, err := hex.DecodeString(g.PublicKeyDER)
				if err != nil {
					t.Fatalf("group %d: publicKeyDer: %v", gi, err)
				}
				pub, perr := x509.ParsePKIXPublicKey(der)
				var keyErr error
				if perr == nil {
					keyErr = keys.CheckPublic(tf.alg, pub)
				}
				for _, tc := range g.Tests {
					c.total++
					msg, err1 := hex.DecodeString(tc.Msg)
					sig, err2 := hex.DecodeString(tc.Sig)
					if err1 != nil || err2 != nil {
						t.Fatalf("tcId %d: bad hex", tc.TcID)
					}
					switch {
					case perr != nil:
						// The standard library cannot even load the key:
						// no token could name it.
						if tc.Result == "valid" {
							c.unparsedKeyValid++
							t.Logf("tcId %d: key does not parse (%v); valid vector counted, not run", tc.TcID, perr)
						} else {
							c.unparsedKeyInvalid++
						}
						continue
					case keyErr != nil:
						if tc.Result == "valid" {
							c.refusedKeyValid++
							t.Logf("tcId %d: CheckPublic refuses the key (%v); valid vector counted, not run", tc.TcID, keyErr)
						} else {
							c.refusedKeyOther++
						}
						continue
					}
					err := token.VerifySignature(tf.alg, pub, msg, sig)
					switch tc.Result {
					case "valid":
						if err != nil {
							t.Errorf("tcId %d (%s, %v): valid signature rejected: %v", tc.TcID, tc.Comment, tc.Flags, err)
						} else {
							c.validOK++
						}
					case "invalid":
						if err == nil {
							t.Errorf("tcId %d (%s, %v): invalid signature accepted", tc.TcID, tc.Comment, tc.Flags)
						} else {
							c.invalidRejected++
						}
					case "acceptable":
						if err == nil {
							c.acceptableOK++
						} else {
							c.acceptableRejected++
						}
						t.Logf("tcId %d (%s, %v): acceptable, verify error = %v", tc.TcID, tc.Comment, tc.Flags, err)
					default:
						t.Fatalf("tcId %d: unknown result %q", tc.TcID, tc.Result)
					}
				}
			}
			if c.total != wf.NumberOfTests || c.total == 0 {
				t.Errorf("ran %d vectors, the file declares %d", c.total, wf.NumberOfTests)
			}
			if c.refusedKeyValid+c.unparsedKeyValid > tf.maxRefused {
				t.Errorf("%d valid vectors have a key CheckPublic refuses and %d one that does not parse; at most %d expected",
					c.refusedKeyValid, c.unparsedKeyValid, tf.maxRefused)
			}
			t.Logf("%s (%s): %d vectors: valid accepted %d, invalid rejected %d, acceptable accepted %d / rejected %d, "+
				"key refused by CheckPublic: %d valid + %d other, key unparsable: %d valid + %d other",
				tf.file, tf.alg, c.total, c.validOK, c.invalidRejected, c.acceptableOK, c.acceptableRejected,
				c.refusedKeyValid, c.refusedKeyOther, c.unparsedKeyValid, c.unparsedKeyInvalid)
		})
	}
}
