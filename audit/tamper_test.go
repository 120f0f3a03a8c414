package audit_test

import (
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/keys"
)

// chainLen is the length of the tamper tests' chain; chainEvery its
// checkpoint interval, so the checkpoints are at 100, 200, …, 500.
const (
	chainLen   = 500
	chainEvery = 100
)

// buildChain writes chainLen records through a Writer that checkpoints
// every chainEvery records with the store's active key, closes everything
// and returns the directory. Each record's jti is jtiOf(seq).
func buildChain(t *testing.T, sealer *keys.Sealer) string {
	t.Helper()
	dir := t.TempDir()
	st := openStore(t, dir)
	ks := newKeySet(t, st, sealer)
	clk := newClock()
	w := &audit.Writer{
		Store: st, Node: "node-a", Sign: audit.KeySigner(ks, alg),
		CheckpointEvery: chainEvery, CheckpointInterval: time.Hour, Now: clk.Now,
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// One Append at a time: each is its own batch, so the checkpoints fall
	// exactly on the multiples of chainEvery.
	for i := 1; i <= chainLen; i++ {
		clk.Advance(time.Millisecond)
		if err := w.Append(ctx, sampleRecord(i, jtiOf(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := checkpointSeqs(t, st), []int64{100, 200, 300, 400, 500}; !slices.Equal(got, want) {
		t.Fatalf("checkpoints at %v, want %v", got, want)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTamper edits, deletes, inserts, reorders and truncates records (and
// forges checkpoints) directly in the SQLite file, each on a fresh copy of
// one chain, and checks that Verify names the record.
func TestTamper(t *testing.T) {
	sealer := keys.NewSealer(masterKey(t, 1))
	template := buildChain(t, sealer)

	tests := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB)
		// check inspects the report.
		check func(t *testing.T, r *audit.Report)
	}{
		{
			name:   "l untouched",
			tamper: func(t *testing.T, db *sql.DB) {},
			check: func(t *testing.T, r *audit.Report) {
				if r.Problem != nil {
					t.Fatalf("untouched chain: %v", r.Problem)
				}
				if r.Records != chainLen || r.Head.Seq != chainLen || r.Checkpoints != 5 || r.LastCheckpoint != chainLen {
					t.Errorf("report %+v, want %d records, head %d, 5 checkpoints, last at %d", r, chainLen, chainLen, chainLen)
				}
			},
		},
		{
			name: "a edit a body",
			tamper: func(t *testing.T, db *sql.DB) {
				editBody(t, db, 123, jtiOf(123), "jti-forged")
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 123, "altered", "no longer match its hash") },
		},
		{
			name: "a edit the first body",
			tamper: func(t *testing.T, db *sql.DB) {
				editBody(t, db, 1, `"outcome":"success"`, `"outcome":"failure"`)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 1, "altered") },
		},
		{
			name: "a edit the stored prev",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `UPDATE audit SET prev = ? WHERE seq = 77`, make([]byte, 32))
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 77, "altered") },
		},
		{
			name: "b edit a body and recompute its hash",
			tamper: func(t *testing.T, db *sql.DB) {
				editBody(t, db, 123, jtiOf(123), "jti-forged")
				rehash(t, db, 123)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 123, "record 124 does not link") },
		},
		{
			name: "b edit the head body and recompute its hash",
			tamper: func(t *testing.T, db *sql.DB) {
				// No record follows to break the link; the final checkpoint
				// at 500 vouches for the old hash.
				editBody(t, db, chainLen, jtiOf(chainLen), "jti-forged")
				rehash(t, db, chainLen)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, chainLen, "signed checkpoint", "rewritten") },
		},
		{
			name: "c delete a middle record",
			tamper: func(t *testing.T, db *sql.DB) {
				mustAffect(t, exec(t, db, `DELETE FROM audit WHERE seq = 250`), 1)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 250, "missing", "250 to 250") },
		},
		{
			name: "c delete a range",
			tamper: func(t *testing.T, db *sql.DB) {
				mustAffect(t, exec(t, db, `DELETE FROM audit WHERE seq BETWEEN 250 AND 260`), 11)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 250, "missing", "250 to 260") },
		},
		{
			name: "c delete the first record",
			tamper: func(t *testing.T, db *sql.DB) {
				mustAffect(t, exec(t, db, `DELETE FROM audit WHERE seq = 1`), 1)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 1, "missing") },
		},
		{
			name: "c delete a record and renumber the rest down",
			tamper: func(t *testing.T, db *sql.DB) {
				mustAffect(t, exec(t, db, `DELETE FROM audit WHERE seq = 250`), 1)
				renumber(t, db, 250, -1)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 250, "altered") },
		},
		{
			name: "d insert a forged record and renumber",
			tamper: func(t *testing.T, db *sql.DB) {
				const k = 300
				renumber(t, db, k, +1)
				forged := sampleRecord(k, "jti-forged")
				insertRecord(t, db, k+1, rawHash(t, db, k), &forged)
			},
			check: func(t *testing.T, r *audit.Report) {
				// The forged record at 301 links to 300 and is hashed right;
				// 302, the old 301, was hashed with seq 301.
				if r.Problem == nil || r.Problem.Seq < 301 || r.Problem.Seq > 302 {
					t.Fatalf("Problem %v, want one at record 301 or 302", r.Problem)
				}
				wantProblem(t, r, 302, "altered")
			},
		},
		{
			name: "d insert a forged record at the end",
			tamper: func(t *testing.T, db *sql.DB) {
				// Appending is what the writer does; a forged record after the
				// last checkpoint is indistinguishable from a real one…
				forged := sampleRecord(chainLen+1, "jti-forged")
				insertRecord(t, db, chainLen+1, rawHash(t, db, chainLen), &forged)
			},
			check: func(t *testing.T, r *audit.Report) {
				// …which is the documented limit: only the chain protects it,
				// and an append is a valid chain extension.
				if r.Problem != nil || r.Records != chainLen+1 || r.LastCheckpoint != chainLen {
					t.Errorf("report %+v (problem %v), want intact with %d records, last checkpoint %d", r, r.Problem, chainLen+1, chainLen)
				}
			},
		},
		{
			name: "e swap two adjacent rows",
			tamper: func(t *testing.T, db *sql.DB) {
				swapRows(t, db, 200, 201, "prev, hash, body")
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 200, "altered") },
		},
		{
			name: "e swap two adjacent bodies",
			tamper: func(t *testing.T, db *sql.DB) {
				swapRows(t, db, 200, 201, "body")
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 200, "altered") },
		},
		{
			name: "e swap two records across a checkpoint",
			tamper: func(t *testing.T, db *sql.DB) {
				swapRows(t, db, 100, 101, "prev, hash, body")
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 100, "altered") },
		},
		{
			name: "f truncate the tail",
			tamper: func(t *testing.T, db *sql.DB) {
				mustAffect(t, exec(t, db, `DELETE FROM audit WHERE seq > ?`, chainLen-50), 50)
			},
			check: func(t *testing.T, r *audit.Report) {
				wantProblem(t, r, chainLen-49, "missing", "truncated", "record 500")
				if r.Records != chainLen-50 {
					t.Errorf("Records = %d, want %d", r.Records, chainLen-50)
				}
			},
		},
		{
			name: "f truncate everything",
			tamper: func(t *testing.T, db *sql.DB) {
				mustAffect(t, exec(t, db, `DELETE FROM audit`), chainLen)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 1, "truncated") },
		},
		{
			// The known limit: records after the newest surviving checkpoint
			// are protected by the chain alone, and a truncated chain is
			// still a valid chain. Export checkpoints off the machine (sigil
			// audit export) to catch this; LastCheckpoint tells the operator
			// how much of the tail rests on the chain alone.
			name: "g truncate the tail and its checkpoints",
			tamper: func(t *testing.T, db *sql.DB) {
				mustAffect(t, exec(t, db, `DELETE FROM audit WHERE seq > ?`, chainLen-50), 50)
				mustAffect(t, exec(t, db, `DELETE FROM audit_checkpoints WHERE seq > ?`, chainLen-50), 1)
			},
			check: func(t *testing.T, r *audit.Report) {
				if r.Problem != nil {
					t.Fatalf("Problem %v; this truncation is the documented blind spot and should pass", r.Problem)
				}
				if r.Records != chainLen-50 || r.LastCheckpoint != 400 || r.Checkpoints != 4 {
					t.Errorf("report %+v, want %d records, 4 checkpoints, the last at 400", r, chainLen-50)
				}
			},
		},
		{
			// The same limit, at its widest: whoever can delete checkpoints
			// can rewrite everything after the newest one left.
			name: "g rewrite after deleting the checkpoints that cover it",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `DELETE FROM audit_checkpoints WHERE seq >= 300`)
				rewriteFrom(t, db, 250, replaceJTI(250))
			},
			check: func(t *testing.T, r *audit.Report) {
				if r.Problem != nil || r.LastCheckpoint != 200 {
					t.Errorf("report %+v (problem %v), want intact with the last checkpoint at 200", r, r.Problem)
				}
			},
		},
		{
			name: "h rewrite the whole chain",
			tamper: func(t *testing.T, db *sql.DB) {
				rewriteFrom(t, db, 1, replaceJTI(1))
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 100, "signed checkpoint", "rewritten") },
		},
		{
			name: "h rewrite the chain from the middle",
			tamper: func(t *testing.T, db *sql.DB) {
				rewriteFrom(t, db, 250, replaceJTI(250))
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 300, "signed checkpoint", "rewritten") },
		},
		{
			name: "h rewrite the tail after the last checkpoint-covered record",
			tamper: func(t *testing.T, db *sql.DB) {
				rewriteFrom(t, db, 500, replaceJTI(500))
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 500, "signed checkpoint") },
		},
		{
			name: "i forged checkpoints, key row with a garbage sealed half",
			tamper: func(t *testing.T, db *sql.DB) {
				forgeWithKey(t, db, func(kid string, priv []byte) []byte { return []byte("not a sealed key, but 28+ bytes long") })
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 300, "checkpoint", "invalid", "master key") },
		},
		{
			name: "i forged checkpoints, key sealed under another master key",
			tamper: func(t *testing.T, db *sql.DB) {
				other := keys.NewSealer(masterKey(t, 2))
				forgeWithKey(t, db, other.Seal)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 300, "checkpoint", "invalid") },
		},
		{
			name: "i forged checkpoints, another key's sealed half copied",
			tamper: func(t *testing.T, db *sql.DB) {
				var real []byte
				if err := db.QueryRow(`SELECT sealed FROM signing_keys LIMIT 1`).Scan(&real); err != nil {
					t.Fatal(err)
				}
				forgeWithKey(t, db, func(string, []byte) []byte { return real })
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 300, "checkpoint", "invalid") },
		},
		{
			// Control: the same forgery by someone who holds the master key
			// passes. It shows the forgeries above fail only for want of
			// the master key, not for a flaw in the forging.
			name: "i control: forged with the master key",
			tamper: func(t *testing.T, db *sql.DB) {
				forgeWithKey(t, db, sealer.Seal)
			},
			check: func(t *testing.T, r *audit.Report) {
				if r.Problem != nil || r.Records != chainLen || r.Checkpoints != 5 {
					t.Errorf("report %+v (problem %v), want intact", r, r.Problem)
				}
			},
		},
		{
			name: "i real key's public half replaced, checkpoints re-signed",
			tamper: func(t *testing.T, db *sql.DB) {
				priv, err := keys.Generate(alg)
				if err != nil {
					t.Fatal(err)
				}
				var kid string
				if err := db.QueryRow(`SELECT id FROM signing_keys WHERE state = 'active'`).Scan(&kid); err != nil {
					t.Fatal(err)
				}
				der := mustPKIX(t, priv.Public())
				mustAffect(t, exec(t, db, `UPDATE signing_keys SET public = ? WHERE id = ?`, der, kid), 1)
				hashes := rewriteFrom(t, db, 250, replaceJTI(250))
				for _, seq := range []int64{100, 200} {
					hashes[seq] = rawHash(t, db, seq)
				}
				replaceCheckpoints(t, db, 0, []int64{100, 200, 300, 400, 500}, hashes, signWith(kid, priv))
			},
			// The key no longer matches its sealed half, so no checkpoint
			// is trusted, the first one included.
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 100, "checkpoint", "invalid") },
		},
		{
			name: "j edit a checkpoint's stored hash",
			tamper: func(t *testing.T, db *sql.DB) {
				mustAffect(t, exec(t, db, `UPDATE audit_checkpoints SET hash = ? WHERE seq = 200`, rawHash(t, db, 199)), 1)
			},
			check: func(t *testing.T, r *audit.Report) {
				wantProblem(t, r, 200, "checkpoint", "invalid", "does not match its stored position and hash")
			},
		},
		{
			name: "j move a checkpoint to another record",
			tamper: func(t *testing.T, db *sql.DB) {
				mustAffect(t, exec(t, db, `UPDATE audit_checkpoints SET seq = 250, hash = ? WHERE seq = 200`, rawHash(t, db, 250)), 1)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 250, "checkpoint", "invalid") },
		},
		{
			name: "j edit a checkpoint's signature",
			tamper: func(t *testing.T, db *sql.DB) {
				var jws string
				if err := db.QueryRow(`SELECT jws FROM audit_checkpoints WHERE seq = 400`).Scan(&jws); err != nil {
					t.Fatal(err)
				}
				// Flip the last signature character: still base64url, no
				// longer the signature.
				c := jws[len(jws)-2]
				if c == 'A' {
					c = 'B'
				} else {
					c = 'A'
				}
				jws = jws[:len(jws)-2] + string(c) + jws[len(jws)-1:]
				mustAffect(t, exec(t, db, `UPDATE audit_checkpoints SET jws = ? WHERE seq = 400`, jws), 1)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 400, "checkpoint", "invalid") },
		},
		{
			name: "j replay an older checkpoint's signature",
			tamper: func(t *testing.T, db *sql.DB) {
				mustAffect(t, exec(t, db, `UPDATE audit_checkpoints SET jws = (SELECT jws FROM audit_checkpoints WHERE seq = 100) WHERE seq = 300`), 1)
			},
			check: func(t *testing.T, r *audit.Report) { wantProblem(t, r, 300, "checkpoint", "invalid") },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDB(t, template)
			db := rawDB(t, dir)
			tc.tamper(t, db)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			st := openStore(t, dir)
			r := verifyStore(t, st, sealer)
			tc.check(t, r)
			if t.Failed() && r.Problem != nil {
				t.Logf("problem: %v", r.Problem)
			}
		})
	}
}

