-- The words users are found by (postgres; keep in step with ../sqlite/0590_user_words.sql).
-- A search for "smith" finds Jane Smith through a range of one index instead of reading every
-- user: each word of a user's names, username and address, case-folded, is a row. The words
-- are split in Rust (by Unicode's letters and digits, which SQL cannot), so existing users get
-- theirs at the first start after this migration: the row in pending_backfills says it is
-- still to do, and the node that deletes it does it.
CREATE TABLE user_words (
    word    TEXT COLLATE "C" NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (word, user_id)
);
CREATE INDEX user_words_user ON user_words (user_id, word);

CREATE TABLE pending_backfills (
    name TEXT PRIMARY KEY NOT NULL
);
INSERT INTO pending_backfills (name) VALUES ('user_words');
