-- 0001: the whole schema as of the SQLite store's migration 0006, for
-- PostgreSQL (and PostgreSQL-compatible databases).
--
-- Conventions, kept from the SQLite store so both read alike: times are
-- BIGINT unix nanoseconds unless a comment says seconds; lists are JSONB
-- arrays and claims a JSONB object. Every table lives in the connection's
-- current schema (search_path), so one database can hold several Sigil
-- deployments or test runs side by side.

-- Client and key IDs have the C collation: Clients, Keys and ArchivedKeys
-- order by them byte-wise, as Go compares strings and SQLite does, whatever
-- the database's default collation (en_US.UTF-8 would put "a" before "B").
CREATE TABLE clients (
	id               TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
	name             TEXT    NOT NULL,
	secret_hash      BYTEA,
	auth_method      TEXT    NOT NULL,
	grant_types      JSONB   NOT NULL CHECK (jsonb_typeof(grant_types) = 'array'),
	scopes           JSONB   NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
	default_scopes   JSONB   NOT NULL CHECK (jsonb_typeof(default_scopes) = 'array'),
	audiences        JSONB   NOT NULL CHECK (jsonb_typeof(audiences) = 'array'),
	redirect_uris    JSONB   NOT NULL CHECK (jsonb_typeof(redirect_uris) = 'array'),
	jwks             BYTEA,
	claims           JSONB   NOT NULL CHECK (jsonb_typeof(claims) = 'object'),
	access_token_ttl BIGINT  NOT NULL,            -- nanoseconds
	dpop_bound       BOOLEAN NOT NULL,
	introspect       BOOLEAN NOT NULL,
	created_at       BIGINT  NOT NULL,
	updated_at       BIGINT  NOT NULL
);

CREATE TABLE signing_keys (
	id         TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
	alg        TEXT   NOT NULL,
	state      TEXT   NOT NULL CHECK (state IN ('next', 'active', 'retired')),
	public     BYTEA  NOT NULL,
	sealed     BYTEA  NOT NULL,
	created_at BIGINT NOT NULL,
	retired_at BIGINT                              -- NULL unless retired
);

-- At most one active key per algorithm (see the SQLite store's 0001).
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE state = 'active';
CREATE INDEX signing_keys_created ON signing_keys (created_at, id);

-- Keys DeleteKey removed, kept so that the checkpoints they signed stay
-- verifiable; a kid names one key for ever.
CREATE TABLE key_archive (
	id          TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
	alg         TEXT   NOT NULL,
	state       TEXT   NOT NULL CHECK (state IN ('next', 'active', 'retired')),
	public      BYTEA  NOT NULL,
	sealed      BYTEA  NOT NULL,
	created_at  BIGINT NOT NULL,
	retired_at  BIGINT,
	archived_at BIGINT NOT NULL
);
CREATE INDEX key_archive_created ON key_archive (created_at, id);

CREATE TABLE revocations (
	kind       TEXT   NOT NULL CHECK (kind IN ('jti', 'client', 'subject')),
	value      TEXT   NOT NULL,
	cutoff     BIGINT NOT NULL,                    -- unix seconds
	expires_at BIGINT NOT NULL,                    -- unix seconds
	PRIMARY KEY (kind, value)
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- key is BYTEA: it holds attacker-chosen text (a client assertion's jti),
-- and TEXT refuses NUL and invalid UTF-8 that SQLite stores; as bytes
-- every key is stored, and compared, exactly.
CREATE TABLE replay (
	key        BYTEA  NOT NULL PRIMARY KEY,
	expires_at BIGINT NOT NULL
);
CREATE INDEX replay_expires_at ON replay (expires_at);

-- The change counter behind Store.Version: clients and signing keys only
-- (see the SQLite store's 0002 and 0004). Statement-level triggers: one
-- bump per statement, whatever it touched.
CREATE TABLE changes (
	id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	n  BIGINT  NOT NULL
);
INSERT INTO changes (id, n) VALUES (1, 0);

CREATE FUNCTION bump_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE changes SET n = n + 1 WHERE id = 1;
	RETURN NULL;
END
$$;
CREATE TRIGGER clients_changes AFTER INSERT OR UPDATE OR DELETE ON clients
	FOR EACH STATEMENT EXECUTE FUNCTION bump_changes();
CREATE TRIGGER signing_keys_changes AFTER INSERT OR UPDATE OR DELETE ON signing_keys
	FOR EACH STATEMENT EXECUTE FUNCTION bump_changes();

-- The audit trail: one global hash chain. audit_head is its last record,
-- one row, locked (FOR UPDATE) by every append, which is what makes the
-- appends of every node one totally ordered chain.
CREATE TABLE audit (
	seq           BIGINT  NOT NULL PRIMARY KEY,
	prev          BYTEA   NOT NULL,
	hash          BYTEA   NOT NULL,
	body          TEXT    NOT NULL CHECK (body LIKE '{%}'),
	-- Copies of body members for queries (sigil.AuditIndex), NULL when
	-- the record has none. time is compared as bytes (COLLATE "C"), as
	-- the fixed-width time format orders only in byte order, whatever
	-- the database's collation.
	time          TEXT    COLLATE "C",
	event         TEXT,
	client_id     TEXT,
	sub           TEXT,
	jti           TEXT,
	sub_is_client BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX audit_client ON audit (client_id, seq) WHERE client_id IS NOT NULL;
CREATE INDEX audit_sub    ON audit (sub, seq)       WHERE sub IS NOT NULL;
CREATE INDEX audit_jti    ON audit (jti, seq)       WHERE jti IS NOT NULL;
-- Record time mostly grows with seq, but nodes' clocks differ, so
-- QueryAudit filters on time exactly rather than by a binary search over
-- seq. A BRIN index (a few pages, almost free to maintain on appends at
-- the end) lets the planner read only the pages of a narrow time range;
-- a wide one is read in seq order up to the limit.
CREATE INDEX audit_time   ON audit USING brin (time);

CREATE TABLE audit_head (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  BIGINT  NOT NULL,
	hash BYTEA   NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoints (
	seq        BIGINT NOT NULL PRIMARY KEY,
	hash       BYTEA  NOT NULL,
	jws        TEXT   NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE audit_journals (
	journal TEXT   NOT NULL PRIMARY KEY,
	seq     BIGINT NOT NULL
);

-- Token status lists (see the SQLite store's 0006).
CREATE TABLE status_lists (
	id            BIGINT  NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
	size          INTEGER NOT NULL CHECK (size > 0),
	generation    BIGINT  NOT NULL CHECK (generation > 0),
	since         BIGINT  NOT NULL,
	holder        TEXT    NOT NULL,
	usable_until  BIGINT  NOT NULL,
	recycle_after BIGINT  NOT NULL,
	version       BIGINT  NOT NULL
);
CREATE INDEX status_lists_recycle ON status_lists (size, recycle_after, id);

CREATE TABLE status_entries (
	list   BIGINT   NOT NULL REFERENCES status_lists (id),
	idx    INTEGER  NOT NULL CHECK (idx >= 0),
	status SMALLINT NOT NULL CHECK (status BETWEEN 1 AND 255),
	PRIMARY KEY (list, idx)
);
