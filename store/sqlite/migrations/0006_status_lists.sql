-- 0006: token status lists (draft-ietf-oauth-status-list).
--
-- A list's row carries its size and its current lease; its entries live
-- apart, one row per non-VALID token, so a list of a million tokens costs
-- nothing until tokens on it are revoked. Lists are never deleted: a
-- list's id is the last segment of its URI, and LeaseStatusList recycles
-- lists instead of creating new ones.
--
-- No change-counter trigger (0002): entries change whenever a token is
-- revoked, and each list carries a version of its own.

CREATE TABLE status_lists (
	id            INTEGER PRIMARY KEY,
	size          INTEGER NOT NULL CHECK (size > 0),
	generation    INTEGER NOT NULL CHECK (generation > 0),
	since         INTEGER NOT NULL,
	holder        TEXT    NOT NULL,               -- '' while quarantined
	usable_until  INTEGER NOT NULL,
	recycle_after INTEGER NOT NULL,
	version       INTEGER NOT NULL
) STRICT;

-- LeaseStatusList looks for the recyclable lists of one size, oldest
-- recycle_after first (id, the rowid, breaks ties).
CREATE INDEX status_lists_recycle ON status_lists (size, recycle_after);

CREATE TABLE status_entries (
	list   INTEGER NOT NULL REFERENCES status_lists (id),
	idx    INTEGER NOT NULL CHECK (idx >= 0),
	status INTEGER NOT NULL CHECK (status BETWEEN 1 AND 255),
	PRIMARY KEY (list, idx)
) STRICT, WITHOUT ROWID;
