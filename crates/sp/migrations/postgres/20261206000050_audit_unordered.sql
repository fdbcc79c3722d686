-- The audit log is purged of events older than the retention (`[audit] retain_days`,
-- SqlAccountStore::purge_audit) along its primary key: an event's ID begins with its time in
-- milliseconds (AuditEvent::id_at, a version 7 UUID), so the events older than a cutoff are the
-- IDs below one bound. The events written before IDs were made that way have random version 4
-- IDs, anywhere in the key; this index finds them by time instead. It holds only them, so no
-- login writes to it (its predicate is false for a version 7 ID: the version is the 15th
-- character of the text), and it is empty on a database created since. Building it reads the
-- log once, at the upgrade.
CREATE INDEX sp_audit_unordered_at ON sp_audit (at) WHERE substr(id, 15, 1) <> '7';
