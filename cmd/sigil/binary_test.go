package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// builtBinary is the sigil binary built once per test run by `go build`.
var builtBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// sigilBinary builds the real binary (once per test run) and returns its
// path. It skips the test in -short mode or without a go command.
func sigilBinary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds the sigil binary; skipped in -short mode")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		tb.Skipf("no go command to build the binary: %v", err)
	}
	b := &builtBinary
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "sigil-bin-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "sigil")
		cmd := exec.Command(goCmd, "build", "-o", b.path, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

func removeBuiltBinary() {
	if builtBinary.dir != "" {
		os.RemoveAll(builtBinary.dir)
	}
}

// process is a running `sigil serve`.
type process struct {
	cmd    *exec.Cmd
	issuer string
	admin  string
	stderr *syncBuffer
	exited chan int // receives the exit status once
	err    error    // Wait's error, valid once exited has been received
}

// startServe starts `sigil serve` on dataDir with fresh loopback ports
// (and prepublication off), plus any extra flags, and returns without
// waiting for readiness.
func startServe(tb testing.TB, bin, dataDir string, extra ...string) *process {
	tb.Helper()
	return startServeEnv(tb, bin, nil, append([]string{"--data-dir", dataDir, "--keys-prepublish", "0s"}, extra...)...)
}

// startServeEnv starts `sigil serve ARGS` with fresh loopback ports and
// only env (NAME=VALUE) and PATH in its environment, and returns without
// waiting for readiness.
func startServeEnv(tb testing.TB, bin string, env []string, args ...string) *process {
	tb.Helper()
	pub, err := freeAddr()
	if err != nil {
		tb.Fatal(err)
	}
	adm, err := freeAddr()
	if err != nil {
		tb.Fatal(err)
	}
	p := &process{issuer: "http://" + pub, admin: "http://" + adm, stderr: new(syncBuffer), exited: make(chan int, 1)}
	p.cmd = exec.Command(bin, append([]string{"serve", "--listen", pub, "--admin-listen", adm}, args...)...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...) // no SIGIL_* from the caller
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.exited <- p.cmd.ProcessState.ExitCode()
	}()
	tb.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit status and how long the process
// took to exit; it fails the test if it takes longer than limit.
func (p *process) stop(tb testing.TB, limit time.Duration) (int, time.Duration) {
	tb.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case code := <-p.exited:
		return code, time.Since(start)
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.exited
		tb.Fatalf("sigil serve did not exit within %s of SIGTERM; stderr:\n%s", limit, p.stderr)
		return -1, 0
	}
}

// TestBinarySIGTERM runs the real binary: SIGTERM makes `sigil serve` exit
// 0 promptly, on a new data directory and again on an existing one. It
// logs the start-up time to ready (BenchmarkStartup measures it).
func TestBinarySIGTERM(t *testing.T) {
	bin := sigilBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	for _, run := range []string{"first start (new data dir)", "second start (existing data dir)"} {
		start := time.Now()
		p := startServe(t, bin, dir)
		if err := waitHTTP(p.issuer+"/readyz", 20*time.Second, p.exited); err != nil {
			t.Fatalf("%s: %v; stderr:\n%s", run, err, p.stderr)
		}
		ready := time.Since(start)
		if err := waitHTTP(p.issuer+"/healthz", time.Second, nil); err != nil {
			t.Fatalf("%s: %v", run, err)
		}
		code, took := p.stop(t, 5*time.Second)
		if code != 0 {
			var ee *exec.ExitError
			errors.As(p.err, &ee)
			t.Fatalf("%s: exit status %d after SIGTERM (%v), want 0; stderr:\n%s", run, code, ee, p.stderr)
		}
		if !bytes.Contains(p.stderr.Bytes(), []byte("shutting down")) {
			t.Errorf("%s: stderr does not log the shutdown:\n%s", run, p.stderr)
		}
		t.Logf("%s: ready %v after exec; exited 0 %v after SIGTERM", run, ready.Round(time.Millisecond), took.Round(time.Millisecond))
	}
}

// BenchmarkStartup measures the real binary from exec to GET /readyz 200
// on an existing data directory (the common restart case). Shutting down
// is not timed.
func BenchmarkStartup(b *testing.B) {
	bin := sigilBinary(b)
	dir := filepath.Join(b.TempDir(), "data")
	// The first start creates the store, keys and admin token.
	p := startServe(b, bin, dir)
	if err := waitHTTP(p.issuer+"/readyz", 20*time.Second, p.exited); err != nil {
		b.Fatalf("%v; stderr:\n%s", err, p.stderr)
	}
	if code, _ := p.stop(b, 10*time.Second); code != 0 {
		b.Fatalf("first start: exit status %d", code)
	}
	b.ResetTimer()
	for range b.N {
		p := startServe(b, bin, dir)
		if err := waitHTTP(p.issuer+"/readyz", 20*time.Second, p.exited); err != nil {
			b.Fatalf("%v; stderr:\n%s", err, p.stderr)
		}
		b.StopTimer()
		if code, _ := p.stop(b, 10*time.Second); code != 0 {
			b.Fatalf("exit status %d after SIGTERM", code)
		}
		b.StartTimer()
	}
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

func (s *syncBuffer) String() string { return string(s.Bytes()) }
