// Package dpop checks DPoP proofs (RFC 9449): the proof-of-possession
// JWTs with which a client shows, on every request, that it holds the
// private key its access token is bound to. The issuer checks them at the
// token endpoint, and resource servers (package verify) at each request,
// with the access token's hash (ath) and the key the token is bound to.
//
// Check applies every rule of RFC 9449 §4.3: one well-formed DPoP header;
// typ dpop+jwt; an asymmetric alg Sigil supports; a public jwk in the
// header, fitting alg, with no private member; the signature over the
// segments as received; htm and htu matching the request (htu compared
// after RFC 3986 §6.2.2 and §6.2.3 normalisation, without query and
// fragment); the server's nonce when it demands one; iat within the
// window; a jti never seen for that URI within the window (a ReplayCache
// shared by every node); and, at a resource, ath.
package dpop

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
)

// HeaderName is the request header carrying the proof, and NonceHeader
// the response header carrying a server nonce.
const (
	HeaderName  = "DPoP"
	NonceHeader = "DPoP-Nonce"
	// Type is the typ header value of a proof.
	Type = "dpop+jwt"
)

// The error codes of RFC 9449 §5 and §8.
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

// Error is a refused proof: Code is CodeInvalidProof or CodeUseNonce, and
// Description says why in terms safe to send to the client.
type Error struct {
	Code        string
	Description string
}

func (e *Error) Error() string { return "dpop: " + e.Code + ": " + e.Description }

func invalid(format string, a ...any) *Error {
	return &Error{Code: CodeInvalidProof, Description: fmt.Sprintf(format, a...)}
}

// Limits on what a proof may carry, so that a hostile one costs little.
const (
	MaxProofSize = 8 << 10
	MaxJTISize   = 256
)

// Defaults for Checker's zero fields.
const (
	DefaultWindow = time.Minute
	DefaultLeeway = 5 * time.Second
)

// Algorithms are the proof algorithms accepted: every asymmetric one
// Sigil signs with, never none or a MAC.
var Algorithms = keys.Algorithms

// Checker checks proofs. Set Replay; the other fields have defaults.
type Checker struct {
	// Replay remembers proof jtis until they leave the window.
	Replay sigil.ReplayCache
	// Nonces, when set, makes every proof carry a nonce it issued.
	Nonces *Nonces
	// Window is how old a proof's iat may be; Leeway how far in the
	// future (clock skew).
	Window, Leeway time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Request is what a proof must match.
type Request struct {
	// Header is every value of the DPoP header the request carried.
	Header []string
	// Method is the request method; URI the target URI as clients
	// address it (the issuer's public URL, not the address a proxy
	// forwarded to).
	Method, URI string
	// AccessToken, at a resource, is the token the proof goes with; its
	// hash must be the proof's ath. Empty at the token endpoint.
	AccessToken string
}

// Proof is a checked proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key: the
	// cnf.jkt of tokens bound to it.
	JKT      string
	Key      crypto.PublicKey
	Alg      string
	JTI      string
	IssuedAt time.Time
}

type header struct {
	Typ  string          `json:"typ"`
	Alg  string          `json:"alg"`
	JWK  json.RawMessage `json:"jwk"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

type claims struct {
	JTI   *string         `json:"jti"`
	HTM   *string         `json:"htm"`
	HTU   *string         `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   *string         `json:"ath"`
	Nonce *string         `json:"nonce"`
}

