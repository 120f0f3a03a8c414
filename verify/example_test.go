package verify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// A resource server checks an access token against a fixed key set.
func ExampleVerifier() {
	// The issuer's side, for the example: one ES256 key and a token.
	priv, err := keys.Generate("ES256")
	if err != nil {
		log.Fatal(err)
	}
	key := &keys.Key{ID: "2026-03", Alg: "ES256", Public: priv.Public(), Signer: priv}
	issued := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	raw, err := token.Sign(key, token.TypeAccess, &token.Claims{
		Issuer:   "https://sigil.example",
		Subject:  "alice",
		Audience: token.Audience{"https://api.example"},
		IssuedAt: token.NewNumericDate(issued),
		Expiry:   token.NewNumericDate(issued.Add(10 * time.Minute)),
		JTI:      token.NewJTI(time.Now()),
		Scope:    "read write",
	})
	if err != nil {
		log.Fatal(err)
	}

	// The resource server's side.
	now := issued.Add(time.Minute)
	v := &verify.Verifier{
		Keys:     verify.KeySet{key.ID: {Public: key.Public, Alg: key.Alg}},
		Issuer:   "https://sigil.example",
		Audience: "https://api.example",
		Now:      func() time.Time { return now },
	}
	ctx := context.Background()
	claims, err := v.Verify(ctx, raw)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Subject, claims.Scopes())

	// Any failure wraps ErrInvalid: answer it with RFC 6750 invalid_token.
	now = issued.Add(time.Hour)
	_, err = v.Verify(ctx, raw)
	fmt.Println(errors.Is(err, verify.ErrInvalid))
	// Output:
	// alice [read write]
	// true
}

// A resource server finds the issuer's keys through its metadata and
// caches them.
func ExampleJWKS() {
	// An issuer for the example, serving metadata and a JWK Set.
	priv, err := keys.Generate("EdDSA")
	if err != nil {
		log.Fatal(err)
	}
	key := &keys.Key{ID: "k1", Alg: "EdDSA", Public: priv.Public(), Signer: priv}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(verify.Metadata{Issuer: srv.URL, JWKSURI: srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public, KeyID: key.ID, Algorithm: key.Alg, Use: "sig"}}})
	})
	raw, err := token.Sign(key, token.TypeAccess, &token.Claims{
		Issuer: srv.URL, Subject: "svc-reports", Audience: token.Audience{"https://api.example"},
		Expiry: token.NewNumericDate(time.Now().Add(time.Minute)), JTI: token.NewJTI(time.Now()),
	})
	if err != nil {
		log.Fatal(err)
	}

	// The resource server, configured with the issuer URL only.
	ctx := context.Background()
	md, err := verify.Discover(ctx, srv.Client(), srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	v := &verify.Verifier{
		Keys:     &verify.JWKS{URL: md.JWKSURI, Client: srv.Client()},
		Issuer:   md.Issuer,
		Audience: "https://api.example",
	}
	claims, err := v.Verify(ctx, raw)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Subject)
	// Output: svc-reports
}

// A resource server puts Middleware in front of its handlers: bearer and
// DPoP-bound tokens are checked without a call to the issuer, and the
// handler reads the verified claims from the request context.
func ExampleMiddleware() {
	priv, err := keys.Generate("ES256")
	if err != nil {
		log.Fatal(err)
	}
	key := &keys.Key{ID: "k1", Alg: "ES256", Public: priv.Public(), Signer: priv}
	m := &verify.Middleware{
		Verifier: &verify.Verifier{
			Keys:     verify.KeySet{key.ID: {Public: key.Public, Alg: key.Alg}},
			Issuer:   "https://sigil.example",
			Audience: "https://api.example",
		},
		// DPoP proofs are checked locally; their jtis need only be unique
		// at this server.
		DPoP: &dpop.Checker{Replay: &verify.MemoryReplay{}},
	}
	reports := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := verify.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "reports for %s", claims.Subject)
	})
	h := m.Wrap(m.RequireScope(reports, "reports:read"))

	raw, err := token.Sign(key, token.TypeAccess, &token.Claims{
		Issuer: "https://sigil.example", Subject: "agent-7", Audience: token.Audience{"https://api.example"},
		Expiry: token.NewNumericDate(time.Now().Add(time.Minute)), JTI: token.NewJTI(time.Now()), Scope: "reports:read",
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, auth := range []string{"Bearer " + raw, ""} {
		req := httptest.NewRequest("GET", "https://api.example/reports", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		fmt.Println(w.Code, w.Body.String(), w.Header().Values("WWW-Authenticate"))
	}
	// Output:
	// 200 reports for agent-7 []
	// 401  [Bearer DPoP algs="ES256 EdDSA RS256 PS256"]
}

// With Status set, a Verifier also reads each token's entry in its status
// list: the list is fetched once and cached for its ttl, so a revoked
// token is refused within the ttl, without a call per token. Here a
// stand-in issuer serves a list whose entry 7 is revoked.
func ExampleStatusLists() {
	priv, err := keys.Generate("ES256")
	if err != nil {
		log.Fatal(err)
	}
	key := &keys.Key{ID: "k1", Alg: "ES256", Public: priv.Public(), Signer: priv}
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, _ := statuslist.New(1, 1024)
		l.Set(7, sigil.StatusInvalid)
		lst, _ := l.Encode()
		now := time.Now()
		raw, err := token.Sign(key, statuslist.TokenType, &token.Claims{
			Issuer: issuer, Subject: issuer + r.URL.Path, IssuedAt: token.NewNumericDate(now),
			Expiry: token.NewNumericDate(now.Add(time.Hour)), Extra: map[string]any{"ttl": 60, "status_list": lst},
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", statuslist.MediaType)
		w.Write([]byte(raw))
	}))
	defer srv.Close()
	issuer = srv.URL

	ks := verify.KeySet{key.ID: {Public: key.Public, Alg: key.Alg}}
	v := &verify.Verifier{
		Keys: ks, Issuer: issuer, Audience: "https://api.example",
		Status: &verify.StatusLists{Keys: ks, Issuer: issuer, Client: srv.Client()},
	}
	for _, idx := range []int64{3, 7} {
		raw, err := token.Sign(key, token.TypeAccess, &token.Claims{
			Issuer: issuer, Subject: "agent-7", Audience: token.Audience{"https://api.example"},
			Expiry: token.NewNumericDate(time.Now().Add(time.Minute)), JTI: token.NewJTI(time.Now()),
			Status: &token.Status{List: &token.StatusListRef{Index: idx, URI: issuer + "/statuslists/1"}},
		})
		if err != nil {
			log.Fatal(err)
		}
		_, err = v.Verify(context.Background(), raw)
		fmt.Printf("entry %d: revoked %v\n", idx, errors.Is(err, verify.ErrRevoked))
	}
	// Output:
	// entry 3: revoked false
	// entry 7: revoked true
}

// A tool server (or the gateway in front of it) lets a verified token call
// only the tools its authorization_details grant on this server.
func ExampleAllowsTool() {
	const self = "https://mcp.example/mcp" // the Verifier's Audience too
	claims := &token.Claims{               // as Verifier.Verify or ClaimsFrom return them
		Audience: token.Audience{self},
		AuthorizationDetails: authzdetails.List{
			{Type: authzdetails.TypeMCPTool, Resource: self, Tools: []string{"search", "fetch"}},
		},
	}
	for _, tool := range []string{"search", "delete"} {
		fmt.Println(tool, verify.AllowsTool(claims, self, tool))
	}
	// Output:
	// search true
	// delete false
}
