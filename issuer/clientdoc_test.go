package issuer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
)

// docServer serves client metadata documents over TLS on loopback and
// counts the requests for each path.
type docServer struct {
	*httptest.Server
	mu    sync.Mutex
	docs  map[string]docResponse
	count map[string]int
}

// docResponse is what the server answers for a path.
type docResponse struct {
	status      int // zero means 200
	contentType string
	header      http.Header
	body        string
}

// newDocServer starts a document server whose certificate is good for
// localhost, 127.0.0.1 and ::1, so that only the issuer's address checks
// keep it from being fetched by any of those names.
func newDocServer(t *testing.T) *docServer {
	d := &docServer{docs: map[string]docResponse{}, count: map[string]int{}}
	d.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.count[r.URL.Path]++
		resp, ok := d.docs[r.URL.Path]
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		for k, v := range resp.header {
			w.Header()[k] = v
		}
		ct := resp.contentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		if resp.status != 0 {
			w.WriteHeader(resp.status)
		}
		w.Write([]byte(resp.body))
	}))
	d.TLS = &tls.Config{Certificates: []tls.Certificate{loopbackCert(t)}}
	d.StartTLS()
	t.Cleanup(d.Close)
	return d
}

// loopbackCert is a self-signed certificate for localhost and the
// loopback addresses.
func loopbackCert(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// set serves resp at path and returns the path's URL.
func (d *docServer) set(path string, resp docResponse) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.docs[path] = resp
	return d.URL + path
}

// setDoc serves doc as JSON at path, with client_id set to the path's
// URL unless doc has one, and returns the URL.
func (d *docServer) setDoc(t testing.TB, path string, doc map[string]any, header http.Header) string {
	t.Helper()
	if _, ok := doc["client_id"]; !ok {
		doc["client_id"] = d.URL + path
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return d.set(path, docResponse{body: string(b), header: header})
}

func (d *docServer) fetches(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count[path]
}

// caFile writes the server's certificate as a PEM file and returns its
// path.
func (d *docServer) caFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "docs-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startDocNode starts a node that accepts client metadata documents from
// d (loopback allowed, d's certificate trusted).
func startDocNode(t *testing.T, d *docServer, mods ...func(*config.Config)) *testNode {
	return startNode(t, append([]func(*config.Config){func(c *config.Config) {
		c.ClientMetadataDocuments = true
		c.ClientMetadataCAFile = d.caFile(t)
		c.ClientMetadataUnsafeAllowLoopback = true
	}}, mods...)...)
}

// appDoc is a public client's document.
func appDoc() map[string]any {
	return map[string]any{
		"client_name":                "Doc App",
		"redirect_uris":              []string{"https://rp.example/callback"},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
		"client_uri":                 "https://rp.example",
	}
}

// TestClientDocumentFlow: a client known only by its document's URL signs
// a user in, is shown with its URL's host, redeems the code and refreshes;
// the document is fetched once within its max-age.
func TestClientDocumentFlow(t *testing.T) {
	d := newDocServer(t)
	id := d.setDoc(t, "/oauth/client.json", appDoc(), http.Header{"Cache-Control": {"public, max-age=300"}})
	n := startDocNode(t, d)
	if m := n.get(t, "/.well-known/openid-configuration").json(t); m["client_id_metadata_document_supported"] != true {
		t.Errorf("client_id_metadata_document_supported = %v", m["client_id_metadata_document_supported"])
	}
	c := rp{info: &admin.ClientInfo{ClientID: id}, redirectURI: "https://rp.example/callback"}
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()
	page := b.authorize(c.authParams(p, "openid offline_access"))
	page = b.signIn(page, "alice", alicePassword)
	host := strings.TrimPrefix(d.URL, "https://")
	if !page.isConsent() || !strings.Contains(page.body, "Doc App ("+host+")") || !strings.Contains(page.body, "describes itself at <strong>"+host+"</strong>") {
		t.Fatalf("the consent page does not show the name and the host %s: %d %.800s", host, page.status, page.body)
	}
	resp := b.decide(page, "allow").response(t, c.redirectURI)
	tr := n.redeem(t, c, resp.Get("code"), p.verifier)
	if tr.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", tr.status, tr.body)
	}
	idTok := claims(t, tr.str(t, "id_token"))
	if aud, _ := idTok["aud"].(string); aud != id {
		if auds, ok := idTok["aud"].([]any); !ok || len(auds) != 1 || auds[0] != id {
			t.Errorf("ID token aud = %v, want %s", idTok["aud"], id)
		}
	}
	if at := claims(t, tr.str(t, "access_token")); at["client_id"] != id {
		t.Errorf("access token client_id = %v", at["client_id"])
	}
	if r := n.refresh(t, c, tr.str(t, "refresh_token"), nil); r.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	// A second authorization, remembered consent: still one fetch.
	p2 := newPKCE()
	b.codeFor(c, c.authParams(p2, "openid"), "alice", alicePassword)
	if got := d.fetches("/oauth/client.json"); got != 1 {
		t.Errorf("document fetched %d times within its max-age, want 1", got)
	}
}

