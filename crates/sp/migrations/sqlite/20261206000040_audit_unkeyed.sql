-- The audit log as a plain rowid table, with no index at all. Its TEXT primary key was a
-- second b-tree beside the table's own, so every login's audit row wrote two pages to the WAL
-- in its commit (and again at the checkpoint), 2.45 frames an insert; without it, 1.2. That is
-- a third of a returning login's pages (strace: 8.9 -> 6.3 writes a login).
--
-- Nothing looks an event up by its ID, and the key enforced nothing a new event can break: an
-- ID is a version 7 UUID (AuditEvent::id_at), 74 random bits after the millisecond, made only
-- by the SP itself. The log is listed newest first by `seq`, the rowid under a name (so that
-- VACUUM keeps it), which SQLite gives each row as one more than the last, in commit order
-- (one writer at a time holds the database): the time order of the log. Not AUTOINCREMENT,
-- which would write a page of sqlite_sequence per event.
-- A WITHOUT ROWID table keyed by the ID was measured too: 2.15 frames, because an index b-tree
-- splits its last page in half where a rowid table starts a new one.
--
-- The table is renamed first so that the migration holds it before reading it: no event
-- written meanwhile by another node can miss the copy. Its rows are copied in time order, so
-- that `seq` lists the events written before this in time order too (those written before
-- AuditEvent::id_at, with random IDs, the key listed out of order). The copy takes as long as
-- the log is long, once, at the upgrade.
ALTER TABLE sp_audit RENAME TO sp_audit_old;
CREATE TABLE sp_audit (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    account_id TEXT,
    idp_entity_id TEXT NOT NULL,
    identity_key TEXT,
    session_index TEXT,
    -- The provisioning plan as JSON.
    plan TEXT NOT NULL,
    -- Who made a change that was not a login: the SCIM token's name.
    actor TEXT
);
INSERT INTO sp_audit (id, operation_id, at, kind, account_id, idp_entity_id, identity_key,
        session_index, plan, actor)
    SELECT id, operation_id, at, kind, account_id, idp_entity_id, identity_key, session_index,
        plan, actor
    FROM sp_audit_old WHERE id IS NOT NULL ORDER BY at, id;
DROP TABLE sp_audit_old;
