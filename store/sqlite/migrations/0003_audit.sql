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
	seq  INTEGER PRIMARY KEY,
	prev BLOB    NOT NULL,
	hash BLOB    NOT NULL,
	body TEXT    NOT NULL CHECK (json_valid(body))
) STRICT;

-- Expression indexes for QueryAudit. The queries in audit.go must spell
-- each expression exactly as here, or the planner cannot use the index.
-- seq last: an equality on the member yields rows in seq order, so the
-- common query needs no sort and stops at its LIMIT. time is written with
-- a fixed width (2006-01-02T15:04:05.000000000Z), so string order is time
-- order.
CREATE INDEX audit_client ON audit (json_extract(body, '$.client_id'), seq);
CREATE INDEX audit_sub    ON audit (json_extract(body, '$.sub'), seq);
CREATE INDEX audit_jti    ON audit (json_extract(body, '$.jti'), seq);
CREATE INDEX audit_event  ON audit (json_extract(body, '$.event'), seq);
CREATE INDEX audit_time   ON audit (json_extract(body, '$.time'), seq);

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
