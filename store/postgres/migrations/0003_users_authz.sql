-- 0003: users, the authorization code flow's state and two client
-- columns, as in the SQLite store's 0007 (see there for the design).
--
-- The new client columns are client changes: clients' statement trigger
-- (0001, 0002) counts and announces them as before. The new tables have
-- no trigger: nothing caches them. There are no foreign keys: DeleteUser
-- deletes a user's sessions, consents and refresh tokens itself, in one
-- transaction.

ALTER TABLE clients
	ADD COLUMN require_par             BOOLEAN NOT NULL DEFAULT false,
	ADD COLUMN registration_token_hash BYTEA;   -- NULL unless registered dynamically

-- username has the C collation: compared exactly (the admin layer
-- normalises it) and ordered byte-wise by Users, as Go compares strings.
CREATE TABLE users (
	id            TEXT    NOT NULL PRIMARY KEY,
	username      TEXT    COLLATE "C" NOT NULL UNIQUE,
	password_hash TEXT    NOT NULL,
	claims        JSONB   NOT NULL CHECK (jsonb_typeof(claims) = 'object'),
	disabled      BOOLEAN NOT NULL,
	created_at    BIGINT  NOT NULL,
	updated_at    BIGINT  NOT NULL
);

CREATE TABLE sessions (
	id         TEXT   NOT NULL PRIMARY KEY,
	user_id    TEXT   NOT NULL,
	auth_time  BIGINT NOT NULL,
	amr        JSONB  NOT NULL CHECK (jsonb_typeof(amr) = 'array'),
	expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user       ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE auth_codes (
	hash           TEXT   NOT NULL PRIMARY KEY,
	client_id      TEXT   NOT NULL,
	user_id        TEXT   NOT NULL,
	redirect_uri   TEXT   NOT NULL,
	scopes         JSONB  NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
	audience       JSONB  NOT NULL CHECK (jsonb_typeof(audience) = 'array'),
	nonce          TEXT   NOT NULL,
	code_challenge TEXT   NOT NULL,
	auth_time      BIGINT NOT NULL,
	amr            JSONB  NOT NULL CHECK (jsonb_typeof(amr) = 'array'),
	acr            TEXT   NOT NULL,
	session_id     TEXT   NOT NULL,
	expires_at     BIGINT NOT NULL,
	-- The first redemption, NULL until RedeemCode sets it, once.
	redeemed_at    BIGINT,
	access_jti     TEXT,
	refresh_family TEXT,
	CHECK ((redeemed_at IS NULL) = (access_jti IS NULL)
		AND (redeemed_at IS NULL) = (refresh_family IS NULL))
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

-- client_id has the C collation: Consents orders by it byte-wise.
CREATE TABLE consents (
	user_id    TEXT   NOT NULL,
	client_id  TEXT   COLLATE "C" NOT NULL,
	scopes     JSONB  NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
	audience   JSONB  NOT NULL CHECK (jsonb_typeof(audience) = 'array'),
	granted_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, client_id)
);

-- Rotation and revocation of a family serialise on a transaction-level
-- advisory lock named after the family (see lockFamilies).
CREATE TABLE refresh_tokens (
	hash              TEXT    NOT NULL PRIMARY KEY,
	family_id         TEXT    NOT NULL,
	client_id         TEXT    NOT NULL,
	user_id           TEXT    NOT NULL,
	scopes            JSONB   NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
	audience          JSONB   NOT NULL CHECK (jsonb_typeof(audience) = 'array'),
	auth_time         BIGINT  NOT NULL,
	amr               JSONB   NOT NULL CHECK (jsonb_typeof(amr) = 'array'),
	acr               TEXT    NOT NULL,
	jkt               TEXT    NOT NULL,
	access_jti        TEXT    NOT NULL,
	created_at        BIGINT  NOT NULL,
	expires_at        BIGINT  NOT NULL,            -- idle expiry
	family_expires_at BIGINT  NOT NULL,            -- absolute expiry
	used_at           BIGINT,                      -- NULL while unspent
	revoked           BOOLEAN NOT NULL
);
CREATE INDEX refresh_tokens_family     ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_grant      ON refresh_tokens (user_id, client_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (family_expires_at);

CREATE TABLE pushed_requests (
	hash       TEXT   NOT NULL PRIMARY KEY,
	client_id  TEXT   NOT NULL,
	params     TEXT   NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);
