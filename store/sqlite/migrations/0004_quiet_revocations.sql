-- 0004: revocations no longer move the change counter.
--
-- The counter (0002) tells nodes to drop their client cache. Nothing
-- caches revocations (introspection reads them from the store every time),
-- and any client may write one (RFC 7009), so counting them let a client
-- flush every node's cache at will.

DROP TRIGGER revocations_insert_changes;
DROP TRIGGER revocations_update_changes;
DROP TRIGGER revocations_delete_changes;
