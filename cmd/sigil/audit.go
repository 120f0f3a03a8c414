package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
)

func auditVerifyFlags(fs *flag.FlagSet, o *options) { storeFlags(fs, o) }

func auditFilterFlags(fs *flag.FlagSet, o *options) {
	storeFlags(fs, o)
	fs.StringVar(&o.auditSince, "since", "", "only records from this time on: RFC 3339 or a duration back from now (15m)")
	fs.StringVar(&o.clientID, "client", "", "only records of this client")
	fs.StringVar(&o.revokeSubject, "subject", "", "only records of this subject")
	fs.StringVar(&o.revokeJTI, "jti", "", "only records of this token")
	fs.StringVar(&o.auditEvent, "event", "", "only records of this event (token.issued, client.created, …)")
}

func auditTailFlags(fs *flag.FlagSet, o *options) {
	auditFilterFlags(fs, o)
	fs.IntVar(&o.auditLines, "n", 20, "how many of the latest records to show")
	fs.BoolVar(&o.follow, "follow", false, "keep printing new records as they are written")
}

func auditExportFlags(fs *flag.FlagSet, o *options) {
	auditFilterFlags(fs, o)
	fs.StringVar(&o.format, "format", "jsonl", "output format: jsonl")
	fs.StringVar(&o.auditUntil, "until", "", "only records before this time (RFC 3339 or a duration back from now)")
	fs.Int64Var(&o.auditAfter, "after", 0, "only records after this sequence number")
	fs.BoolVar(&o.checkpoints, "checkpoints", false, "also write the signed checkpoints, as lines with \"type\":\"checkpoint\"")
}

// runAuditVerify walks the chain and checkpoints: exit 0 when intact, 1
// naming the first bad record.
func runAuditVerify(ctx context.Context, m *Main, o *options) error {
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	trusted, err := audit.TrustedKeys(ctx, core.Store, core.Keys.Sealer)
	if err != nil {
		return err
	}
	start := time.Now()
	r, err := audit.Verify(ctx, core.Store, trusted)
	if err != nil {
		return err
	}
	took := time.Since(start)
	if o.json {
		out := map[string]any{"intact": r.Problem == nil, "records": r.Records, "checkpoints": r.Checkpoints,
			"head_seq": r.Head.Seq, "head_hash": hex.EncodeToString(r.Head.Hash), "last_checkpoint": r.LastCheckpoint,
			"seconds": took.Seconds()}
		if r.Problem != nil {
			out["problem"] = map[string]any{"seq": r.Problem.Seq, "what": r.Problem.What}
		}
		json.NewEncoder(m.Stdout).Encode(out)
	} else if r.Problem == nil {
		fmt.Fprintf(m.Stdout, "audit trail intact: %d records, %d signed checkpoints (the newest at record %d), head %d %x; checked in %s\n",
			r.Records, r.Checkpoints, r.LastCheckpoint, r.Head.Seq, r.Head.Hash, took.Round(time.Millisecond))
	}
	if r.Problem != nil {
		return r.Problem
	}
	return nil
}

// parseWhen reads an RFC 3339 time or a duration back from now.
func parseWhen(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, usagef("--%s %q: want an RFC 3339 time or a duration such as 15m", flagName, s)
}

func auditQuery(o *options) (sigil.AuditQuery, error) {
	q := sigil.AuditQuery{ClientID: o.clientID, Subject: o.revokeSubject, JTI: o.revokeJTI, Event: o.auditEvent, AfterSeq: o.auditAfter}
	var err error
	if q.Since, err = parseWhen("since", o.auditSince); err != nil {
		return q, err
	}
	if q.Until, err = parseWhen("until", o.auditUntil); err != nil {
		return q, err
	}
	return q, nil
}

// auditPageSize is how many records the CLI reads per query.
const auditPageSize = 5000

// eachEntry calls fn for every record q selects, in order, and returns the
// last Seq it saw.
func eachEntry(ctx context.Context, st sigil.AuditStore, q sigil.AuditQuery, fn func(sigil.AuditEntry) error) (int64, error) {
	q.Limit = auditPageSize
	for {
		page, err := st.QueryAudit(ctx, q)
		if err != nil {
			return q.AfterSeq, err
		}
		for _, e := range page {
			// Results are checked against their bodies, which the chain
			// protects; the index columns are not.
			if audit.Matches(e, q) {
				if err := fn(e); err != nil {
					return q.AfterSeq, err
				}
			}
			q.AfterSeq = e.Seq
		}
		if len(page) < auditPageSize {
			return q.AfterSeq, nil
		}
	}
}

func runAuditTail(ctx context.Context, m *Main, o *options) error {
	q, err := auditQuery(o)
	if err != nil {
		return err
	}
	if o.auditLines < 0 {
		return usagef("-n must not be negative")
	}
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	w := bufio.NewWriter(m.Stdout)
	defer w.Flush()
	// Keep the last n matching records.
	var last []sigil.AuditEntry
	unfiltered := q == (sigil.AuditQuery{})
	if unfiltered {
		head, err := core.Store.AuditHead(ctx)
		if err != nil {
			return err
		}
		q.AfterSeq = max(0, head.Seq-int64(o.auditLines))
	}
	seen, err := eachEntry(ctx, core.Store, q, func(e sigil.AuditEntry) error {
		last = append(last, e)
		if len(last) > o.auditLines {
			last = last[1:]
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range last {
		printEntry(w, o.json, e)
	}
	if !o.follow {
		return nil
	}
	w.Flush()
	q.AfterSeq = seen
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
		if q.AfterSeq, err = eachEntry(ctx, core.Store, q, func(e sigil.AuditEntry) error {
			printEntry(w, o.json, e)
			return nil
		}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		w.Flush()
	}
}

// printEntry writes one record: JSON (MarshalEntry) or one readable line.
func printEntry(w io.Writer, asJSON bool, e sigil.AuditEntry) {
	if asJSON {
		w.Write(audit.MarshalEntry(e))
		w.Write([]byte{'\n'})
		return
	}
	r, err := audit.Decode(e.Body)
	if err != nil {
		fmt.Fprintf(w, "%d  (undecodable record: %v)\n", e.Seq, err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d  %s  %-28s %-7s", e.Seq, r.Time.UTC().Format(time.RFC3339), r.Event, r.Outcome)
	for _, kv := range [][2]string{{"reason", r.Reason}, {"client", r.ClientID}, {"sub", r.Subject}, {"jti", r.JTI}, {"scope", r.Scope}, {"aud", strings.Join(r.Audience, ",")}, {"source", r.Source}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "  %s=%q", kv[0], kv[1])
		}
	}
	fmt.Fprintln(w, b.String())
}

func runAuditExport(ctx context.Context, m *Main, o *options) error {
	if o.format != "jsonl" {
		return usagef("--format %q is not supported; use jsonl", o.format)
	}
	q, err := auditQuery(o)
	if err != nil {
		return err
	}
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	w := bufio.NewWriterSize(m.Stdout, 1<<16)
	if _, err := eachEntry(ctx, core.Store, q, func(e sigil.AuditEntry) error {
		printEntry(w, true, e)
		return nil
	}); err != nil {
		return err
	}
	if o.checkpoints {
		cps, err := core.Store.Checkpoints(ctx)
		if err != nil {
			return err
		}
		for _, cp := range cps {
			json.NewEncoder(w).Encode(map[string]any{"type": "checkpoint", "seq": cp.Seq, "hash": hex.EncodeToString(cp.Hash),
				"jws": cp.JWS, "created_at": cp.CreatedAt.UTC().Format(time.RFC3339Nano)})
		}
	}
	return w.Flush()
}
