-- 0013: the tokens a token exchange issued a token from.
--
-- A token.issued record of a token exchange names the subject token and
-- the actor token it came from (audit.Record.SubjectTokenJTI and
-- ActorTokenJTI). Revoking a token revokes the tokens exchanged from it,
-- at any depth: QueryAudit's ExchangedFrom walks these links. Copies of
-- body members, like the other index columns (0003): NULL for every other
-- record, so the partial indexes cost nothing on the client credentials
-- path.
ALTER TABLE audit ADD COLUMN subject_token_jti TEXT;
ALTER TABLE audit ADD COLUMN actor_token_jti TEXT;

CREATE INDEX audit_subject_token ON audit (subject_token_jti, seq) WHERE subject_token_jti IS NOT NULL;
CREATE INDEX audit_actor_token   ON audit (actor_token_jti, seq)   WHERE actor_token_jti IS NOT NULL;
