-- 0001: clients, signing keys, revocations and the replay cache.
--
-- Conventions: times are INTEGER, UTC, in unix nanoseconds unless the
-- column comment says seconds; booleans are INTEGER 0/1; lists are JSON
-- text arrays; Claims is a JSON text object. Tables are STRICT so a wrong
-- type is an error, not a silent coercion.

CREATE TABLE clients (
	id               TEXT    NOT NULL PRIMARY KEY,
	name             TEXT    NOT NULL,
	secret_hash      BLOB,
	auth_method      TEXT    NOT NULL,
	grant_types      TEXT    NOT NULL CHECK (json_type(grant_types) = 'array'),
	scopes           TEXT    NOT NULL CHECK (json_type(scopes) = 'array'),
	default_scopes   TEXT    NOT NULL CHECK (json_type(default_scopes) = 'array'),
	audiences        TEXT    NOT NULL CHECK (json_type(audiences) = 'array'),
	redirect_uris    TEXT    NOT NULL CHECK (json_type(redirect_uris) = 'array'),
	jwks             BLOB,
	claims           TEXT    NOT NULL CHECK (json_type(claims) = 'object'),
	access_token_ttl INTEGER NOT NULL,            -- nanoseconds
	dpop_bound       INTEGER NOT NULL CHECK (dpop_bound IN (0, 1)),
	introspect       INTEGER NOT NULL CHECK (introspect IN (0, 1)),
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE signing_keys (
	id         TEXT    NOT NULL PRIMARY KEY,
	alg        TEXT    NOT NULL,
	state      TEXT    NOT NULL CHECK (state IN ('next', 'active', 'retired')),
	public     BLOB    NOT NULL,
	sealed     BLOB    NOT NULL,
	created_at INTEGER NOT NULL,
	retired_at INTEGER                            -- NULL unless retired
) STRICT;

-- At most one active key per algorithm: the signer must never have to
-- choose between two. PromoteKey retires the old key before it activates
-- the new one, so rotation never trips this index.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE state = 'active';

CREATE INDEX signing_keys_created ON signing_keys (created_at, id);

-- Revocations are looked up by primary key on every introspection, so the
-- table is WITHOUT ROWID: the row lives in the primary-key b-tree itself.
CREATE TABLE revocations (
	kind       TEXT    NOT NULL CHECK (kind IN ('jti', 'client', 'subject')),
	value      TEXT    NOT NULL,
	cutoff     INTEGER NOT NULL,                  -- unix seconds
	expires_at INTEGER NOT NULL,                  -- unix seconds
	PRIMARY KEY (kind, value)
) STRICT, WITHOUT ROWID;

CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE replay (
	key        TEXT    NOT NULL PRIMARY KEY,
	expires_at INTEGER NOT NULL                   -- unix nanoseconds
) STRICT, WITHOUT ROWID;

CREATE INDEX replay_expires_at ON replay (expires_at);
