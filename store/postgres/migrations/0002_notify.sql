-- 0002: announce changes to clients and signing keys (LISTEN/NOTIFY), so
-- that every node drops its caches at once instead of at its next poll of
-- the change counter. The payload is the schema, since notifications are
-- per database and several deployments (or test runs) may share one.

CREATE OR REPLACE FUNCTION bump_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE changes SET n = n + 1 WHERE id = 1;
	PERFORM pg_notify('sigil_changes', current_schema());
	RETURN NULL;
END
$$;
