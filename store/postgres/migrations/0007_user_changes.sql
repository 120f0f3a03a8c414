-- 0007: writes to users move the change counter and notify every node
-- (0001, 0002), so that nodes may cache users as they cache clients, as
-- in the SQLite store's 0011.

CREATE TRIGGER users_changes AFTER INSERT OR UPDATE OR DELETE ON users
	FOR EACH STATEMENT EXECUTE FUNCTION bump_changes();
