package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
	"github.com/sigil-sts/sigil/store/storetest"
)

func openT(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// openClosed opens dir and closes the store when the test ends.
func openClosed(t testing.TB, dir string) *Store {
	t.Helper()
	s := openT(t, dir)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sigil.Store {
		return openT(t, t.TempDir())
	})
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "data")
	s := openClosed(t, dir)
	// A write makes sure the WAL exists.
	if err := s.CreateClient(t.Context(), &sigil.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700|fs.ModeDir)
	checkMode(t, filepath.Join(dir, "sigil.db"), 0o600)
	for _, suffix := range []string{"-wal", "-shm"} {
		p := filepath.Join(dir, "sigil.db"+suffix)
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v (expected in WAL mode)", p, err)
			continue
		}
		checkMode(t, p, 0o600)
	}
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModeDir | fs.ModePerm); got != want {
		t.Errorf("mode of %s = %v, want %v", path, got, want)
	}
}

func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%2Fchars")
	s := openClosed(t, dir)
	if err := s.CreateClient(t.Context(), &sigil.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	checkMode(t, filepath.Join(dir, "sigil.db"), 0o600)
	entries, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(dir) {
		t.Errorf("parent holds %v, want only %q", entries, filepath.Base(dir))
	}
}

func TestOpenEmptyDir(t *testing.T) {
	if _, err := Open(t.Context(), ""); err == nil {
		t.Fatal("Open(\"\") succeeded, want an error")
	}
}

