-- A user's case-folded username is copied into the rows listings are ordered by (sqlite; keep in
-- step with ../postgres/0620_username_key_follows.sql): `user_words` (0610) and `group_members`
-- (0460). Every writer of this version copied it on a rename, but a node of an older version,
-- during a rolling upgrade, renames without copying it (into `user_words` it never did), and a
-- search or a group's member listing then sorted that user under the old name. The copy is now
-- the database's own, on every rename by any writer, as the applications' version is (0570).
CREATE TRIGGER users_username_key_follows AFTER UPDATE OF username_key ON users
WHEN NEW.username_key IS NOT OLD.username_key
BEGIN UPDATE user_words SET username_key = NEW.username_key WHERE user_id = NEW.id; UPDATE group_members SET username_key = NEW.username_key WHERE user_id = NEW.id; END;
