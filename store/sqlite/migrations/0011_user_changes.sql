-- 0011: writes to users move the change counter (0002), so that a node
-- may cache users as it caches clients (issuer.Cache) and drop them when
-- any process changes one. Users are written by the operator and, once
-- per parameter change, by a sign-in that rehashes a password: nothing a
-- caller can repeat at will (see 0004).

CREATE TRIGGER users_insert_changes AFTER INSERT ON users BEGIN UPDATE changes SET n = n + 1; END;
CREATE TRIGGER users_update_changes AFTER UPDATE ON users BEGIN UPDATE changes SET n = n + 1; END;
CREATE TRIGGER users_delete_changes AFTER DELETE ON users BEGIN UPDATE changes SET n = n + 1; END;