func TestPragmas(t *testing.T) {
	s := openClosed(t, t.TempDir())
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "5000",
		"synchronous":  "1", // NORMAL
	} {
		var got string
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
		}
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	exp := time.Now().Add(time.Hour)
	s := openT(t, dir)
	c := &sigil.Client{ID: "svc", Name: "Service", Scopes: []string{"a"}, Claims: map[string]any{"k": "v"}}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, &sigil.SigningKey{ID: "k1", Alg: "ES256", State: sigil.KeyActive, Public: []byte{1}, Sealed: []byte{2}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, sigil.Revocation{Kind: sigil.RevokeClient, Value: "svc", Cutoff: time.Now(), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkJTI(ctx, "seen", exp); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s = openClosed(t, dir)
	got, err := s.Client(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Service" || got.Claims["k"] != "v" || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Errorf("after reopen Client = %+v, want %+v", got, c)
	}
	if ks, err := s.Keys(ctx); err != nil || len(ks) != 1 || ks[0].State != sigil.KeyActive {
		t.Errorf("after reopen Keys = %+v, %v; want the active key", ks, err)
	}
	if ok, err := s.Revoked(ctx, sigil.TokenRef{ClientID: "svc", IssuedAt: time.Now().Add(-time.Minute)}); err != nil || !ok {
		t.Errorf("after reopen Revoked = %v, %v; want true", ok, err)
	}
	if err := s.MarkJTI(ctx, "seen", exp); !errors.Is(err, sigil.ErrReplay) {
		t.Errorf("after reopen MarkJTI = %v, want ErrReplay", err)
	}
}

// migrationRows returns the recorded migration versions.
func migrationRows(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func wantMigrations(t *testing.T, s *Store) {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	got := migrationRows(t, s)
	if len(got) != len(ms) {
		t.Fatalf("schema_migrations = %v, want versions 1..%d once each", got, len(ms))
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("schema_migrations = %v, want versions 1..%d once each", got, len(ms))
		}
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	wantMigrations(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openClosed(t, dir)
	wantMigrations(t, s)
	// Running migrate again on an open store changes nothing either.
	if err := migrate(t.Context(), s.db); err != nil {
		t.Fatal(err)
	}
	wantMigrations(t, s)
}

// TestConcurrentOpen opens one new database from several stores at once,
// as a server and a CLI starting together would.
func TestConcurrentOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	const n = 8
	stores := make([]*Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(context.Background(), dir)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	wantMigrations(t, stores[0])
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if _, err := s.db.ExecContext(t.Context(), "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'future')"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(t.Context(), dir)
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %v, want it to say the schema is newer", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].name != "0001_init.sql" {
		t.Errorf("migrations = %+v, want 0001_init.sql first", ms)
	}
}

// TestTwoStores runs a CLI and a server against one directory: each sees
// the other's commits.
func TestTwoStores(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	server, cli := openClosed(t, dir), openClosed(t, dir)

	v := version(t, server)
	if err := cli.CreateClient(ctx, &sigil.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	v2 := version(t, server)
	if v2 == v {
		t.Errorf("server Version stayed %d after the CLI created a client", v)
	}
	if v3 := version(t, server); v3 != v2 {
		t.Errorf("server Version moved from %d to %d without a write", v2, v3)
	}
	if _, err := server.Client(ctx, "c"); err != nil {
		t.Errorf("server does not see the CLI's client: %v", err)
	}

	cv := version(t, cli)
	if err := server.Revoke(ctx, sigil.Revocation{Kind: sigil.RevokeSubject, Value: "alice", Cutoff: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Revocations are read from the store on every check, so they do not
	// move Version (migration 0004); they are seen at once all the same.
	if v := version(t, cli); v != cv {
		t.Errorf("CLI Version moved from %d to %d after a revocation", cv, v)
	}
	ok, err := cli.Revoked(ctx, sigil.TokenRef{Subject: "alice", IssuedAt: time.Now().Add(-time.Minute)})
	if err != nil || !ok {
		t.Errorf("CLI Revoked = %v, %v; want true", ok, err)
	}

	exp := time.Now().Add(time.Hour)
	if err := server.MarkJTI(ctx, "assertion-1", exp); err != nil {
		t.Fatal(err)
	}
	if err := cli.MarkJTI(ctx, "assertion-1", exp); !errors.Is(err, sigil.ErrReplay) {
		t.Errorf("MarkJTI through the second store = %v, want ErrReplay", err)
	}

	// Both race for fresh keys: exactly one wins each.
	for i := range 20 {
		key := fmt.Sprintf("race-%d", i)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, s := range []*Store{server, cli, server, cli} {
			wg.Go(func() {
				err := s.MarkJTI(ctx, key, exp)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, sigil.ErrReplay):
					t.Errorf("MarkJTI(%s): %v", key, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("MarkJTI(%s) across two stores: %d wins, want 1", key, wins.Load())
		}
	}
}

func version(t *testing.T, s *Store) int64 {
	t.Helper()
	v, err := s.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVersionAfterClose(t *testing.T) {
	s := openT(t, t.TempDir())
	s.Close()
	if _, err := s.Version(t.Context()); err == nil {
		t.Error("Version after Close succeeded, want an error")
	}
}

// TestRevokedQueryPlan checks that every arm of the hot-path query is a
// primary-key lookup, never a table scan.
func TestRevokedQueryPlan(t *testing.T) {
	s := openClosed(t, t.TempDir())
	plan := queryPlan(t, s, revokedSQL, "j", "c", "s", int64(1))
	searches := 0
	for _, d := range plan {
		if strings.HasPrefix(d, "SCAN") && strings.Contains(d, "revocations") {
			t.Errorf("query plan scans the table: %q", d)
		}
		if strings.Contains(d, "revocations USING PRIMARY KEY (kind=? AND value=?)") {
			searches++
		}
	}
	if searches != 3 {
		t.Errorf("query plan has %d primary-key searches, want 3:\n%s", searches, strings.Join(plan, "\n"))
	}
}

func TestRevokeRejects(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, t.TempDir())
	now := time.Now()
	for _, r := range []sigil.Revocation{
		{Kind: "token", Value: "x", Cutoff: now, ExpiresAt: now},
		{Kind: "", Value: "x", Cutoff: now, ExpiresAt: now},
		{Kind: sigil.RevokeClient, Value: "", Cutoff: now, ExpiresAt: now},
	} {
		if err := s.Revoke(ctx, r); err == nil {
			t.Errorf("Revoke(%+v) succeeded, want an error", r)
		}
	}
	// Rows that bypassed Revoke (an old bug, a manual edit) still never
	// match empty token fields.
	for _, kind := range []string{"jti", "client", "subject"} {
		if _, err := s.db.ExecContext(ctx, "INSERT INTO revocations VALUES (?, '', ?, ?)", kind, now.Add(time.Hour).Unix(), now.Add(time.Hour).Unix()); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []sigil.TokenRef{{}, {IssuedAt: now}, {JTI: "j", IssuedAt: now}} {
		if ok, err := s.Revoked(ctx, ref); err != nil || ok {
			t.Errorf("Revoked(%+v) = %v, %v; want false", ref, ok, err)
		}
	}
}

func TestOneActiveKeyPerAlg(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, t.TempDir())
	key := func(id, alg string, st sigil.KeyState) *sigil.SigningKey {
		return &sigil.SigningKey{ID: id, Alg: alg, State: st, Public: []byte{1}, Sealed: []byte{2}}
	}
	if err := s.CreateKey(ctx, key("a", "ES256", sigil.KeyActive)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, key("b", "ES256", sigil.KeyActive)); !errors.Is(err, sigil.ErrConflict) {
		t.Errorf("second active ES256 key: %v, want ErrConflict", err)
	}
	if err := s.CreateKey(ctx, key("c", "EdDSA", sigil.KeyActive)); err != nil {
		t.Errorf("active EdDSA key next to active ES256: %v", err)
	}
	if err := s.CreateKey(ctx, key("d", "ES256", "bogus")); err == nil {
		t.Error("CreateKey with an invalid state succeeded")
	}
	if err := s.CreateKey(ctx, key("", "ES256", sigil.KeyNext)); err == nil {
		t.Error("CreateKey with an empty ID succeeded")
	}
}

func TestInjectedClock(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, t.TempDir())
	now := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	s.Now = func() time.Time { return now }

	c := &sigil.Client{ID: "c"}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	want := now.UTC().Truncate(time.Microsecond)
	if c.CreatedAt != want || c.UpdatedAt != want {
		t.Errorf("CreateClient stamps = %v, %v; want %v in UTC", c.CreatedAt, c.UpdatedAt, want)
	}
	if got, _ := s.Client(ctx, "c"); got == nil || got.CreatedAt != want {
		t.Errorf("stored CreatedAt = %+v, want %v", got, want)
	}
	created := now
	now = now.Add(time.Hour)
	upd := &sigil.Client{ID: "c", Name: "n"}
	if err := s.UpdateClient(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if !upd.CreatedAt.Equal(created.Truncate(time.Microsecond)) || !upd.UpdatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Errorf("UpdateClient stamps = %v, %v", upd.CreatedAt, upd.UpdatedAt)
	}

	k := &sigil.SigningKey{ID: "k", Alg: "ES256", State: sigil.KeyNext}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if !k.CreatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Errorf("CreateKey with zero CreatedAt set %v, want %v", k.CreatedAt, now)
	}

	// The replay entry lives until exactly its expiry.
	exp := now.Add(10 * time.Second)
	if err := s.MarkJTI(ctx, "j", exp); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Time
		want error
	}{
		{now.Add(5 * time.Second), sigil.ErrReplay},
		{exp.Add(-time.Nanosecond), sigil.ErrReplay},
		{exp, nil},
	} {
		now = tt.at
		if err := s.MarkJTI(ctx, "j", exp.Add(time.Hour)); !errors.Is(err, tt.want) {
			t.Errorf("MarkJTI at expiry%+v = %v, want %v", tt.at.Sub(exp), err, tt.want)
		}
	}
}

func TestFarTimes(t *testing.T) {
	ctx := t.Context()
	s := openClosed(t, t.TempDir())
	// Beyond the int64 nanosecond range the expiry clamps instead of
	// wrapping into the past.
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.MarkJTI(ctx, "far", far); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkJTI(ctx, "far", far); !errors.Is(err, sigil.ErrReplay) {
		t.Errorf("MarkJTI with a far expiry, again = %v, want ErrReplay", err)
	}
	if got := rowcodec.UnixNano(time.Time{}); got >= 0 {
		t.Errorf("rowcodec.UnixNano(zero) = %d, want clamped negative", got)
	}
}

func BenchmarkRevoked(b *testing.B) {
	ctx := context.Background()
	s := openClosed(b, b.TempDir())
	now := time.Now()
	const n = 10000
	for i := range n {
		for _, kind := range []sigil.RevocationKind{sigil.RevokeJTI, sigil.RevokeClient, sigil.RevokeSubject} {
			err := s.Revoke(ctx, sigil.Revocation{Kind: kind, Value: fmt.Sprintf("%s-%d", kind, i), Cutoff: now, ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	var hits atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			// Half the lookups miss entirely, the usual case.
			ref := sigil.TokenRef{
				JTI:      fmt.Sprintf("miss-%d", i),
				ClientID: fmt.Sprintf("client-%d", i%(2*n)),
				Subject:  "nobody",
				IssuedAt: now.Add(-time.Minute),
			}
			ok, err := s.Revoked(ctx, ref)
			if err != nil {
				b.Error(err)
				return
			}
			if ok {
				hits.Add(1)
			}
		}
	})
	if hits.Load() == 0 {
		b.Fatal("no lookup hit a revocation")
	}
}

func BenchmarkClient(b *testing.B) {
	ctx := context.Background()
	s := openClosed(b, b.TempDir())
	const n = 1000
	for i := range n {
		c := &sigil.Client{
			ID: fmt.Sprintf("client-%d", i), Name: "bench", SecretHash: make([]byte, 32),
			AuthMethod: sigil.AuthSecretBasic, GrantTypes: []string{sigil.GrantClientCredentials},
			Scopes: []string{"a", "b", "c"}, Audiences: []string{"https://api.example.com"},
			Claims: map[string]any{"tenant": "acme"},
		}
		if err := s.CreateClient(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := s.Client(ctx, fmt.Sprintf("client-%d", i%n)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMarkJTI(b *testing.B) {
	ctx := context.Background()
	s := openClosed(b, b.TempDir())
	exp := time.Now().Add(time.Hour)
	var seq atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.MarkJTI(ctx, fmt.Sprintf("jti-%d", seq.Add(1)), exp); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
