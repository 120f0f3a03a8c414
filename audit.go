package sigil

import (
	"context"
	"time"
)

// AuditEntry is one stored record of the audit trail: its position, the
// hash chain links and the record body. The body is the record's canonical
// encoding (JSON produced once by package audit) and is never re-encoded;
// Hash is derived from Seq, Prev and Body by package audit.
type AuditEntry struct {
	// Seq is the record's position in the one global chain, from 1, with
	// no gaps.
	Seq int64
	// Prev is the Hash of the record before (32 zero bytes for the first).
	Prev []byte
	// Hash is SHA-256 over Seq, Prev and Body (see audit.Hash).
	Hash []byte
	// Body is the canonical JSON of the record.
	Body []byte
	// Index repeats the members of Body that stores index for queries,
	// so that a store never has to parse JSON to write a record. It is
	// derived from Body (audit.IndexOf) and not covered by Hash: query
	// results are checked against their bodies, and Body is what the
	// chain protects. Stores write it; reads leave it empty.
	Index AuditIndex
}

// AuditIndex is the part of a record that stores index: its time (in
// audit.TimeFormat), event, client, subject and token id, and for a token
// issued by token exchange the ids of the subject and actor tokens it came
// from. Empty fields are not indexed.
type AuditIndex struct {
	Time            string
	Event           string
	ClientID        string
	Subject         string
	JTI             string
	SubjectTokenJTI string
	ActorTokenJTI   string
}

// AuditHead is the last record of the chain: Seq 0 and a zero Hash when
// the chain is empty.
type AuditHead struct {
	Seq  int64
	Hash []byte
}

// AuditCheckpoint is a signed statement of the chain's head at some point:
// a compact JWS whose payload names Seq and Hash.
type AuditCheckpoint struct {
	Seq       int64
	Hash      []byte
	JWS       string
	CreatedAt time.Time
}

// AuditQuery selects records; zero fields do not filter. Records come in
// ascending Seq order.
type AuditQuery struct {
	AfterSeq int64 // only records with Seq > AfterSeq
	ClientID string
	Subject  string
	JTI      string
	Event    string
	// ExchangedFrom selects the tokens issued by token exchange from the
	// token with this jti, as the subject token or the actor token.
	ExchangedFrom string
	Since         time.Time // record time ≥ Since
	Until         time.Time // record time < Until
	Limit         int       // 0 means the store's default (1000)
}

// JournalMark says how far a node's local audit journal has reached the
// store: every journal record up to and including Seq is in the chain. A
// server writes each record to its journal before answering and to the
// store in batches later; the mark, written in the same transaction as a
// batch, is what tells it after a crash which journal records still have
// to be appended. The zero JournalMark marks nothing.
type JournalMark struct {
	// Journal identifies the journal (a random id in its file header).
	Journal string
	// Seq is the journal sequence number of the batch's last record.
	Seq int64
}

// AuditStore persists the audit trail. Implementations are safe for
// concurrent use: the writer appends while readers query, and
// audit.Verify reads pages ahead from several goroutines.
type AuditStore interface {
	// AppendAudit appends records in one transaction. It reads the head
	// under the transaction's write lock, so appends from any number of
	// processes or nodes form one chain, and passes it to build, which
	// returns the new entries (Seq from head.Seq+1, chained from
	// head.Hash). A non-zero mark is recorded in the same transaction
	// (JournalSeq reads it back). The store writes all of it as given, or
	// nothing if build or the write fails.
	AppendAudit(ctx context.Context, mark JournalMark, build func(head AuditHead) ([]AuditEntry, error)) error
	// JournalSeq returns the Seq of the last mark recorded for journal,
	// or 0 if there is none.
	JournalSeq(ctx context.Context, journal string) (int64, error)
	// AuditEntries returns up to limit records with Seq > after, in order.
	AuditEntries(ctx context.Context, after int64, limit int) ([]AuditEntry, error)
	// QueryAudit returns the records q selects.
	QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// AuditHead returns the chain's last record's Seq and Hash.
	AuditHead(ctx context.Context) (AuditHead, error)
	// AddCheckpoint stores a checkpoint.
	AddCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// Checkpoints returns every checkpoint in ascending Seq order.
	Checkpoints(ctx context.Context) ([]AuditCheckpoint, error)
}
