package audit_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/store/sqlite"
	_ "modernc.org/sqlite" // driver "sqlite", for opening the file behind the store's back
)

// alg is the algorithm of the checkpoint keys in these tests.
const alg = "ES256"

// t0 is the injected start time of every clock in these tests.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// openStore opens the real SQLite store in dir, closed at the end of the
// test.
func openStore(tb testing.TB, dir string) *sqlite.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// masterKey returns the master key of 32 bytes b.
func masterKey(tb testing.TB, b byte) keys.MasterKey {
	tb.Helper()
	mk, err := keys.ParseMasterKey(hex.EncodeToString(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		tb.Fatal(err)
	}
	return mk
}

// newKeySet returns a loaded key set on st with an active ES256 key.
func newKeySet(tb testing.TB, st sigil.KeyStore, sealer *keys.Sealer) *keys.Set {
	tb.Helper()
	ks := &keys.Set{Store: st, Sealer: sealer, LoadPrivate: true}
	if err := ks.Init(context.Background(), alg); err != nil {
		tb.Fatal(err)
	}
	return ks
}

// clock is an injected time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sampleRecord is a realistic issuance record (a body of about 400
// bytes); jti names it.
func sampleRecord(i int, jti string) audit.Record {
	return audit.Record{
		Time:      t0.Add(time.Duration(i) * time.Millisecond),
		Node:      "node-a",
		Event:     audit.TokenIssued,
		Outcome:   audit.Success,
		ClientID:  fmt.Sprintf("client-%03d", i%100),
		Subject:   fmt.Sprintf("user-%05d@example.com", i%10_000),
		JTI:       jti,
		Scope:     "openid profile orders:read orders:write",
		Audience:  []string{"https://api.example.com/orders"},
		RequestID: fmt.Sprintf("req-%026d", i),
		Source:    "203.0.113.7:54321",
		Detail:    map[string]string{"alg": alg, "kid": "Q2hhaW5LZXlJRDAwMDAwMQ", "grant_type": "client_credentials"},
	}
}

// jtiOf names record i of a test chain.
func jtiOf(i int) string { return fmt.Sprintf("jti-%06d", i) }

// allEntries reads the whole chain through the store.
func allEntries(tb testing.TB, st sigil.AuditStore) []sigil.AuditEntry {
	tb.Helper()
	var out []sigil.AuditEntry
	var after int64
	for {
		page, err := st.AuditEntries(context.Background(), after, 1000)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out
		}
		after = page[len(page)-1].Seq
	}
}

// checkContiguous fails unless es is the chain 1..len(es), each record
// linked to the one before and hashed as audit.Hash says.
func checkContiguous(tb testing.TB, es []sigil.AuditEntry) {
	tb.Helper()
	prev := audit.ZeroHash
	for i, e := range es {
		if e.Seq != int64(i+1) {
			tb.Fatalf("entry %d has seq %d, want %d", i, e.Seq, i+1)
		}
		if !bytes.Equal(e.Prev, prev) {
			tb.Fatalf("record %d does not link to record %d", e.Seq, e.Seq-1)
		}
		if h := audit.Hash(e.Seq, e.Prev, e.Body); !bytes.Equal(h, e.Hash) {
			tb.Fatalf("record %d: stored hash %x, computed %x", e.Seq, e.Hash, h)
		}
		prev = e.Hash
	}
}

// jtis returns how often each jti occurs in es.
func jtis(tb testing.TB, es []sigil.AuditEntry) map[string]int {
	tb.Helper()
	out := map[string]int{}
	for _, e := range es {
		r, err := audit.Decode(e.Body)
		if err != nil {
			tb.Fatalf("record %d: %v", e.Seq, err)
		}
		out[r.JTI]++
	}
	return out
}

