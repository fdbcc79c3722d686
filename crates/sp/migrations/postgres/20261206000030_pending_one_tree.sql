-- The pair of the SQLite migration, which makes pending requests one b-tree (WITHOUT ROWID).
-- A PostgreSQL table is a heap with its key in an index either way, so this only rebuilds the
-- table as it was (same columns, key and indexes), keeping the two schemas one.
--
-- The table is renamed first so that the migration holds it (an exclusive table lock) before
-- reading it: no login started meanwhile on another node can miss the copy. Its indexes go
-- with it and are made again, by the same names, on the new table.
ALTER TABLE sp_pending_requests RENAME TO sp_pending_requests_old;
DROP INDEX sp_pending_requests_expiry;
DROP INDEX sp_pending_requests_client;
CREATE TABLE sp_pending_requests (
    relay_state TEXT NOT NULL,
    request_id TEXT NOT NULL,
    return_to TEXT,
    expires_at BIGINT NOT NULL,
    client TEXT NOT NULL DEFAULT '',
    CONSTRAINT sp_pending_requests_key PRIMARY KEY (relay_state)
);
CREATE INDEX sp_pending_requests_expiry ON sp_pending_requests (expires_at);
CREATE INDEX sp_pending_requests_client ON sp_pending_requests (client);
INSERT INTO sp_pending_requests (relay_state, request_id, return_to, expires_at, client)
    SELECT relay_state, request_id, return_to, expires_at, client FROM sp_pending_requests_old
    WHERE relay_state IS NOT NULL;
DROP TABLE sp_pending_requests_old;
