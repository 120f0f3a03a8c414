-- 0008: revoked refresh families, and revocation by client.
--
-- RevokeRefreshFamily records the family here as well as marking its
-- tokens revoked, and CreateRefresh refuses a family recorded here: a
-- replayed authorization code revokes the family that the code's first
-- redemption is about to create, before that family has a token to mark.
-- Both run in immediate transactions, so the mark and the first token
-- cannot pass each other. PurgeAuthz deletes a mark an hour after the
-- revocation (revoked_at, the store's clock), far longer than a
-- redemption takes to store its first token.
--
-- No change-counter trigger: nothing caches refresh tokens.

CREATE TABLE revoked_families (
	family_id  TEXT    NOT NULL PRIMARY KEY,
	revoked_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX revoked_families_revoked_at ON revoked_families (revoked_at);

-- RevokeRefreshTokens with a client alone finds that client's families
-- through this index; a user's come from refresh_tokens_grant (0007).
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