// privateMembers are JWK members that only private or symmetric keys have
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// Check checks the proof r carries and returns it. A refused proof is an
// *Error; any other error means the check could not be made (a bad
// r.URI, a failing replay cache).
func (c *Checker) Check(ctx context.Context, r Request) (*Proof, error) {
	switch len(r.Header) {
	case 0:
		return nil, invalid("no DPoP proof")
	case 1:
	default:
		return nil, invalid("more than one DPoP header")
	}
	raw := r.Header[0]
	if len(raw) > MaxProofSize {
		return nil, invalid("the proof is longer than %d bytes", MaxProofSize)
	}
	if strings.Count(raw, ".") != 2 || strings.ContainsAny(raw, " ,\t") {
		return nil, invalid("the proof is not a single compact JWT")
	}
	h, err := decodeHeader(raw[:strings.IndexByte(raw, '.')])
	if err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(raw, keys.JOSEAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, invalid("the proof is not a well-formed JWS")
	}
	sig := jws.Signatures[0]
	// go-jose reads member names case-sensitively, encoding/json does not:
	// the two must agree on alg, typ and the key.
	typ, _ := sig.Protected.ExtraHeaders[jose.HeaderType].(string)
	if sig.Protected.Algorithm != h.Alg || typ != h.Typ || sig.Protected.JSONWebKey == nil {
		return nil, invalid("the proof header is ambiguous")
	}
	jwk := sig.Protected.JSONWebKey
	if !jwk.IsPublic() {
		return nil, invalid("the jwk header holds a private key")
	}
	if err := keys.CheckPublic(h.Alg, jwk.Key); err != nil {
		return nil, invalid("the jwk header key does not fit alg %s", h.Alg)
	}
	dot := strings.LastIndexByte(raw, '.')
	if err := token.VerifySignature(h.Alg, jwk.Key, []byte(raw[:dot]), sig.Signature); err != nil {
		return nil, invalid("the proof signature does not verify with its jwk")
	}
	// Verified just above over the same signing input.
	cl, err := decodeClaims(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return nil, err
	}
	if *cl.HTM != r.Method {
		return nil, invalid("htm does not match the request method")
	}
	want, err := NormalizeURI(r.URI)
	if err != nil {
		return nil, fmt.Errorf("dpop: the request URI: %w", err)
	}
	if got, err := NormalizeURI(*cl.HTU); err != nil || got != want {
		return nil, invalid("htu does not match the request URI")
	}
	now := c.now()
	// A NumericDate is a JSON number (RFC 7519 §2), never a string.
	iat, err := strconv.ParseFloat(string(cl.IAT), 64)
	if err != nil || cl.IAT[0] == '"' || math.IsInf(iat, 0) || math.IsNaN(iat) || math.Abs(iat) > 1<<40 {
		return nil, invalid("iat is not a number")
	}
	issued := time.Unix(int64(iat), 0)
	if issued.Before(now.Add(-c.window()-c.leeway())) || issued.After(now.Add(c.leeway())) {
		return nil, invalid("iat is outside the acceptable window")
	}
	if r.AccessToken != "" {
		sum := sha256.Sum256([]byte(r.AccessToken))
		if cl.ATH == nil || *cl.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return nil, invalid("ath does not match the access token")
		}
	}
	if c.Nonces != nil {
		if cl.Nonce == nil {
			return nil, &Error{Code: CodeUseNonce, Description: "a DPoP nonce is required"}
		}
		if !c.Nonces.Valid(*cl.Nonce, now) {
			return nil, &Error{Code: CodeUseNonce, Description: "the DPoP nonce is invalid or expired"}
		}
	}
	jkt, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, invalid("the jwk has no thumbprint")
	}
	// Last, so that an invalid proof never uses up its jti.
	if err := c.Replay.MarkJTI(ctx, replayKey(want, *cl.JTI), issued.Add(c.window()+2*c.leeway())); err != nil {
		if errors.Is(err, sigil.ErrReplay) {
			return nil, invalid("the proof was used before")
		}
		return nil, fmt.Errorf("dpop: replay cache: %w", err)
	}
	return &Proof{JKT: base64.RawURLEncoding.EncodeToString(jkt), Key: jwk.Key, Alg: h.Alg, JTI: *cl.JTI, IssuedAt: issued}, nil
}

// replayKey names a proof in the replay cache: its jti per target URI
// (RFC 9449 §11.1), hashed to a fixed length.
func replayKey(uri, jti string) string {
	sum := sha256.Sum256([]byte(uri + "\x00" + jti))
	return "dpop:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func decodeHeader(seg string) (*header, error) {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, invalid("the proof header is not base64url")
	}
	// encoding/json matches member names ignoring case and keeps the last
	// of a repeated member; go-jose, which picks the key, reads them
	// exactly. A header on which the two could disagree is refused.
	if err := distinctMembers(b); err != nil {
		return nil, invalid("the proof header %v", err)
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, invalid("the proof header is not a JSON object")
	}
	if !token.TypeIs(h.Typ, Type) {
		return nil, invalid("typ is not %s", Type)
	}
	if !keys.Supported(h.Alg) {
		return nil, invalid("alg %q is not an accepted asymmetric algorithm", h.Alg)
	}
	if h.Crit != nil || h.B64 != nil {
		return nil, invalid("the proof header uses an extension")
	}
	if h.JWK == nil {
		return nil, invalid("the proof header has no jwk")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(h.JWK, &members); err != nil {
		return nil, invalid("the jwk header is not a JSON object")
	}
	for name := range members {
		for _, p := range privateMembers {
			if strings.EqualFold(name, p) {
				return nil, invalid("the jwk header holds a private key")
			}
		}
	}
	return &h, nil
}

// distinctMembers reports an error unless b is a JSON object whose member
// names differ from each other even ignoring case.
func distinctMembers(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return errors.New("is not a JSON object")
	}
	var seen []string
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return errors.New("is not a JSON object")
		}
		name, _ := t.(string)
		for _, s := range seen {
			if strings.EqualFold(s, name) {
				return fmt.Errorf("repeats the member %q", name)
			}
		}
		seen = append(seen, name)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return errors.New("is not a JSON object")
		}
	}
	return nil
}

func decodeClaims(payload []byte) (*claims, error) {
	var cl claims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return nil, invalid("the proof claims are not a JSON object")
	}
	switch {
	case cl.JTI == nil || *cl.JTI == "":
		return nil, invalid("jti is missing")
	case len(*cl.JTI) > MaxJTISize:
		return nil, invalid("jti is longer than %d bytes", MaxJTISize)
	case cl.HTM == nil:
		return nil, invalid("htm is missing")
	case cl.HTU == nil:
		return nil, invalid("htu is missing")
	case cl.IAT == nil:
		return nil, invalid("iat is missing")
	}
	return &cl, nil
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Checker) window() time.Duration {
	if c.Window > 0 {
		return c.Window
	}
	return DefaultWindow
}

func (c *Checker) leeway() time.Duration {
	if c.Leeway > 0 {
		return c.Leeway
	}
	return DefaultLeeway
}
