// Package audit is Sigil's tamper-evident audit trail: append-only records
// of every issuance, refusal, revocation, client and key change (and, in
// later releases, exchange, decision and tool call), chained by SHA-256 and
// vouched for by signed checkpoints.
//
// # The chain
//
// There is one global chain per store. The store assigns each record its
// sequence number inside the append transaction, under the write lock
// (SQLite: BEGIN IMMEDIATE; PostgreSQL: a row lock on the head), so the CLI,
// a server and, later, several nodes sharing a database all append to the
// same totally ordered chain, verifiable as a whole. A record's hash is
// SHA-256 over a domain tag, its sequence number, the previous record's
// hash and its body (see Hash): editing, deleting, inserting or reordering
// a record breaks the chain at that record.
//
// The body is the record's canonical encoding: JSON with a fixed member
// order (encoding/json over the body struct, map keys sorted), produced
// once when the record is written and stored as is. Verification hashes the
// stored bytes and never re-encodes, so it needs no JSON parsing and stays
// fast.
//
// # Checkpoints
//
// Every CheckpointEvery records or CheckpointInterval (and on shutdown)
// the server signs a checkpoint: a compact JWS (typ CheckpointType) over
// the sequence number and hash of the chain's head, with the issuer's
// active signing key. A rewrite of the whole chain, which a plain hash chain
// cannot reveal, no longer matches a checkpoint; a truncated tail leaves a
// checkpoint pointing past the end. Verify trusts a checkpoint key only if
// its sealed private half opens under the master key, so a key row inserted
// into the database cannot vouch for a forged chain. Records written after
// the newest checkpoint are protected by the chain alone; ship checkpoints
// off the machine (sigil audit export) to detect a truncation that also
// removed them.
//
// # Durability
//
// No client holds a token whose issuance is missing from the trail, even
// after kill -9. A server keeps a journal (Journal) in its data directory:
// every record is copied into it, in queue order, before the response
// that depends on it is sent, and the Writer appends the records to the
// store in large batches afterwards (group commit, off the request path),
// each batch moving the journal's mark in the same transaction. After a
// crash the next process to open the trail (the restarted server, or any
// CLI command) appends exactly the journal records after the mark. Without
// a journal (a second server on the same data directory, a platform
// without file locks and shared mappings) each token response waits for
// its record's commit instead.
//
// When the bounded queue is full, callers wait up to EnqueueTimeout
// (backpressure) and then fail: the token endpoint then answers 503 and
// issues nothing, and the refused record is not in the journal. No record
// is ever dropped silently: a store that fails is retried while the queue
// fills, and the records stay in the journal. Close flushes the queue,
// writes a final checkpoint and empties the journal.
//
// The journal and the embedded store's WAL (synchronous=NORMAL) sit in
// the operating system's page cache: a record survives kill -9 and a crash
// of the process, but the last records before a power cut or kernel crash
// may be lost with the rest of the database's recent writes.
//
// # Limits
//
// Records after the newest checkpoint are protected by the chain alone:
// whoever can write the database can append correctly chained forged
// records, or truncate records together with the checkpoints after them,
// and Verify cannot tell. The next checkpoint covers what a server wrote;
// records a CLI command writes while no server runs wait for the next
// server's checkpoint. A record's time is taken when it is queued, so under
// load time order and sequence order can differ by a batch, and records
// recovered from a crashed server's journal follow whatever was appended
// since: a query bounded by Until can miss such a record when it was
// recovered more than a minute after its time.
//
// Records never hold secrets, tokens or keys: only jtis and identifiers.
package audit
