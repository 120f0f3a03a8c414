package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"
)

// The ceiling is the least work a token endpoint can do for the same
// request: parse the form, check Basic credentials against a SHA-256 hash
// in constant time, build RFC 9068 claims and sign them with ES256 straight
// from the standard library. No store, no routing beyond the mux, no key
// management. Sigil's figures are compared with it, measured in the same
// run on the same cores.

const (
	ceilingClientID = "bench-client"
	ceilingSecret   = "bench-secret-0123456789abcdefghijklmnopqrstuvw"
)

type ceilingServer struct {
	key        *ecdsa.PrivateKey
	secretHash [32]byte
	header     string
}

type ceilingClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Nbf      int64  `json:"nbf"`
	Iat      int64  `json:"iat"`
	JTI      string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

func runCeiling(addr string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	c := &ceilingServer{
		key:        k,
		secretHash: sha256.Sum256([]byte(ceilingSecret)),
		header:     base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`)),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", c.token)
	mux.HandleFunc("POST /introspect", c.introspect)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return (&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(ln)
}

func (c *ceilingServer) auth(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return false
	}
	id, sec, ok := r.BasicAuth()
	h := sha256.Sum256([]byte(sec))
	if !ok || id != ceilingClientID || subtle.ConstantTimeCompare(h[:], c.secretHash[:]) != 1 {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return false
	}
	return true
}

func (c *ceilingServer) token(w http.ResponseWriter, r *http.Request) {
	if !c.auth(w, r) || r.PostForm.Get("grant_type") != "client_credentials" {
		return
	}
	now := time.Now()
	var jti [16]byte
	rand.Read(jti[:])
	payload, _ := json.Marshal(ceilingClaims{
		Iss: "http://ceiling", Sub: ceilingClientID, Aud: "http://ceiling",
		Exp: now.Add(5 * time.Minute).Unix(), Nbf: now.Unix(), Iat: now.Unix(),
		JTI: base64.RawURLEncoding.EncodeToString(jti[:]), ClientID: ceilingClientID,
		Scope: r.PostForm.Get("scope"),
	})
	input := c.header + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(input))
	rr, s, err := ecdsa.Sign(rand.Reader, c.key, sum[:])
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	tok := input + "." + base64.RawURLEncoding.EncodeToString(sig)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 300, "scope": r.PostForm.Get("scope")})
}

// introspect verifies an ES256 token of its own with the standard library
// and answers active, without any claim or revocation checks.
func (c *ceilingServer) introspect(w http.ResponseWriter, r *http.Request) {
	if !c.auth(w, r) {
		return
	}
	tok := r.PostForm.Get("token")
	dot := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	w.Header().Set("Content-Type", "application/json")
	if dot < 0 || err != nil || len(sig) != 64 {
		w.Write([]byte(`{"active":false}`))
		return
	}
	sum := sha256.Sum256([]byte(tok[:dot]))
	if !ecdsa.Verify(&c.key.PublicKey, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		w.Write([]byte(`{"active":false}`))
		return
	}
	first := strings.IndexByte(tok, '.')
	claims, _ := base64.RawURLEncoding.DecodeString(tok[first+1 : dot])
	var m map[string]any
	json.Unmarshal(claims, &m)
	m["active"] = true
	json.NewEncoder(w).Encode(m)
}