// TestTamperCheckpointByArchivedKey checks that checkpoints signed by a key
// that was later retired and archived (DeleteKey) still verify, and that
// they are trusted because of the archive.
func TestTamperCheckpointByArchivedKey(t *testing.T) {
	ctx := t.Context()
	sealer := keys.NewSealer(masterKey(t, 1))
	dir := t.TempDir()
	st := openStore(t, dir)
	ks := newKeySet(t, st, sealer)
	oldKey, err := ks.Active(alg)
	if err != nil {
		t.Fatal(err)
	}
	w := &audit.Writer{Store: st, Sign: audit.KeySigner(ks, alg), CheckpointEvery: 10, CheckpointInterval: time.Hour}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	for i := 1; i <= 20; i++ {
		if err := w.Append(ctx, sampleRecord(i, jtiOf(i))); err != nil {
			t.Fatal(err)
		}
	}

	// Rotate: a new key, promoted (the old one retired), the old one
	// deleted from the published set and archived.
	next, err := ks.Rotate(ctx, alg)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PromoteKey(ctx, next.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteKey(ctx, oldKey.ID); err != nil {
		t.Fatal(err)
	}
	if err := ks.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 21; i <= 40; i++ {
		if err := w.Append(ctx, sampleRecord(i, jtiOf(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	cps, err := st.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cp := range cps {
		got = append(got, jwsKID(t, cp.JWS))
	}
	if want := []string{oldKey.ID, oldKey.ID, next.ID, next.ID}; !slices.Equal(got, want) {
		t.Fatalf("checkpoint kids %v, want %v", got, want)
	}
	live, err := st.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range live {
		if k.ID == oldKey.ID {
			t.Fatalf("key %s still live after DeleteKey", oldKey.ID)
		}
	}

	r := verifyStore(t, st, sealer)
	if r.Problem != nil || r.Records != 40 || r.Checkpoints != 4 || r.LastCheckpoint != 40 {
		t.Fatalf("report %+v (problem %v), want intact: 40 records, 4 checkpoints", r, r.Problem)
	}

	// Without the archive the old checkpoints could not be checked: the
	// archive is what keeps them valid.
	st.Close()
	db := rawDB(t, dir)
	mustAffect(t, exec(t, db, `DELETE FROM key_archive WHERE id = ?`, oldKey.ID), 1)
	db.Close()
	wantProblem(t, verifyStore(t, openStore(t, dir), sealer), 10, "checkpoint", "invalid")
}

// editBody replaces old with new in the body of record seq.
func editBody(t *testing.T, db *sql.DB, seq int64, old, new string) {
	t.Helper()
	var body string
	if err := db.QueryRow(`SELECT body FROM audit WHERE seq = ?`, seq).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, old) {
		t.Fatalf("record %d has no %q: %s", seq, old, body)
	}
	mustAffect(t, exec(t, db, `UPDATE audit SET body = ? WHERE seq = ?`, strings.Replace(body, old, new, 1), seq), 1)
}

// rehash recomputes the stored hash of record seq from its columns.
func rehash(t *testing.T, db *sql.DB, seq int64) {
	t.Helper()
	r := rawRecords(t, db, seq)[0]
	mustAffect(t, exec(t, db, `UPDATE audit SET hash = ? WHERE seq = ?`, audit.Hash(seq, r.prev, []byte(r.body)), seq), 1)
}

// replaceJTI returns an edit for rewriteFrom that changes the jti of
// record seq only.
func replaceJTI(seq int64) func(int64, string) string {
	return func(s int64, body string) string {
		if s != seq {
			return body
		}
		return strings.Replace(body, jtiOf(int(seq)), "jti-forged", 1)
	}
}

// renumber adds delta to the seq of every record after k, in two steps
// through negative numbers so that no step collides with a taken seq.
func renumber(t *testing.T, db *sql.DB, k int64, delta int64) {
	t.Helper()
	n := exec(t, db, `UPDATE audit SET seq = -(seq + ?) WHERE seq > ?`, delta, k)
	if m := exec(t, db, `UPDATE audit SET seq = -seq WHERE seq < 0`); m != n || n == 0 {
		t.Fatalf("renumbered %d then %d records", n, m)
	}
}

// insertRecord stores r as record seq after prev, hashed correctly.
func insertRecord(t *testing.T, db *sql.DB, seq int64, prev []byte, r *audit.Record) []byte {
	t.Helper()
	body, err := audit.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	h := audit.Hash(seq, prev, body)
	exec(t, db, `INSERT INTO audit (seq, prev, hash, body) VALUES (?, ?, ?, ?)`, seq, prev, h, string(body))
	return h
}

// swapRows swaps cols (a list of audit columns) between records a and b.
func swapRows(t *testing.T, db *sql.DB, a, b int64, cols string) {
	t.Helper()
	ra, rb := rawRecords(t, db, a)[0], rawRecords(t, db, b)[0]
	set := func(dst int64, src rawRecord) {
		switch cols {
		case "body":
			mustAffect(t, exec(t, db, `UPDATE audit SET body = ? WHERE seq = ?`, src.body, dst), 1)
		default:
			mustAffect(t, exec(t, db, `UPDATE audit SET prev = ?, hash = ?, body = ? WHERE seq = ?`, src.prev, src.hash, src.body, dst), 1)
		}
	}
	set(a, rb)
	set(b, ra)
}

// forgeWithKey is a forgery by someone with write access to the file but
// not the master key: they add a key row of their own (its sealed half made
// by seal from the PKCS #8 private key), rewrite the chain from record 250
// and replace the checkpoints at 300, 400 and 500 with ones they sign.
func forgeWithKey(t *testing.T, db *sql.DB, seal func(kid string, der []byte) []byte) {
	t.Helper()
	priv, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	der := mustPKCS8(t, priv)
	const kid = "attacker-key"
	insertKeyRow(t, db, kid, priv.Public(), seal(kid, der))
	hashes := rewriteFrom(t, db, 250, replaceJTI(250))
	replaceCheckpoints(t, db, 300, []int64{300, 400, 500}, hashes, signWith(kid, priv))
}

func mustAffect(t *testing.T, got, want int64) {
	t.Helper()
	if got != want {
		t.Fatalf("statement affected %d rows, want %d", got, want)
	}
}