// verifyStore runs Verify over st with the keys sealer trusts.
func verifyStore(tb testing.TB, st *sqlite.Store, sealer *keys.Sealer) *audit.Report {
	tb.Helper()
	ctx := context.Background()
	trusted, err := audit.TrustedKeys(ctx, st, sealer)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := audit.Verify(ctx, st, trusted)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// checkpointSeqs lists the checkpoints' Seq.
func checkpointSeqs(tb testing.TB, st sigil.AuditStore) []int64 {
	tb.Helper()
	cps, err := st.Checkpoints(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	var out []int64
	for _, cp := range cps {
		out = append(out, cp.Seq)
	}
	return out
}

// jwsKID returns the kid of a compact JWS's protected header.
func jwsKID(tb testing.TB, jws string) string {
	tb.Helper()
	seg, _, _ := strings.Cut(jws, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		tb.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		tb.Fatal(err)
	}
	return h.KID
}

// signWith returns a checkpoint signer over priv with kid in the header:
// what an attacker holding a private key of their own can produce.
func signWith(kid string, priv crypto.Signer) func([]byte) (string, error) {
	k := &keys.Key{ID: kid, Alg: alg, Public: priv.Public(), Signer: priv}
	return func(payload []byte) (string, error) {
		s, err := k.SignerFor(audit.CheckpointType)
		if err != nil {
			return "", err
		}
		jws, err := s.Sign(payload)
		if err != nil {
			return "", err
		}
		return jws.CompactSerialize()
	}
}

// copyDB copies the closed store in src into a new directory and returns
// it.
func copyDB(tb testing.TB, src string) string {
	tb.Helper()
	dst := tb.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		in, err := os.Open(filepath.Join(src, sqlite.FileName+suffix))
		if os.IsNotExist(err) && suffix != "" {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dst, sqlite.FileName+suffix), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			tb.Fatal(err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	return dst
}

// rawDB opens the store's file in dir directly, as an attacker with write
// access to the file would, bypassing package sqlite.
func rawDB(tb testing.TB, dir string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	return db
}

// exec runs a statement on db and returns the rows it affected.
func exec(tb testing.TB, db *sql.DB, query string, args ...any) int64 {
	tb.Helper()
	res, err := db.Exec(query, args...)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// rawRecord is a row of the audit table as read behind the store's back.
type rawRecord struct {
	seq        int64
	prev, hash []byte
	body       string
}

// rawRecords reads the rows with seq ≥ from.
func rawRecords(tb testing.TB, db *sql.DB, from int64) []rawRecord {
	tb.Helper()
	rows, err := db.Query(`SELECT seq, prev, hash, body FROM audit WHERE seq >= ? ORDER BY seq`, from)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []rawRecord
	for rows.Next() {
		var r rawRecord
		if err := rows.Scan(&r.seq, &r.prev, &r.hash, &r.body); err != nil {
			tb.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// rawHash returns the stored hash of record seq (ZeroHash for 0).
func rawHash(tb testing.TB, db *sql.DB, seq int64) []byte {
	tb.Helper()
	if seq == 0 {
		return audit.ZeroHash
	}
	var h []byte
	if err := db.QueryRow(`SELECT hash FROM audit WHERE seq = ?`, seq).Scan(&h); err != nil {
		tb.Fatalf("hash of record %d: %v", seq, err)
	}
	return h
}

// rewriteFrom rewrites the chain from record from to the end as an
// attacker who knows the hash layout would: each body passed through edit,
// every prev and hash recomputed, so the chain is consistent again. It
// returns the new hashes by seq.
func rewriteFrom(tb testing.TB, db *sql.DB, from int64, edit func(seq int64, body string) string) map[int64][]byte {
	tb.Helper()
	prev := rawHash(tb, db, from-1)
	recs := rawRecords(tb, db, from)
	tx, err := db.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	out := map[int64][]byte{}
	for _, r := range recs {
		body := edit(r.seq, r.body)
		h := audit.Hash(r.seq, prev, []byte(body))
		if _, err := tx.Exec(`UPDATE audit SET prev = ?, hash = ?, body = ? WHERE seq = ?`, prev, h, body, r.seq); err != nil {
			tb.Fatal(err)
		}
		out[r.seq] = h
		prev = h
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// insertKeyRow inserts a signing key row behind the store's back.
func insertKeyRow(tb testing.TB, db *sql.DB, kid string, pub crypto.PublicKey, sealed []byte) {
	tb.Helper()
	der := mustPKIX(tb, pub)
	exec(tb, db, `INSERT INTO signing_keys (id, alg, state, public, sealed, created_at, retired_at)
		VALUES (?, ?, 'next', ?, ?, ?, NULL)`, kid, alg, der, sealed, time.Now().UnixNano())
}

// mustPKIX returns pub in PKIX DER.
func mustPKIX(tb testing.TB, pub crypto.PublicKey) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// mustPKCS8 returns priv in PKCS #8 DER, the form keys seals.
func mustPKCS8(tb testing.TB, priv crypto.Signer) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// replaceCheckpoints deletes the checkpoints at seq ≥ from and stores new
// ones over hashes, signed by sign.
func replaceCheckpoints(tb testing.TB, db *sql.DB, from int64, seqs []int64, hashes map[int64][]byte, sign func([]byte) (string, error)) {
	tb.Helper()
	exec(tb, db, `DELETE FROM audit_checkpoints WHERE seq >= ?`, from)
	for _, seq := range seqs {
		cp, err := audit.NewCheckpoint(sigil.AuditHead{Seq: seq, Hash: hashes[seq]}, "node-a", t0, sign)
		if err != nil {
			tb.Fatal(err)
		}
		exec(tb, db, `INSERT INTO audit_checkpoints (seq, hash, jws, created_at) VALUES (?, ?, ?, ?)`,
			cp.Seq, cp.Hash, cp.JWS, cp.CreatedAt.UnixNano())
	}
}

// hookStore is the real store with AppendAudit intercepted.
type hookStore struct {
	sigil.AuditStore
	appendAudit func(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error
}

func (h hookStore) AppendAudit(ctx context.Context, mark sigil.JournalMark, build func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
	return h.appendAudit(ctx, mark, build)
}

// failingStore is an AuditStore whose every call fails with err, for the
// error paths a real store cannot be made to take on demand.
type failingStore struct {
	err   error
	calls atomic.Int64 // AppendAudit calls
}

func (f *failingStore) AppendAudit(context.Context, sigil.JournalMark, func(sigil.AuditHead) ([]sigil.AuditEntry, error)) error {
	f.calls.Add(1)
	return f.err
}
func (f *failingStore) JournalSeq(context.Context, string) (int64, error) {
	return 0, f.err
}
func (f *failingStore) AuditEntries(context.Context, int64, int) ([]sigil.AuditEntry, error) {
	return nil, f.err
}
func (f *failingStore) QueryAudit(context.Context, sigil.AuditQuery) ([]sigil.AuditEntry, error) {
	return nil, f.err
}
func (f *failingStore) AuditHead(context.Context) (sigil.AuditHead, error) {
	return sigil.AuditHead{}, f.err
}
func (f *failingStore) AddCheckpoint(context.Context, sigil.AuditCheckpoint) error { return f.err }
func (f *failingStore) Checkpoints(context.Context) ([]sigil.AuditCheckpoint, error) {
	return nil, f.err
}

// wantProblem fails unless r names seq and its description contains every
// one of words.
func wantProblem(tb testing.TB, r *audit.Report, seq int64, words ...string) {
	tb.Helper()
	if r.Problem == nil {
		tb.Fatalf("Verify reports the trail intact (%d records, last checkpoint %d), want a problem at record %d", r.Records, r.LastCheckpoint, seq)
	}
	if r.Problem.Seq != seq {
		tb.Errorf("Problem names record %d, want %d: %v", r.Problem.Seq, seq, r.Problem)
	}
	for _, w := range words {
		if !strings.Contains(r.Problem.What, w) {
			tb.Errorf("Problem %q does not say %q", r.Problem.What, w)
		}
	}
}
