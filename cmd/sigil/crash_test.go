package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// loadWorkers is how many clients ask for tokens at once.
const loadWorkers = 32

// load drives client_credentials from loadWorkers goroutines, each an
// x/oauth2 client, and keeps the jti of every token a client received in
// a complete 200 response.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	tr     *http.Transport
	issued atomic.Int64

	mu     sync.Mutex
	jtis   []string
	errs   int
	sample error // one refusal (not a connection error), if any
}

func startLoad(t *testing.T, tokenURL, id, secret string) *load {
	t.Helper()
	l := &load{tr: &http.Transport{MaxIdleConnsPerHost: loadWorkers}}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: l.tr, Timeout: 10 * time.Second})
	cc := &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: tokenURL, Scopes: []string{"read"}, AuthStyle: oauth2.AuthStyleInHeader}
	for range loadWorkers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				tok, err := cc.Token(ctx)
				if err != nil {
					l.failed(ctx, err)
					continue
				}
				jti := jwtID(tok.AccessToken)
				l.mu.Lock()
				l.jtis = append(l.jtis, jti)
				l.mu.Unlock()
				l.issued.Add(1)
			}
		}()
	}
	return l
}

func (l *load) failed(ctx context.Context, err error) {
	l.mu.Lock()
	l.errs++
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && l.sample == nil {
		l.sample = err
	}
	l.mu.Unlock()
	// The server is gone or going: do not spin.
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Millisecond):
	}
}

// stop ends the load and returns the jtis received, the number of failed
// requests and one refusal the server answered, if any.
func (l *load) stop() ([]string, int, error) {
	l.cancel()
	l.wg.Wait()
	l.tr.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.jtis, l.errs, l.sample
}

// jwtID is the jti of a JWT, read without verification ("" if none).
func jwtID(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		JTI string `json:"jti"`
	}
	json.Unmarshal(b, &c)
	return c.JTI
}

