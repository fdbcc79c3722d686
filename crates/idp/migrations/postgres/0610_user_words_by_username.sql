-- The words users are found by, in username order (postgres; keep in step with
-- ../sqlite/0610_user_words_by_username.sql). A surname 5,000 people share was too broad to
-- list: each match was looked up in users and sorted by username, ~2 us a match, so past 1,000
-- a search fell back to the username prefix and found nobody by name. Each row now carries its
-- user's case-folded username (byte-wise, as 0440's user indexes), and the key (word,
-- username_key, user_id) covers a search: a page is read from one index range in username
-- order per word, after the cursor, without touching users for the matches not on it. The
-- table is rebuilt (as on SQLite, which cannot change a primary key), its rows keyed from
-- users. A node of an older version, still running during a rolling upgrade, writes rows
-- without the key: the trigger fills it in from users.
CREATE TABLE user_words_by_username (
    word         TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL DEFAULT '',
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT user_words_key PRIMARY KEY (word, username_key, user_id)
);
INSERT INTO user_words_by_username (word, username_key, user_id)
    SELECT w.word, u.username_key, w.user_id FROM user_words w JOIN users u ON u.id = w.user_id;
DROP TABLE user_words;
ALTER TABLE user_words_by_username RENAME TO user_words;
CREATE INDEX user_words_user ON user_words (user_id, word);
CREATE FUNCTION user_words_username_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.username_key := (SELECT u.username_key FROM users u WHERE u.id = NEW.user_id); RETURN NEW; END $$;
CREATE TRIGGER user_words_username_key BEFORE INSERT ON user_words
FOR EACH ROW WHEN (NEW.username_key = '') EXECUTE FUNCTION user_words_username_key();
