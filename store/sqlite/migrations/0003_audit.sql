-- 0003: the audit trail, its signed checkpoints, and the key archive.
--
-- None of these tables has a change-counter trigger (0002): audit records
-- are written for every token issued, and no cache depends on them.
-- Archiving a key still moves the counter, through the delete from
-- signing_keys in the same transaction.

-- One global hash chain. seq is the rowid alias, so the table is stored in
-- chain order and a scan by seq is a walk of the b-tree. prev and hash are
-- whatever package audit computed: the store only checks, on append, that
-- seq runs on without gaps and that each prev is the hash before it.
CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY,
	prev      BLOB    NOT NULL,
	hash      BLOB    NOT NULL,
	-- A JSON object, checked cheaply: json_valid would parse every body
	-- inside SQLite on the hot path.
	body      TEXT    NOT NULL CHECK (body LIKE '{%}'),
	-- Copies of body members for queries (sigil.AuditIndex), written by
	-- the caller so that SQLite never parses JSON on the hot path. NULL
	-- when the record has no such member. The chain protects body only;
	-- query results are re-checked against their bodies.
	time      TEXT,
	event     TEXT,
	client_id TEXT,
	sub       TEXT,
	jti       TEXT,
	-- 1 when sub equals client_id (client credentials): sub is then left
	-- NULL and out of the sub index, and found through client_id.
	sub_is_client INTEGER NOT NULL DEFAULT 0 CHECK (sub_is_client IN (0, 1))
) STRICT;

-- Partial indexes: records without the member cost nothing. Every index
-- costs a b-tree insert per record on the token path, so there are only
-- three: jti grows at one end (token.NewJTI is time-ordered), client_id
-- and sub cluster by client. Time needs no index: it grows with seq, so
-- QueryAudit finds a time bound by binary search over the primary key.
-- Event has few values and is filtered while scanning.
CREATE INDEX audit_client ON audit (client_id, seq) WHERE client_id IS NOT NULL;
CREATE INDEX audit_sub    ON audit (sub, seq)       WHERE sub IS NOT NULL;
CREATE INDEX audit_jti    ON audit (jti, seq)       WHERE jti IS NOT NULL;

CREATE TABLE audit_checkpoints (
	seq        INTEGER PRIMARY KEY,
	hash       BLOB    NOT NULL,
	jws        TEXT    NOT NULL,                  -- compact JWS
	created_at INTEGER NOT NULL                   -- unix nanoseconds
) STRICT;

-- Keys DeleteKey removed from signing_keys, kept so that checkpoints they
-- signed stay verifiable. id is still the primary key: a kid names one key
-- for ever, and CreateKey refuses a kid found here.
CREATE TABLE key_archive (
	id          TEXT    NOT NULL PRIMARY KEY,
	alg         TEXT    NOT NULL,
	state       TEXT    NOT NULL CHECK (state IN ('next', 'active', 'retired')),
	public      BLOB    NOT NULL,
	sealed      BLOB    NOT NULL,
	created_at  INTEGER NOT NULL,
	retired_at  INTEGER,                          -- NULL unless retired
	archived_at INTEGER NOT NULL
) STRICT;

CREATE INDEX key_archive_created ON key_archive (created_at, id);