// binCLI runs the real binary with args (no SIGIL_* from the caller) and
// returns stdout, stderr and the exit status.
func binCLI(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("sigil %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// checkTrail opens the store with the real binary after the server has
// gone: `sigil audit verify` must exit 0, and every jti in received must
// have its token.issued record. It returns the verify report.
func checkTrail(t *testing.T, bin, dir string, received []string) verifyReport {
	t.Helper()
	out, errs, code := binCLI(t, bin, "audit", "verify", "--data-dir", dir, "--json")
	var r verifyReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || !r.Intact {
		t.Fatalf("audit verify: exit %d, %s %s (%v)", code, out, errs, err)
	}
	out, errs, code = binCLI(t, bin, "audit", "export", "--data-dir", dir, "--event", "token.issued")
	if code != 0 {
		t.Fatalf("audit export: exit %d: %s", code, errs)
	}
	recorded := map[string]bool{}
	for _, l := range parseJSONL(t, out) {
		if l.Event != "token.issued" || l.JTI == "" {
			t.Fatalf("export --event token.issued gave %+v", l)
		}
		recorded[l.JTI] = true
	}
	var missing []string
	for _, j := range received {
		if !recorded[j] {
			missing = append(missing, j)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d tokens clients received have no token.issued record, e.g. %v", len(missing), len(received), missing[:min(5, len(missing))])
	}
	return r
}

// newLoadClient registers the client the load uses, with the in-process
// CLI, before any server runs on dir.
func newLoadClient(t *testing.T, dir string) (id, secret string) {
	t.Helper()
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	mustCLI(t, &c, "client", "create", "--data-dir", dir, "--name", "load", "--scopes", "read", "--json")
	return c.ClientID, c.ClientSecret
}

// waitIssued waits until the load has received at least n tokens.
func waitIssued(t *testing.T, l *load, n int64, p *process) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for l.issued.Load() < n {
		select {
		case code := <-p.exited:
			t.Fatalf("sigil serve exited with %d under load; stderr:\n%s", code, p.stderr)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d tokens within 20s", l.issued.Load())
		}
	}
}

// TestCrashKill9 is the audit trail's durability promise under the worst
// ending: kill -9 of `sigil serve` while 32 clients ask for tokens. After
// each kill the chain verifies and every token a client received has its
// token.issued record. The kill lands at a different moment of the load
// each time, on the same data directory, so the chain also has to carry
// on across crashes. Checkpoints are signed every 250 records, so kills
// also land around checkpoint writes.
func TestCrashKill9(t *testing.T) {
	bin := sigilBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	id, secret := newLoadClient(t, dir)
	var total int
	for i, killAt := range []time.Duration{300 * time.Millisecond, 1100 * time.Millisecond, 2300 * time.Millisecond} {
		p := startServe(t, bin, dir, "--audit-checkpoint-every", "250")
		if err := waitHTTP(p.issuer+"/readyz", 20*time.Second, p.exited); err != nil {
			t.Fatalf("run %d: %v; stderr:\n%s", i, err, p.stderr)
		}
		l := startLoad(t, p.issuer+"/token", id, secret)
		start := time.Now()
		waitIssued(t, l, 1, p)
		// kill -9 at this moment of the load, whatever is in flight.
		select {
		case code := <-p.exited:
			t.Fatalf("run %d: sigil serve exited with %d under load; stderr:\n%s", i, code, p.stderr)
		case <-time.After(killAt - time.Since(start)):
		}
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		received, failed, refusal := l.stop()
		if refusal != nil {
			t.Errorf("run %d: the server refused a request under load: %v", i, refusal)
		}
		r := checkTrail(t, bin, dir, received)
		total += len(received)
		t.Logf("run %d: killed after %v: %d tokens received, %d requests failed; chain intact with %d records, %d checkpoints",
			i, time.Since(start).Round(time.Millisecond), len(received), failed, r.Records, r.Checkpoints)
	}
	if total < 100 {
		t.Errorf("only %d tokens over all runs: the load was too light to mean much", total)
	}
}

// TestCrashSIGTERMUnderLoad: SIGTERM while 32 clients ask for tokens;
// `sigil serve` exits 0, every token a client received has its record,
// and the trail ends with a signed checkpoint over its head (Close writes
// one after the last flush). CLI commands append to the same chain from
// another process while the load runs.
func TestCrashSIGTERMUnderLoad(t *testing.T) {
	bin := sigilBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	id, secret := newLoadClient(t, dir)
	p := startServe(t, bin, dir)
	if err := waitHTTP(p.issuer+"/readyz", 20*time.Second, p.exited); err != nil {
		t.Fatalf("%v; stderr:\n%s", err, p.stderr)
	}
	l := startLoad(t, p.issuer+"/token", id, secret)
	waitIssued(t, l, 200, p)
	// Another process appends to the same chain meanwhile.
	const cliRecords = 3
	for i := range cliRecords {
		if _, errs, code := binCLI(t, bin, "client", "create", "--data-dir", dir, "--name", "beside-"+strconv.Itoa(i)); code != 0 {
			t.Fatalf("client create beside the server: exit %d: %s", code, errs)
		}
	}
	waitIssued(t, l, l.issued.Load()+200, p)
	code, took := p.stop(t, 20*time.Second)
	received, failed, refusal := l.stop()
	if code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
	if refusal != nil {
		t.Errorf("the server refused a request under load: %v", refusal)
	}
	r := checkTrail(t, bin, dir, received)
	if r.Checkpoints == 0 || r.LastCheckpoint != r.HeadSeq {
		t.Errorf("trail ends at record %d, last checkpoint at %d (%d checkpoints): want a checkpoint over the head", r.HeadSeq, r.LastCheckpoint, r.Checkpoints)
	}
	if want := int64(len(received)) + 1 + cliRecords; r.HeadSeq < want {
		t.Errorf("head %d: fewer records than the %d tokens received and the %d CLI changes", r.HeadSeq, len(received), 1+cliRecords)
	}
	t.Logf("SIGTERM: exit 0 after %v; %d tokens received, %d requests failed; %d records, %d checkpoints",
		took.Round(time.Millisecond), len(received), failed, r.Records, r.Checkpoints)
}
