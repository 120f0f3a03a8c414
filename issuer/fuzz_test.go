package issuer_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/internal/httpx"
)

// FuzzTokenRequest drives the token endpoint (and, by the endpoint
// selector, introspection and revocation, which share form parsing and
// client authentication) with arbitrary bodies, content types,
// Authorization headers and query strings. Whatever comes in, the answer
// is never a 5xx, and every non-200 answer is a JSON object with an error
// member (RFC 6749 §5.2).
func FuzzTokenRequest(f *testing.F) {
	n := startNode(f)
	c := n.newClient(f, admin.ClientSpec{Scope: "read write", DefaultScope: "read", Audience: []string{"https://api.example"}})
	p := n.newClient(f, admin.ClientSpec{Scope: "read", AuthMethod: sigil.AuthSecretPost})
	key := newClientKey(f, "ES256", "fuzz-key")
	j := n.jwtClient(f, key)
	mux := http.NewServeMux()
	n.srv.Issuer.Mount(mux)
	h := httpx.WithRequestID(mux)

	form := "application/x-www-form-urlencoded"
	basicHdr := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":"+c.ClientSecret))
	cc := "grant_type=client_credentials"
	tok := n.token(f, c, nil)
	assertion := key.sign(f, assertionClaims(j.ClientID, n.issuer+"/token"), nil)
	for _, s := range []struct {
		ep                   uint8
		body, ct, authz, qry string
	}{
		{0, cc, form, basicHdr, ""},
		{0, cc + "&scope=read+write&resource=https%3A%2F%2Fapi.example", form, basicHdr, ""},
		{0, cc + "&scope=%22", form, basicHdr, ""},
		{0, cc + "&resource=%2Frel&resource=https%3A%2F%2Fapi.example%23f", form, basicHdr, ""},
		{0, cc + "&client_id=" + p.ClientID + "&client_secret=" + p.ClientSecret, form, "", ""},
		{0, cc + "&client_assertion_type=" + url.QueryEscape(assertionType) + "&client_assertion=" + assertion, form, "", ""},
		{0, cc + "&client_assertion_type=" + url.QueryEscape(assertionType) + "&client_assertion=a.b.c", form, "", ""},
		{0, cc + "&client_assertion_type=" + url.QueryEscape(assertionType) + "&client_assertion=" + tok, form, "", ""},
		{0, cc + "&scope=a&scope=b", form, basicHdr, ""},
		{0, `{"grant_type":"client_credentials"}`, "application/json", basicHdr, ""},
		{0, cc, "", basicHdr, ""},
		{0, cc, form + "; charset=utf-8", basicHdr, "client_secret=x"},
		{0, "%zz", form, basicHdr, ""},
		{0, cc, form, "Basic !!!", ""},
		{0, cc, form, "Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:%")), ""},
		{0, cc, form, "Bearer x", ""},
		{0, cc, "multipart/form-data; boundary=x", basicHdr, ""},
		{0, "", form, "", "%zz"},
		{1, "token=" + tok, form, basicHdr, ""},
		{1, "token=" + tok + "&token=x", form, basicHdr, ""},
		{2, "token=" + tok, form, basicHdr, ""},
		{2, "token=garbage", form, basicHdr, "token=x"},
	} {
		f.Add(s.ep, s.body, s.ct, s.authz, s.qry)
	}

	paths := []string{"/token", "/introspect", "/revoke"}
	f.Fuzz(func(t *testing.T, ep uint8, body, ct, authz, qry string) {
		req := httptest.NewRequest(http.MethodPost, paths[int(ep)%len(paths)], strings.NewReader(body))
		req.URL.RawQuery = qry
		if ct != "" {
			req.Header["Content-Type"] = []string{ct}
		}
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkOAuthAnswer(t, req.URL.Path, w)
	})
}

// checkOAuthAnswer fails unless w is a well-formed answer of an OAuth
// endpoint: below 500; JSON with an error member when not 200; no-store.
func checkOAuthAnswer(t *testing.T, path string, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s: status %d: %s", path, w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: status %d: Cache-Control %q", path, w.Code, cc)
	}
	if w.Code == http.StatusOK && path == "/revoke" && w.Body.Len() == 0 {
		return
	}
	mt, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type"))
	if mt != "application/json" {
		t.Fatalf("%s: status %d: Content-Type %q: %s", path, w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%s: status %d: not a JSON object: %v: %s", path, w.Code, err, w.Body)
	}
	switch {
	case w.Code == http.StatusOK && path == "/token":
		if s, _ := m["access_token"].(string); s == "" {
			t.Fatalf("200 without access_token: %s", w.Body)
		}
	case w.Code == http.StatusOK && path == "/introspect":
		if _, ok := m["active"].(bool); !ok {
			t.Fatalf("introspection without active: %s", w.Body)
		}
	case w.Code == http.StatusOK:
	default:
		if s, _ := m["error"].(string); s == "" {
			t.Fatalf("%s: status %d without an error member: %s", path, w.Code, w.Body)
		}
		if w.Code == http.StatusUnauthorized && m["error"] != "invalid_client" {
			t.Errorf("%s: 401 with error %v", path, m["error"])
		}
	}
}
