-- A login's commit writes each page it changed to the WAL (SQLite) as a whole, about 3 us of
-- CPU per page on the request's thread, and the checkpoint copies it back: every index on a
-- table each login inserts into costs a page per login. These two sorted rows a second time.
-- The audit log is listed newest first by its ID instead: an event's ID starts with its time
-- in milliseconds (AuditEvent::id_at), so the primary key holds the log in time order.
DROP INDEX sp_audit_at;
-- Expired replay-cache entries are deleted about once a minute by a scan of the table, which
-- holds only the entries of the last minutes; deleting them costs far more than finding them.
DROP INDEX sp_replay_cache_expiry;
