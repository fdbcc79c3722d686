-- The words users are found by, in username order (sqlite; keep in step with
-- ../postgres/0610_user_words_by_username.sql). A surname 5,000 people share was too broad to
-- list: each match was looked up in users and sorted by username, ~2 us a match, so past 1,000
-- a search fell back to the username prefix and found nobody by name. Each row now carries its
-- user's case-folded username, and the key (word, username_key, user_id) covers a search: a
-- page is read from one index range in username order per word, after the cursor, without
-- touching users for the matches not on it. The table is rebuilt (SQLite cannot change a
-- primary key), its rows keyed from users. A node of an older version, still running during a
-- rolling upgrade, writes rows without the key: the trigger fills it in from users.
CREATE TABLE user_words_by_username (
    word         TEXT NOT NULL,
    username_key TEXT NOT NULL DEFAULT '',
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT user_words_key PRIMARY KEY (word, username_key, user_id)
);
INSERT INTO user_words_by_username (word, username_key, user_id)
    SELECT w.word, u.username_key, w.user_id FROM user_words w JOIN users u ON u.id = w.user_id;
DROP TABLE user_words;
ALTER TABLE user_words_by_username RENAME TO user_words;
CREATE INDEX user_words_user ON user_words (user_id, word);
CREATE TRIGGER user_words_username_key AFTER INSERT ON user_words WHEN NEW.username_key = ''
BEGIN UPDATE user_words SET username_key = (SELECT u.username_key FROM users u WHERE u.id = NEW.user_id) WHERE word = NEW.word AND username_key = '' AND user_id = NEW.user_id; END;
