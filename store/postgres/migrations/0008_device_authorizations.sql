-- 0008: device authorizations (RFC 8628), as in the SQLite store's 0012
-- (see there for the design). PollDevice reads the row FOR UPDATE and
-- writes the next state in the same transaction, so of two pollers on
-- any nodes only one can redeem. No trigger: nothing caches them.

CREATE TABLE device_authorizations (
	device_hash     TEXT    NOT NULL PRIMARY KEY,
	user_code_hash  TEXT    NOT NULL UNIQUE,
	client_id       TEXT    NOT NULL,
	scopes          JSONB   NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
	audience        JSONB   NOT NULL CHECK (jsonb_typeof(audience) = 'array'),
	created_at      BIGINT  NOT NULL,
	expires_at      BIGINT  NOT NULL,
	interval_ns     BIGINT  NOT NULL,
	last_poll       BIGINT,
	state           TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'redeemed')),
	user_id         TEXT    NOT NULL,        -- '' while pending
	decided_at      BIGINT,
	auth_time       BIGINT,
	amr             JSONB   NOT NULL CHECK (jsonb_typeof(amr) = 'array'),
	acr             TEXT    NOT NULL,
	session_id      TEXT    NOT NULL,
	redeemed_at     BIGINT,
	access_jti      TEXT    NOT NULL,
	refresh_family  TEXT    NOT NULL
);
CREATE INDEX device_authorizations_expires_at ON device_authorizations (expires_at);
