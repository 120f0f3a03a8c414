-- 0006: refresh state as one row per family, rotated in place, as in the
-- SQLite store's 0010 (see there for the design).
--
-- Refresh tokens issued before this version stop working: their rows are
-- dropped, and their format changed too (a token now names its family and
-- generation). Their users sign in again.
--
-- The primary key serialises every write to a family on any number of
-- nodes, so the advisory locks of 0003 and 0004 are gone:
-- CreateRefreshFamily inserts with ON CONFLICT DO NOTHING,
-- RevokeRefreshFamily upserts, and RotateRefresh is one UPDATE of the
-- family's row (see refresh.go). A family revoked before it exists is a
-- placeholder row: revoked, with an empty client_id, user_id and
-- token_hash (no family has an empty token_hash), expiring an hour after
-- the revocation. No trigger: nothing caches refresh state.

DROP TABLE refresh_tokens;
DROP TABLE revoked_families;

CREATE TABLE refresh_families (
	id              TEXT    NOT NULL PRIMARY KEY,
	client_id       TEXT    NOT NULL,
	user_id         TEXT    NOT NULL,
	scopes          JSONB   NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
	audience        JSONB   NOT NULL CHECK (jsonb_typeof(audience) = 'array'),
	auth_time       BIGINT  NOT NULL,
	amr             JSONB   NOT NULL CHECK (jsonb_typeof(amr) = 'array'),
	acr             TEXT    NOT NULL,
	jkt             TEXT    NOT NULL,
	generation      BIGINT  NOT NULL,
	token_hash      TEXT    NOT NULL,
	created_at      BIGINT  NOT NULL,
	rotated_at      BIGINT,                  -- NULL before the first rotation
	idle_expires_at BIGINT  NOT NULL,
	expires_at      BIGINT  NOT NULL,        -- absolute expiry
	revoked         BOOLEAN NOT NULL
);
CREATE INDEX refresh_families_grant      ON refresh_families (user_id, client_id);
CREATE INDEX refresh_families_client     ON refresh_families (client_id);
CREATE INDEX refresh_families_expires_at ON refresh_families (expires_at);

-- The access tokens issued from each family, which its revocation
-- revokes too. No foreign key: the store deletes them with their family.
CREATE TABLE refresh_access (
	family_id  TEXT   NOT NULL,
	jti        TEXT   NOT NULL,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (family_id, jti)
);
CREATE INDEX refresh_access_expires_at ON refresh_access (expires_at);
