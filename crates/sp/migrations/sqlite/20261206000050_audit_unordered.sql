-- The pair of the PostgreSQL migration that indexes, by time, the audit events whose IDs are
-- not in time order (random version 4 IDs, from before AuditEvent::id_at), so that the
-- retention purge (SqlAccountStore::purge_audit) finds them without reading the log. Here the
-- log is purged in the order of `seq`, the rowid, into which migration 20261206000040 copied
-- the older events in time order too, so there is nothing to find and the log keeps no index
-- (a page more for every login otherwise). (The migration exists so that both backends count
-- the same versions.)
SELECT 1;
