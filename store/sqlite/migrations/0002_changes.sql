-- 0002: a change counter for cache invalidation (Store.Version).
--
-- Every write to clients, signing_keys or revocations bumps changes.n in
-- the same transaction, through triggers, so any process sharing the file
-- sees the new value once the write commits. The replay cache is left out
-- on purpose: it is written on every client assertion and DPoP proof, and
-- no cache depends on it.

CREATE TABLE changes (
	id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	n  INTEGER NOT NULL
) STRICT;

INSERT INTO changes (id, n) VALUES (1, 0);

CREATE TRIGGER clients_insert_changes AFTER INSERT ON clients BEGIN UPDATE changes SET n = n + 1; END;
CREATE TRIGGER clients_update_changes AFTER UPDATE ON clients BEGIN UPDATE changes SET n = n + 1; END;
CREATE TRIGGER clients_delete_changes AFTER DELETE ON clients BEGIN UPDATE changes SET n = n + 1; END;
CREATE TRIGGER keys_insert_changes AFTER INSERT ON signing_keys BEGIN UPDATE changes SET n = n + 1; END;
CREATE TRIGGER keys_update_changes AFTER UPDATE ON signing_keys BEGIN UPDATE changes SET n = n + 1; END;
CREATE TRIGGER keys_delete_changes AFTER DELETE ON signing_keys BEGIN UPDATE changes SET n = n + 1; END;
CREATE TRIGGER revocations_insert_changes AFTER INSERT ON revocations BEGIN UPDATE changes SET n = n + 1; END;
CREATE TRIGGER revocations_update_changes AFTER UPDATE ON revocations BEGIN UPDATE changes SET n = n + 1; END;
CREATE TRIGGER revocations_delete_changes AFTER DELETE ON revocations BEGIN UPDATE changes SET n = n + 1; END;
