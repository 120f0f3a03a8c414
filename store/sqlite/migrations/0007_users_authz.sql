-- 0007: users, the authorization code flow's state (sigil.UserStore,
-- sigil.AuthzStore), and two client columns: pushed authorization requests
-- (RFC 9126) and dynamic registration (RFC 7592).
--
-- The new client columns are client changes, and clients' triggers (0002)
-- count them as before. The new tables have no change-counter triggers:
-- nothing caches them, and sessions, codes and refresh tokens are written
-- on every sign-in and token request.
--
-- Every secret a browser or client holds (session cookie, code, refresh
-- token, request URI) is stored only as its keyed hash, which is the
-- primary key. There are no foreign keys: DeleteUser deletes a user's
-- sessions, consents and refresh tokens itself, in one transaction, and
-- the other records die by expiry (PurgeAuthz).

ALTER TABLE clients ADD COLUMN require_par INTEGER NOT NULL DEFAULT 0 CHECK (require_par IN (0, 1));
ALTER TABLE clients ADD COLUMN registration_token_hash BLOB;  -- NULL unless registered dynamically

-- username is compared exactly (BINARY collation): the admin layer
-- normalises it before storing. Users orders by it through its index.
CREATE TABLE users (
	id            TEXT    NOT NULL PRIMARY KEY,
	username      TEXT    NOT NULL UNIQUE,
	password_hash TEXT    NOT NULL,                 -- '' when none
	claims        TEXT    NOT NULL CHECK (json_type(claims) = 'object'),
	disabled      INTEGER NOT NULL CHECK (disabled IN (0, 1)),
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
	id         TEXT    NOT NULL PRIMARY KEY,
	user_id    TEXT    NOT NULL,
	auth_time  INTEGER NOT NULL,
	amr        TEXT    NOT NULL CHECK (json_type(amr) = 'array'),
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_user       ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- A code's redemption columns are NULL until RedeemCode sets them, once:
-- a redeemed code is kept (an hour past its expiry) so that a replay
-- finds what the first redemption issued and can revoke it.
CREATE TABLE auth_codes (
	hash           TEXT    NOT NULL PRIMARY KEY,
	client_id      TEXT    NOT NULL,
	user_id        TEXT    NOT NULL,
	redirect_uri   TEXT    NOT NULL,
	scopes         TEXT    NOT NULL CHECK (json_type(scopes) = 'array'),
	audience       TEXT    NOT NULL CHECK (json_type(audience) = 'array'),
	nonce          TEXT    NOT NULL,
	code_challenge TEXT    NOT NULL,
	auth_time      INTEGER NOT NULL,
	amr            TEXT    NOT NULL CHECK (json_type(amr) = 'array'),
	acr            TEXT    NOT NULL,
	session_id     TEXT    NOT NULL,
	expires_at     INTEGER NOT NULL,
	redeemed_at    INTEGER,
	access_jti     TEXT,
	refresh_family TEXT,
	CHECK ((redeemed_at IS NULL) = (access_jti IS NULL)
		AND (redeemed_at IS NULL) = (refresh_family IS NULL))
) STRICT;

CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

-- One row per user and client; Consents reads a user's in client order
-- from the primary key.
CREATE TABLE consents (
	user_id    TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	scopes     TEXT    NOT NULL CHECK (json_type(scopes) = 'array'),
	audience   TEXT    NOT NULL CHECK (json_type(audience) = 'array'),
	granted_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, client_id)
) STRICT, WITHOUT ROWID;

-- Every token of a family is a row: rotation marks the old one used
-- (used_at, NULL while unspent) and inserts the next, so a replay of a
-- spent token is recognised until the family expires and purged then.
-- family_expires_at is the same on every row of a family.
CREATE TABLE refresh_tokens (
	hash              TEXT    NOT NULL PRIMARY KEY,
	family_id         TEXT    NOT NULL,
	client_id         TEXT    NOT NULL,
	user_id           TEXT    NOT NULL,
	scopes            TEXT    NOT NULL CHECK (json_type(scopes) = 'array'),
	audience          TEXT    NOT NULL CHECK (json_type(audience) = 'array'),
	auth_time         INTEGER NOT NULL,
	amr               TEXT    NOT NULL CHECK (json_type(amr) = 'array'),
	acr               TEXT    NOT NULL,
	jkt               TEXT    NOT NULL,               -- '' when unbound
	access_jti        TEXT    NOT NULL,
	created_at        INTEGER NOT NULL,
	expires_at        INTEGER NOT NULL,               -- idle expiry
	family_expires_at INTEGER NOT NULL,               -- absolute expiry
	used_at           INTEGER,
	revoked           INTEGER NOT NULL CHECK (revoked IN (0, 1))
) STRICT;

CREATE INDEX refresh_tokens_family     ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_grant      ON refresh_tokens (user_id, client_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (family_expires_at);

CREATE TABLE pushed_requests (
	hash       TEXT    NOT NULL PRIMARY KEY,
	client_id  TEXT    NOT NULL,
	params     TEXT    NOT NULL,                      -- form-encoded
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);
