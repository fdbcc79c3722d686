-- Pending requests as one b-tree keyed by the RelayState (SQLite's WITHOUT ROWID), as the
-- replay cache (20261206000020): a rowid table kept each row in one b-tree and its unique key
-- in another, so the start of an SP-initiated login and its answer each wrote a page more
-- (about 4.4 -> 3.6 WAL frames for the insert, 4.3 -> 3.2 for the delete). Same columns, key
-- and indexes.
--
-- The table is renamed first so that the migration holds it before reading it: no login
-- started meanwhile on another node can miss the copy. Its indexes go with it and are made
-- again, by the same names, on the new table.
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
) WITHOUT ROWID;
CREATE INDEX sp_pending_requests_expiry ON sp_pending_requests (expires_at);
CREATE INDEX sp_pending_requests_client ON sp_pending_requests (client);
INSERT INTO sp_pending_requests (relay_state, request_id, return_to, expires_at, client)
    SELECT relay_state, request_id, return_to, expires_at, client FROM sp_pending_requests_old
    WHERE relay_state IS NOT NULL;
DROP TABLE sp_pending_requests_old;
