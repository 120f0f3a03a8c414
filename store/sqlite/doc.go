// Package sqlite implements sigil.Store on an embedded SQLite database,
// using the pure-Go driver modernc.org/sqlite (no cgo). It is the default
// store: one machine, several processes (a `sigil serve` and the admin CLI)
// sharing one database file.
//
// # Files
//
// Open keeps everything in one directory: it creates the directory with
// mode 0700 when it is missing and the database file dir/sigil.db with mode
// 0600 before SQLite first opens it, and narrows the -wal and -shm files to
// 0600 after opening. The database holds sealed private keys and client
// secret hashes; nothing in it is meant for other local users. An existing
// directory or database file keeps the mode it has.
//
// # Connection settings
//
// Every pooled connection runs with
//
//   - busy_timeout(5000): wait up to five seconds for another writer
//     (another connection or another process) instead of failing at once;
//   - journal_mode(WAL): readers never block the writer and vice versa;
//   - synchronous(NORMAL): in WAL mode a commit survives a process crash;
//     only an operating-system crash or power loss may lose the last
//     commits, never corrupt the file;
//   - foreign_keys(1);
//   - _txlock=immediate: every read-write transaction begins with BEGIN
//     IMMEDIATE and so takes the write lock up front. A deferred
//     transaction that reads and then writes can fail with SQLITE_BUSY
//     without waiting when two processes upgrade at once; an immediate one
//     simply queues behind the busy timeout.
//
// # Migrations
//
// The schema lives in numbered files embedded from migrations/
// (0001_init.sql, 0002_….sql, …). Open applies the missing ones in order,
// each in its own immediate transaction that first re-checks
// schema_migrations(version, applied_at), so two processes opening a new
// database at the same moment apply each migration exactly once. Open
// refuses a database whose schema is newer than the binary knows.
//
// # Concurrency
//
// A Store is safe for concurrent use. Reads run in parallel on up to
// eight pooled connections; writes are serialised by SQLite. The hot
// paths (Client by ID, Revoked, MarkJTI, the audit head, insert and scan)
// use statements prepared once in Open. Version reads a change counter
// that triggers bump in the transaction of every write to clients,
// signing keys or revocations (migration 0002), so a commit by any
// connection, pooled or in another process, changes the value it sees.
//
// # Audit trail
//
// The audit table (migration 0003) is one hash chain keyed by seq, the
// rowid. AppendAudit reads the head and inserts the batch in one immediate
// transaction, so concurrent appenders in any number of processes queue
// on the write lock and extend one chain without gaps. Audit writes and
// checkpoints have no triggers and leave Version alone: they happen on
// every token issued. QueryAudit filters on columns that copy the indexed
// body members (sigil.AuditIndex, written by the caller so SQLite never
// parses JSON); only client_id, sub and jti are indexed, and a time bound
// becomes a seq bound by binary search over the primary key. DeleteKey
// moves a key into
// key_archive instead of dropping it, so the checkpoints it signed stay
// verifiable; its kid is never reused.
//
// # Users and authorization state
//
// Migration 0007 adds users and the authorization code flow's state:
// sessions, codes, consents, refresh tokens and pushed requests, each
// secret-derived one keyed by its keyed hash. The atomic steps are single
// statements or immediate transactions: RedeemCode is an UPDATE that only
// an unredeemed code matches, TakePushedRequest a DELETE … RETURNING.
// Migration 0010 keeps one row per refresh family: RotateRefresh is an
// UPDATE of that row that only the generation presented matches, with an
// insert of the access token issued, so of concurrent callers in any
// number of processes exactly one succeeds. Rotations are committed in
// groups: whoever takes the write lock runs every rotation waiting at
// that moment in one transaction (without savepoints: a failed insert
// fails, and undoes, the whole batch). Codes and pushed requests are
// matched on their client as well as their hash. A family revoked before
// it exists is a placeholder row, which CreateRefreshFamily's insert
// meets: the single writer orders a family's creation and its revocation.
// None of these tables moves Version: nothing caches them.
//
// # Status lists
//
// Migration 0006 keeps a token status list as one status_lists row (its
// size and current lease) and one status_entries row per non-VALID
// entry. LeaseStatusList chooses, clears and leases in one immediate
// transaction, so two leases from any number of processes never take the
// same generation of a list. Status-list writes leave Version alone: each
// list carries a version of its own.
package sqlite