// TestClientDocumentPrivateKeyJWT: a document with a JWK Set registers a
// private_key_jwt client, which must authenticate at the token endpoint.
func TestClientDocumentPrivateKeyJWT(t *testing.T) {
	d := newDocServer(t)
	k := newClientKey(t, "ES256", "doc-key")
	doc := appDoc()
	delete(doc, "token_endpoint_auth_method") // jwks given: private_key_jwt
	doc["jwks"] = k.jwks(t)
	id := d.setDoc(t, "/jwt-client", doc, nil)
	n := startDocNode(t, d)
	c := rp{info: &admin.ClientInfo{ClientID: id}, redirectURI: "https://rp.example/callback"}
	newUser(t, n, "alice", alicePassword, nil)
	b := newBrowser(t, n)
	p := newPKCE()
	resp := b.codeFor(c, c.authParams(p, "openid"), "alice", alicePassword)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {resp.Get("code")}, "code_verifier": {p.verifier}, "redirect_uri": {c.redirectURI}, "client_id": {id}}
	// Without an assertion the client is not public.
	wantError(t, n.postForm(t, "/token", form, auth{}), http.StatusUnauthorized, "invalid_client")
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", k.sign(t, assertionClaims(id, n.url("/token")), nil))
	if r := n.postForm(t, "/token", form, auth{}); r.status != http.StatusOK {
		t.Fatalf("redeem with an assertion: %d %s", r.status, r.body)
	}
}

// TestClientDocumentRefused: documents that cannot be used stop the
// request on an error page; the user is never redirected.
func TestClientDocumentRefused(t *testing.T) {
	d := newDocServer(t)
	n := startDocNode(t, d)
	with := func(kv ...any) map[string]any {
		m := appDoc()
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		url   string
		want  string
		ru    string // redirect_uri of the request; default the document's
		fetch bool   // whether the document server is asked
	}{
		{name: "client-id-mismatch", url: d.setDoc(t, "/mismatch", with("client_id", "https://evil.example/client"), nil),
			want: "not the URL it was fetched from", fetch: true},
		{name: "oversize", url: d.setDoc(t, "/big", with("padding", strings.Repeat("x", 5<<10)), nil),
			want: "larger than", fetch: true},
		{name: "redirect-uri-not-listed", url: d.setDoc(t, "/ok", appDoc(), nil), ru: "https://evil.example/callback",
			want: "redirect_uri is not registered", fetch: true},
		{name: "secret", url: d.setDoc(t, "/secret", with("client_secret", "s3cret"), nil),
			want: "must not carry a client secret", fetch: true},
		{name: "secret-method", url: d.setDoc(t, "/basic", with("token_endpoint_auth_method", "client_secret_basic"), nil),
			want: "token_endpoint_auth_method", fetch: true},
		{name: "client-credentials", url: d.setDoc(t, "/cc", with("grant_types", []string{"client_credentials"}, "response_types", []string{}, "token_endpoint_auth_method", "private_key_jwt"), nil),
			want: "client_credentials", fetch: true},
		{name: "bad-redirect-uri", url: d.setDoc(t, "/badru", with("redirect_uris", []string{"http://rp.example/cb"}), nil), ru: "http://rp.example/cb",
			want: "loopback", fetch: true},
		{name: "not-found", url: d.URL + "/missing", want: "HTTP 404", fetch: true},
		{name: "redirect", url: d.set("/moved", docResponse{status: http.StatusFound, header: http.Header{"Location": {d.setDoc(t, "/moved-here", appDoc(), nil)}}}),
			want: "redirects are not followed", fetch: true},
		{name: "html", url: d.set("/html", docResponse{contentType: "text/html", body: "<p>hi</p>"}), want: "not served as JSON", fetch: true},
		{name: "not-json", url: d.set("/garbage", docResponse{body: "{not json"}), want: "not a JSON object", fetch: true},
		{name: "http", url: strings.Replace(d.URL, "https://", "http://", 1) + "/ok", want: "unknown client_id"},
		{name: "no-path", url: d.URL, want: "must have a path"},
		{name: "fragment", url: d.URL + "/ok#frag", want: "fragment"},
		{name: "query", url: d.URL + "/ok?x=1", want: "query"},
		{name: "dot-segment", url: d.URL + "/a/../ok", want: "path segments"},
		{name: "userinfo", url: strings.Replace(d.URL, "https://", "https://user@", 1) + "/ok", want: "user name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			before := d.fetches(u.Path)
			ru := tc.ru
			if ru == "" {
				ru = "https://rp.example/callback"
			}
			c := rp{info: &admin.ClientInfo{ClientID: tc.url}, redirectURI: ru}
			p := newBrowser(t, n).authorize(c.authParams(newPKCE(), "openid"))
			if p.status != http.StatusBadRequest || p.location != "" || !strings.Contains(p.body, tc.want) {
				t.Errorf("status %d, Location %q, want 400, an error page saying %q: %.600s", p.status, p.location, tc.want, p.body)
			}
			if fetched := d.fetches(u.Path) > before; fetched != tc.fetch {
				t.Errorf("document fetched: %v, want %v", fetched, tc.fetch)
			}
		})
	}
	if got := d.fetches("/moved-here"); got != 0 {
		t.Errorf("the redirect was followed (%d requests)", got)
	}
	t.Run("token-endpoint", func(t *testing.T) {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {strings.Repeat("v", 43)}, "client_id": {d.URL + "/mismatch"}}
		wantError(t, n.postForm(t, "/token", form, auth{}), http.StatusUnauthorized, "invalid_client")
	})
}

