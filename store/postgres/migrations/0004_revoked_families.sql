-- 0004: revoked refresh families, and revocation by client, as in the
-- SQLite store's 0008 (see there for the design).
--
-- RevokeRefreshFamily records the mark and CreateRefresh checks it under
-- the family's advisory lock (see lockFamily), so a first token and a
-- revocation of its family on two nodes cannot pass each other. No
-- trigger: nothing caches refresh tokens.

CREATE TABLE revoked_families (
	family_id  TEXT   NOT NULL PRIMARY KEY,
	revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_families_revoked_at ON revoked_families (revoked_at);

CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
