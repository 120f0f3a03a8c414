package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// runPostgres is the -postgres mode (issue 5): the same `sigil serve`
// with its default settings, once on the embedded store and once on the
// PostgreSQL database dsn (in a fresh schema, dropped afterwards), driven
// alternately; it reports both, their ratio against the 60% target, and
// the database transactions and rows written per issued token, read from
// pg_stat_database around the PostgreSQL runs.
func runPostgres(sigilBin, dsn string, d time.Duration, conns, rounds int) (bool, error) {
	work, err := os.MkdirTemp("", "sigil-load-pg-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(work)
	if sigilBin == "" {
		if sigilBin, err = buildSigil(work); err != nil {
			return false, err
		}
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false, fmt.Errorf("connect to %s: %w", dsn, err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "sigil_load_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return false, err
	}
	defer admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	u, err := url.Parse(dsn)
	if err != nil {
		return false, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pgDSN := u.String()

	mk := make([]byte, 32)
	rand.Read(mk)
	env := append(os.Environ(), "SIGIL_MASTER_KEY="+hex.EncodeToString(mk))
	type node struct {
		name, addr string
		store      []string
		cmd        *exec.Cmd
		auth       string
	}
	nodes := []*node{
		{name: "sigil token, SQLite", store: []string{"--data-dir", filepath.Join(work, "sqlite")}},
		{name: "sigil token, PostgreSQL", store: []string{"--dsn", pgDSN, "--data-dir", filepath.Join(work, "pg")}},
	}
	for _, n := range nodes {
		create := exec.Command(sigilBin, append([]string{"client", "create", "--name", "bench", "--scopes", "read", "--json"}, n.store...)...)
		create.Env = env
		out, err := create.Output()
		if err != nil {
			return false, fmt.Errorf("create client (%s): %w", n.name, err)
		}
		var c struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		}
		if err := json.Unmarshal(out, &c); err != nil {
			return false, err
		}
		n.auth = basic(c.ID, c.Secret)
		n.addr = freeAddr()
		n.cmd = exec.Command(sigilBin, append([]string{"serve", "--listen", n.addr, "--admin-listen=", "--keys-prepublish", "0s"}, n.store...)...)
		n.cmd.Env = env
		log, err := os.Create(filepath.Join(work, filepath.Base(n.store[1])+".log"))
		if err != nil {
			return false, err
		}
		n.cmd.Stdout, n.cmd.Stderr = log, log
		if err := n.cmd.Start(); err != nil {
			return false, err
		}
		defer stopProcess(n.cmd)
		if _, err := waitReady("http://"+n.addr+"/readyz", 20*time.Second); err != nil {
			return false, err
		}
	}
	body := "grant_type=client_credentials&scope=read"
	fmt.Printf("load -postgres: %d connections, %s per run, %d rounds\n", conns, d, rounds)
	for _, n := range nodes {
		drive("warm-up", "http://"+n.addr+"/token", n.auth, body, conns, time.Second)
	}
	results := make([][]result, len(nodes))
	var xacts, rows, tokens int64
	for range rounds {
		for i, n := range nodes {
			x0, r0, err := dbActivity(ctx, admin)
			if err != nil {
				return false, err
			}
			r, err := drive(n.name, "http://"+n.addr+"/token", n.auth, body, conns, d)
			if err != nil {
				return false, err
			}
			x1, r1, err := dbActivity(ctx, admin)
			if err != nil {
				return false, err
			}
			results[i] = append(results[i], r)
			if i == 1 {
				xacts, rows, tokens = xacts+x1-x0, rows+r1-r0, tokens+int64(r.requests)
			}
		}
	}
	// The PostgreSQL node's audit writer commits its last batch after the
	// run; its journal keeps the records meanwhile. Let it drain before
	// the figures are final.
	time.Sleep(500 * time.Millisecond)
	lite, pg := best(results[0]), best(results[1])
	fmt.Println()
	fmt.Println("| run | requests/s | p50 | p99 | errors |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: |")
	for _, r := range []result{lite, pg} {
		fmt.Printf("| %s | %.0f | %s | %s | %d |\n", r.name, r.rps(), r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.errors)
	}
	ratio := pg.rps() / lite.rps()
	ok := ratio >= 0.60
	fmt.Println()
	fmt.Printf("- %s: issuance on PostgreSQL %.0f%% of the same node on SQLite (target ≥ 60%%)\n", passMiss(ok), 100*ratio)
	if tokens > 0 {
		fmt.Printf("- info: on PostgreSQL, %.3f committed transactions and %.2f rows written per issued token (%d tokens; pg_stat_database, whole database)\n",
			float64(xacts)/float64(tokens), float64(rows)/float64(tokens), tokens)
	}
	return ok, nil
}

// dbActivity reads the database's committed transactions and rows
// inserted, updated and deleted so far.
func dbActivity(ctx context.Context, conn *pgx.Conn) (xacts, rows int64, err error) {
	// The statistics are a snapshot per transaction: clear it first.
	if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		return 0, 0, err
	}
	err = conn.QueryRow(ctx, `SELECT xact_commit, tup_inserted + tup_updated + tup_deleted
		FROM pg_stat_database WHERE datname = current_database()`).Scan(&xacts, &rows)
	return xacts, rows, err
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}
