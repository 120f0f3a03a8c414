package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain removes the binary the tests built once every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinary.dir != "" {
		os.RemoveAll(builtBinary.dir)
	}
	os.Exit(code)
}

// builtBinary is the sigil binary, built once per test run.
var builtBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// sigilBinary builds cmd/sigil (once per test run) and returns its path.
// Unlike cmd/sigil's binary tests it runs in -short mode too: the browser
// and openid-client tests are the only proof of the flow with real
// clients, and never skip.
func sigilBinary(t *testing.T) string {
	t.Helper()
	b := &builtBinary
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "sigil-e2e-bin-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "sigil")
		cmd := exec.Command("go", "build", "-o", b.path, "github.com/sigil-sts/sigil/cmd/sigil")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/sigil: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// sigil is one data directory and the binary that works on it: the admin
// commands run against it directly, and start runs `sigil serve` on it.
type sigil struct {
	bin, dataDir string
}

// newSigil builds the binary and returns it with a fresh data directory.
func newSigil(t *testing.T) *sigil {
	t.Helper()
	return &sigil{bin: sigilBinary(t), dataDir: filepath.Join(t.TempDir(), "data")}
}

// run runs `sigil ARGS… --data-dir DIR` with stdin and returns its
// stdout; it fails the test unless the command exits 0.
func (s *sigil) run(t *testing.T, stdin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(s.bin, append(args, "--data-dir", s.dataDir)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no SIGIL_* from the caller
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sigil %s: %v; stderr: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// createUser runs `sigil user create` with the password on stdin.
func (s *sigil) createUser(t *testing.T, username, password string, claims map[string]any) {
	t.Helper()
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	s.run(t, password+"\n", "user", "create", "--username", username, "--password-stdin", "--claims", string(c))
}

// registeredClient is the RFC 7591 part of `sigil client create --json`
// that the tests use.
type registeredClient struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret"`
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
}

// createClient registers a browser client for the authorization code flow
// with refresh tokens, redirecting to redirectURI and authenticating with
// authMethod (client_secret_basic, or none for a public client).
func (s *sigil) createClient(t *testing.T, name, redirectURI, authMethod string) registeredClient {
	t.Helper()
	out := s.run(t, "", "client", "create", "--name", name,
		"--grant-types", "authorization_code,refresh_token",
		"--redirect-uris", redirectURI,
		"--scopes", "openid profile email offline_access",
		"--auth-method", authMethod, "--json")
	var c registeredClient
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("sigil client create --json: %v\n%s", err, out)
	}
	if c.ClientID == "" || (authMethod != "none" && c.ClientSecret == "") {
		t.Fatalf("sigil client create --json: no client_id or client_secret:\n%s", out)
	}
	return c
}

// server is a running `sigil serve`.
type server struct {
	issuer string
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{} // closed once the process has exited
}

// start runs `sigil serve` on the data directory, on free loopback ports,
// with any further flags given, and waits until it is ready. The server
// is stopped with SIGTERM when the test ends, and its log is shown if the
// test failed.
func (s *sigil) start(t *testing.T, flags ...string) *server {
	t.Helper()
	pub, adm := freeAddr(t), freeAddr(t)
	srv := &server{issuer: "http://" + pub, stderr: new(syncBuffer), exited: make(chan struct{})}
	args := append([]string{"serve", "--data-dir", s.dataDir, "--listen", pub, "--admin-listen", adm, "--keys-prepublish", "0s"}, flags...)
	srv.cmd = exec.Command(s.bin, args...)
	srv.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	srv.cmd.Stderr = srv.stderr
	if err := srv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		srv.cmd.Wait()
		close(srv.exited)
	}()
	t.Cleanup(func() {
		srv.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-srv.exited:
		case <-time.After(10 * time.Second):
			srv.cmd.Process.Kill()
			<-srv.exited
			t.Errorf("sigil serve did not exit within 10s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("sigil serve log:\n%s", srv.stderr.Bytes())
		}
	})
	srv.waitReady(t)
	return srv
}

// waitReady polls {issuer}/readyz until it answers 200.
func (srv *server) waitReady(t *testing.T) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(srv.issuer + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-srv.exited:
			t.Fatalf("sigil serve exited before it was ready: %v; log:\n%s", srv.cmd.ProcessState, srv.stderr.Bytes())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sigil serve not ready within 20s (last: %v); log:\n%s", err, srv.stderr.Bytes())
		}
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
