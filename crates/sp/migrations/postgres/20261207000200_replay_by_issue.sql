-- The pair of the SQLite migration: the replay cache keyed by the assertion's IssueInstant,
-- then its ID, so that entries land at the end of the key's index in about the order they are
-- issued. Entries recorded before it keep issued_at = 0 (see the SQLite file).
--
-- The table is renamed first so that the migration holds it (an exclusive table lock) before
-- reading it: no entry recorded meanwhile by another node can miss the copy. The old key's
-- index keeps its name (sp_replay_cache_entry) until the old table is dropped, so the new key
-- has a name of its own.
ALTER TABLE sp_replay_cache RENAME TO sp_replay_cache_old;
CREATE TABLE sp_replay_cache (
    issued_at BIGINT NOT NULL,
    assertion_id TEXT NOT NULL,
    not_on_or_after BIGINT NOT NULL,
    CONSTRAINT sp_replay_cache_use PRIMARY KEY (issued_at, assertion_id)
);
INSERT INTO sp_replay_cache (issued_at, assertion_id, not_on_or_after)
    SELECT 0, assertion_id, not_on_or_after FROM sp_replay_cache_old;
DROP TABLE sp_replay_cache_old;