// TestClientDocumentFailureHeld: a failed fetch is not repeated on the
// next request (a short negative cache), so a broken URL cannot make the
// server fetch on every request.
func TestClientDocumentFailureHeld(t *testing.T) {
	d := newDocServer(t)
	n := startDocNode(t, d)
	id := d.URL + "/later"
	c := rp{info: &admin.ClientInfo{ClientID: id}, redirectURI: "https://rp.example/callback"}
	b := newBrowser(t, n)
	if p := b.authorize(c.authParams(newPKCE(), "openid")); p.status != http.StatusBadRequest {
		t.Fatalf("missing document: status %d", p.status)
	}
	d.setDoc(t, "/later", appDoc(), nil)
	if p := b.authorize(c.authParams(newPKCE(), "openid")); p.status != http.StatusBadRequest {
		t.Errorf("within the failure hold: status %d, want the remembered failure", p.status)
	}
	if got := d.fetches("/later"); got != 1 {
		t.Errorf("fetched %d times, want 1", got)
	}
}

// TestClientDocumentSSRF: without the test-only loopback allowance, a
// client_id that is, or resolves to, a loopback, private or link-local
// address is refused without a request reaching it.
func TestClientDocumentSSRF(t *testing.T) {
	d := newDocServer(t)
	d.setDoc(t, "/client.json", appDoc(), nil)
	n := startNode(t, func(c *config.Config) {
		c.ClientMetadataDocuments = true
		c.ClientMetadataCAFile = d.caFile(t)
	})
	u, err := url.Parse(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	for _, tc := range []struct{ name, id, want string }{
		{"loopback", d.URL + "/client.json", "special-use"},
		{"loopback-v6", "https://[::1]:" + port + "/client.json", "special-use"},
		{"mapped-v4", "https://[::ffff:127.0.0.1]:" + port + "/client.json", "special-use"},
		{"resolves-to-loopback", "https://localhost:" + port + "/client.json", "could not be fetched"},
		{"private", "https://10.0.0.1/client.json", "special-use"},
		{"metadata-service", "https://169.254.169.254/latest/meta-data", "special-use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rp{info: &admin.ClientInfo{ClientID: tc.id}, redirectURI: "https://rp.example/callback"}
			p := newBrowser(t, n).authorize(c.authParams(newPKCE(), "openid"))
			if p.status != http.StatusBadRequest || p.location != "" || !strings.Contains(p.body, tc.want) {
				t.Errorf("status %d Location %q, want 400 saying %q: %.600s", p.status, p.location, tc.want, p.body)
			}
		})
	}
	if got := d.fetches("/client.json"); got != 0 {
		t.Errorf("the loopback document server got %d requests", got)
	}
}
