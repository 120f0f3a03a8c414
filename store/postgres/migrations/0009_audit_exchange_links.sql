-- 0009: the tokens a token exchange issued a token from (SQLite 0013).
--
-- A token.issued record of a token exchange names the subject token and
-- the actor token it came from; revoking a token revokes the tokens
-- exchanged from it, at any depth, through QueryAudit's ExchangedFrom.
-- NULL for every other record: the partial indexes cost nothing there.
ALTER TABLE audit ADD COLUMN subject_token_jti TEXT;
ALTER TABLE audit ADD COLUMN actor_token_jti TEXT;

CREATE INDEX audit_subject_token ON audit (subject_token_jti, seq) WHERE subject_token_jti IS NOT NULL;
CREATE INDEX audit_actor_token   ON audit (actor_token_jti, seq)   WHERE actor_token_jti IS NOT NULL;
