package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// todoCedar copies the Cedar files of the AuthZEN Todo scenario into a
// new policy directory and returns it.
func todoCedar(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"todo.cedar", "todo.cedarschema", "todo.entities.json"} {
		b, err := os.ReadFile(filepath.Join("../../policy/testdata/todo", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// clientToken registers a client with scopes and gets a client_credentials
// token for it.
func clientToken(t *testing.T, dataDir, issuer, name, scopes string) (clientID, tok string) {
	t.Helper()
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	mustCLI(t, &c, "client", "create", "--data-dir", dataDir, "--name", name, "--scopes", scopes, "--default-scopes", scopes, "--json")
	req, err := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return c.ClientID, tr.AccessToken
}

type pep struct {
	t      *testing.T
	issuer string
	token  string
}

// post sends body to path and returns the status, the response headers
// and the body.
func (p pep) post(path, body string, hdr ...string) (int, http.Header, string) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.issuer+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestAuthZEN runs the AuthZEN API on a real `sigil serve` with the Todo
// policies, called with real client_credentials tokens.
func TestAuthZEN(t *testing.T) {
	data := t.TempDir()
	pdir := todoCedar(t)
	n := startNode(t, "serve", "--data-dir", data, "--keys-prepublish", "0s", "--policy-dir", pdir, "--policy-reload-interval", "20ms")
	clientID, tok := clientToken(t, data, n.issuer, "pep", "authzen:evaluate")
	_, readOnly := clientToken(t, data, n.issuer, "other", "read")
	p := pep{t, n.issuer, tok}
	const (
		morty  = `{"type":"user","id":"CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"}`
		rick   = `{"type":"user","id":"CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"}`
		rickTD = `{"type":"todo","id":"7240d0db-8ff0-41ec-98b2-34a096273b92","properties":{"ownerID":"rick@the-citadel.com"}}`
		mortTD = `{"type":"todo","id":"7240d0db-8ff0-41ec-98b2-34a096273b93","properties":{"ownerID":"morty@the-citadel.com"}}`
		update = `{"name":"can_update_todo"}`
	)

	t.Run("metadata", func(t *testing.T) {
		resp, err := http.Get(n.issuer + "/.well-known/authzen-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var md map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&md); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %v", resp.StatusCode, err)
		}
		want := map[string]any{
			"policy_decision_point":       n.issuer,
			"access_evaluation_endpoint":  n.issuer + "/access/v1/evaluation",
			"access_evaluations_endpoint": n.issuer + "/access/v1/evaluations",
		}
		if len(md) != len(want) {
			t.Errorf("metadata %v; want exactly %v (no search endpoints)", md, want)
		}
		for k, v := range want {
			if md[k] != v {
				t.Errorf("%s = %v, want %v", k, md[k], v)
			}
		}
	})

	t.Run("todo interop", func(t *testing.T) {
		raw, err := os.ReadFile("../../policy/testdata/todo/decisions.json")
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Evaluation []struct {
				Request  json.RawMessage `json:"request"`
				Expected bool            `json:"expected"`
			} `json:"evaluation"`
			Evaluations []struct {
				Request  json.RawMessage `json:"request"`
				Expected json.RawMessage `json:"expected"`
			} `json:"evaluations"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		for i, c := range f.Evaluation {
			code, _, body := p.post("/access/v1/evaluation", string(c.Request))
			want := `{"decision":false}`
			if c.Expected {
				want = `{"decision":true}`
			}
			if code != 200 || body != want {
				t.Errorf("evaluation %d: %d %s, want %s", i, code, body, want)
			}
		}
		for i, c := range f.Evaluations {
			code, _, body := p.post("/access/v1/evaluations", string(c.Request))
			var got, want any
			json.Unmarshal([]byte(body), &got)
			json.Unmarshal([]byte(`{"evaluations":`+string(c.Expected)+`}`), &want)
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if code != 200 || string(gb) != string(wb) {
				t.Errorf("evaluations %d: %d %s, want %s", i, code, gb, wb)
			}
		}
	})

	t.Run("batch semantics", func(t *testing.T) {
		items := `[{"subject":` + morty + `,"resource":` + rickTD + `},{"subject":` + rick + `,"resource":` + rickTD + `},{"subject":` + morty + `,"resource":` + mortTD + `}]`
		for _, tc := range []struct{ semantic, want string }{
			{"", `{"evaluations":[{"decision":false},{"decision":true},{"decision":true}]}`},
			{`,"options":{"evaluations_semantic":"execute_all"}`, `{"evaluations":[{"decision":false},{"decision":true},{"decision":true}]}`},
			{`,"options":{"evaluations_semantic":"deny_on_first_deny"}`, `{"evaluations":[{"decision":false}]}`},
			{`,"options":{"evaluations_semantic":"permit_on_first_permit"}`, `{"evaluations":[{"decision":false},{"decision":true}]}`},
			// An item missing its resource is a deny with a 400 error; the call is 200.
			{`,"evaluations":[{"subject":` + morty + `}]`, ""},
		} {
			body := `{"action":` + update + `,"evaluations":` + items + tc.semantic + `}`
			if tc.want == "" {
				body = `{"action":` + update + tc.semantic + `}`
				tc.want = `{"evaluations":[{"decision":false,"context":{"error":{"status":400,"message":"evaluations[0].resource.type is required"}}}]}`
			}
			if code, _, got := p.post("/access/v1/evaluations", body); code != 200 || got != tc.want {
				t.Errorf("%s: %d %s, want %s", tc.semantic, code, got, tc.want)
			}
		}
	})

	t.Run("reasons and request id", func(t *testing.T) {
		req := `{"subject":` + rick + `,"action":` + update + `,"resource":` + rickTD + `,"options":{"include_reasons":true}}`
		code, h, body := p.post("/access/v1/evaluation", req, "X-Request-ID", "pep-42")
		if code != 200 || !strings.HasPrefix(body, `{"decision":true,"context":{"reasons":[{"policy":`) {
			t.Errorf("%d %s; want an allow with its reasons", code, body)
		}
		if got := h.Get("X-Request-ID"); got != "pep-42" {
			t.Errorf("X-Request-ID %q, want the PEP's pep-42", got)
		}
	})

	t.Run("decisions audited", func(t *testing.T) {
		req := `{"subject":` + morty + `,"action":` + update + `,"resource":` + rickTD + `}`
		if code, _, body := p.post("/access/v1/evaluation", req); code != 200 || body != `{"decision":false}` {
			t.Fatalf("%d %s, want a deny", code, body)
		}
		// The server appends its records in batches: look until this one
		// is there.
		waitFor(t, func() bool {
			out := mustCLI(t, nil, "audit", "export", "--data-dir", data, "--format", "jsonl")
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var r struct {
					Event    string            `json:"event"`
					Outcome  string            `json:"outcome"`
					ClientID string            `json:"client_id"`
					Detail   map[string]string `json:"detail"`
				}
				if json.Unmarshal([]byte(line), &r) != nil {
					continue
				}
				d := r.Detail
				if r.Event == "policy.decision" && r.Outcome == "failure" && r.ClientID == clientID &&
					d["action"] == "can_update_todo" && d["resource_id"] == "7240d0db-8ff0-41ec-98b2-34a096273b92" &&
					strings.HasPrefix(d["subject_id"], "CiRmZDE2") && d["caller_jti"] != "" {
					return true
				}
			}
			return false
		})
	})

	t.Run("bad requests", func(t *testing.T) {
		deep := `{"subject":` + morty + `,"action":` + update + `,"resource":` + rickTD + `,"context":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`
		big := `{"subject":` + morty + `,"action":` + update + `,"resource":` + rickTD + `,"context":{"a":"` + strings.Repeat("x", 300<<10) + `"}}`
		for name, body := range map[string]string{
			"empty":            ``,
			"malformed":        `{"subject":`,
			"no resource":      `{"subject":` + morty + `,"action":` + update + `}`,
			"wrong type":       `{"subject":"alice","action":` + update + `,"resource":` + rickTD + `}`,
			"deeply nested":    deep,
			"oversized":        big,
			"token in context": `{"subject":` + morty + `,"action":` + update + `,"resource":` + rickTD + `,"context":{"token":{}}}`,
		} {
			code, _, got := p.post("/access/v1/evaluation", body)
			if code != 400 || !strings.HasPrefix(got, `{"error":{"status":400,"message":"`) {
				t.Errorf("%s: %d %s; want a 400 with a JSON error", name, code, got)
			}
		}
		code, _, _ := p.post("/access/v1/evaluation", `{}`, "Content-Type", "text/plain")
		if code != 400 {
			t.Errorf("text/plain: %d, want 400", code)
		}
		if code, _, _ := p.post("/access/v1/search/subject", `{}`); code != http.StatusNotImplemented {
			t.Errorf("search: %d, want 501", code)
		}
	})

	t.Run("caller authentication", func(t *testing.T) {
		req := `{"subject":` + rick + `,"action":` + update + `,"resource":` + rickTD + `}`
		code, h, _ := pep{t, n.issuer, ""}.post("/access/v1/evaluation", req, "X-Request-ID", "r1")
		if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || h.Get("X-Request-ID") != "r1" {
			t.Errorf("no token: %d %q; want 401 with a Bearer challenge", code, h.Values("WWW-Authenticate"))
		}
		code, h, _ = pep{t, n.issuer, tok + "x"}.post("/access/v1/evaluation", req)
		if code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("bad token: %d %q; want 401 invalid_token", code, h.Values("WWW-Authenticate"))
		}
		code, h, _ = pep{t, n.issuer, readOnly}.post("/access/v1/evaluations", req)
		if c := h.Get("WWW-Authenticate"); code != 403 || !strings.Contains(c, `error="insufficient_scope"`) || !strings.Contains(c, `scope="authzen:evaluate"`) {
			t.Errorf("without the scope: %d %q; want 403 insufficient_scope", code, c)
		}
	})

	t.Run("reload", func(t *testing.T) {
		req := `{"subject":` + rick + `,"action":` + update + `,"resource":` + rickTD + `}`
		path := filepath.Join(pdir, "todo.cedar")
		good, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		setFile := func(b []byte, shift time.Duration) {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			mt := time.Now().Add(shift)
			os.Chtimes(path, mt, mt)
		}
		setFile(append(append([]byte{}, good...), "\npermit(principal, action, resource) when { };\n"...), time.Hour)
		waitFor(t, func() bool { return strings.Contains(n.stderr.String(), "todo.cedar:") })
		if code, _, body := p.post("/access/v1/evaluation", req); code != 200 || body != `{"decision":true}` {
			t.Errorf("after a broken reload: %d %s; want the old set's allow", code, body)
		}
		setFile([]byte(`forbid(principal, action, resource);`), 2*time.Hour)
		waitFor(t, func() bool {
			_, _, body := p.post("/access/v1/evaluation", req)
			return body == `{"decision":false}`
		})
	})

	t.Run("revoked caller", func(t *testing.T) {
		mustCLI(t, nil, "revoke", "--data-dir", data, "--client", clientID)
		req := `{"subject":` + rick + `,"action":` + update + `,"resource":` + rickTD + `}`
		waitFor(t, func() bool {
			code, _, _ := p.post("/access/v1/evaluation", req)
			return code == 401
		})
	})
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}
