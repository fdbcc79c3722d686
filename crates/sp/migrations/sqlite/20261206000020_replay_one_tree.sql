-- The replay cache as one b-tree keyed by the assertion ID (SQLite's WITHOUT ROWID): a rowid
-- table kept its entries in one b-tree and their unique key in another, so every login wrote
-- a page of each (the table's last page and the key's page at a random place): one WAL frame
-- in five of a returning login's commit, and again at the checkpoint. Same columns, same key.
--
-- The table is renamed first so that the migration holds it (SQLite's write lock here,
-- PostgreSQL's exclusive table lock there) before reading it: no entry recorded meanwhile by
-- another node can miss the copy.
ALTER TABLE sp_replay_cache RENAME TO sp_replay_cache_old;
CREATE TABLE sp_replay_cache (
    assertion_id TEXT NOT NULL,
    not_on_or_after BIGINT NOT NULL,
    CONSTRAINT sp_replay_cache_entry PRIMARY KEY (assertion_id)
) WITHOUT ROWID;
INSERT INTO sp_replay_cache (assertion_id, not_on_or_after)
    SELECT assertion_id, not_on_or_after FROM sp_replay_cache_old WHERE assertion_id IS NOT NULL;
DROP TABLE sp_replay_cache_old;
