-- The pair of the SQLite migration, which makes the replay cache one b-tree (WITHOUT ROWID).
-- A PostgreSQL table is a heap with its key in an index either way, so this only rebuilds the
-- table as it was (same columns, same key), keeping the two schemas one.
--
-- The table is renamed first so that the migration holds it (an exclusive table lock) before
-- reading it: no entry recorded meanwhile by another node can miss the copy.
ALTER TABLE sp_replay_cache RENAME TO sp_replay_cache_old;
CREATE TABLE sp_replay_cache (
    assertion_id TEXT NOT NULL,
    not_on_or_after BIGINT NOT NULL,
    CONSTRAINT sp_replay_cache_entry PRIMARY KEY (assertion_id)
);
INSERT INTO sp_replay_cache (assertion_id, not_on_or_after)
    SELECT assertion_id, not_on_or_after FROM sp_replay_cache_old WHERE assertion_id IS NOT NULL;
DROP TABLE sp_replay_cache_old;
