-- 0005: how far each server's local audit journal has reached the trail.
--
-- A server writes every audit record to a journal file before it answers
-- and appends the records to the audit table in batches afterwards. Each
-- batch moves its journal's mark in the same transaction, so after a crash
-- the server appends exactly the journal records after the mark.
CREATE TABLE audit_journals (
	journal TEXT    PRIMARY KEY,   -- the id in the journal file's header
	seq     INTEGER NOT NULL       -- the last journal record in the trail
) STRICT;
