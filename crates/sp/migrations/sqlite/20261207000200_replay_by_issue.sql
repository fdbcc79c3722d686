-- The replay cache keyed by the assertion's IssueInstant, then its ID: entries are inserted
-- in about the order they are issued, at the b-tree's end, so the pages a login writes are
-- the same few for hundreds of logins and a checkpoint copies a handful of pages, not one
-- page (at a random place of the tree) per login. Both values are under the IdP's signature,
-- so a second use of an assertion carries the same key and is refused as before.
--
-- Entries recorded before this migration have no IssueInstant: they keep issued_at = 0, and
-- the recording statement (`replay::RECORD_ASSERTION`) refuses an ID that such an entry holds
-- unexpired, whatever its instant; they are pruned when they expire, as every entry is.
--
-- The table is renamed first so that the migration holds it (SQLite's write lock here,
-- PostgreSQL's exclusive table lock there) before reading it: no entry recorded meanwhile by
-- another node can miss the copy.
ALTER TABLE sp_replay_cache RENAME TO sp_replay_cache_old;
CREATE TABLE sp_replay_cache (
    issued_at BIGINT NOT NULL,
    assertion_id TEXT NOT NULL,
    not_on_or_after BIGINT NOT NULL,
    CONSTRAINT sp_replay_cache_use PRIMARY KEY (issued_at, assertion_id)
) WITHOUT ROWID;
INSERT INTO sp_replay_cache (issued_at, assertion_id, not_on_or_after)
    SELECT 0, assertion_id, not_on_or_after FROM sp_replay_cache_old;
DROP TABLE sp_replay_cache_old;
