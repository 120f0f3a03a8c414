-- 0012: device authorizations (RFC 8628).
--
-- One row per device authorization, keyed by the keyed hash of its
-- device_code; the keyed hash of its user_code is unique too, so the
-- verification page finds one row by it. The state only moves forward
-- (pending -> approved | denied, approved -> redeemed): DecideDevice is
-- one UPDATE conditional on pending, PollDevice one write transaction
-- (BEGIN IMMEDIATE, see _txlock) that reads the row and writes the next
-- state, so two pollers can never both redeem. last_poll and
-- interval_ns make slow_down (RFC 8628 §3.5). NULL times are unset.

CREATE TABLE device_authorizations (
	device_hash     TEXT    NOT NULL PRIMARY KEY,
	user_code_hash  TEXT    NOT NULL UNIQUE,
	client_id       TEXT    NOT NULL,
	scopes          TEXT    NOT NULL CHECK (json_type(scopes) = 'array'),
	audience        TEXT    NOT NULL CHECK (json_type(audience) = 'array'),
	created_at      INTEGER NOT NULL,
	expires_at      INTEGER NOT NULL,
	interval_ns     INTEGER NOT NULL,
	last_poll       INTEGER,
	state           TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'redeemed')),
	user_id         TEXT    NOT NULL,               -- '' while pending
	decided_at      INTEGER,
	auth_time       INTEGER,
	amr             TEXT    NOT NULL CHECK (json_type(amr) = 'array'),
	acr             TEXT    NOT NULL,
	session_id      TEXT    NOT NULL,
	redeemed_at     INTEGER,
	access_jti      TEXT    NOT NULL,
	refresh_family  TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX device_authorizations_expires_at ON device_authorizations (expires_at);
