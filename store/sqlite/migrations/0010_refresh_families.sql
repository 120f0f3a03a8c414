-- 0010: one row per refresh family, rotated in place.
--
-- 0007 kept one row per refresh token: every rotation spent a row and
-- inserted the next into a table with five B-trees, and the table grew
-- with every refresh until the family expired. A family's tokens now
-- carry its ID and their generation, so a rotation is one in-place
-- UPDATE of the family's row on its primary key, conditional on the
-- generation presented; a token of an earlier generation presented again
-- is reuse (RFC 9700 §4.14.2). The access tokens issued from a family go
-- to refresh_access, so that revoking the family revokes them too.
--
-- A family revoked before it exists (a replayed authorization code whose
-- first redemption has not stored its family yet) is a placeholder row:
-- revoked, token_hash, client_id and user_id '', expiring an hour after
-- the revocation. It replaces 0008's revoked_families.
--
-- Refresh tokens issued before this migration stop working: their format
-- changed with the table. Their users sign in again.

DROP TABLE refresh_tokens;
DROP TABLE revoked_families;

CREATE TABLE refresh_families (
	id              TEXT    NOT NULL PRIMARY KEY,
	client_id       TEXT    NOT NULL,
	user_id         TEXT    NOT NULL,
	scopes          TEXT    NOT NULL CHECK (json_type(scopes) = 'array'),
	audience        TEXT    NOT NULL CHECK (json_type(audience) = 'array'),
	auth_time       INTEGER NOT NULL,
	amr             TEXT    NOT NULL CHECK (json_type(amr) = 'array'),
	acr             TEXT    NOT NULL,
	jkt             TEXT    NOT NULL,               -- '' when unbound
	generation      INTEGER NOT NULL,
	token_hash      TEXT    NOT NULL,               -- the current token's
	created_at      INTEGER NOT NULL,
	rotated_at      INTEGER,                        -- NULL before a rotation
	idle_expires_at INTEGER NOT NULL,
	expires_at      INTEGER NOT NULL,               -- absolute expiry
	revoked         INTEGER NOT NULL CHECK (revoked IN (0, 1))
) STRICT, WITHOUT ROWID;

CREATE INDEX refresh_families_grant      ON refresh_families (user_id, client_id);
CREATE INDEX refresh_families_client     ON refresh_families (client_id);
CREATE INDEX refresh_families_expires_at ON refresh_families (expires_at);

CREATE TABLE refresh_access (
	family_id  TEXT    NOT NULL,
	jti        TEXT    NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (family_id, jti)
) STRICT, WITHOUT ROWID;

CREATE INDEX refresh_access_expires_at ON refresh_access (expires_at);
