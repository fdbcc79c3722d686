-- Listings at 100,000 users and millions of audit lines (sqlite), found by `latchkey bench
-- list`. Keep in step with ../postgres/0460_listing_at_scale.sql.
--
-- A group's members in username order: the member row carries its user's case-folded
-- username (written by directory/groups.rs with the row, and by users.rs on a rename), so
-- one index range is the page, whatever the group's size. Joining users and sorting took a
-- second for a group of 100,000.
ALTER TABLE group_members ADD COLUMN username_key TEXT NOT NULL DEFAULT '';
UPDATE group_members SET username_key = (SELECT u.username_key FROM users u WHERE u.id = group_members.user_id);
CREATE INDEX group_members_group_username ON group_members (group_id, username_key);
-- An audit time window newest first from one index, (at, seq) being its order: reading the
-- window through `at` and sorting it took seconds for a day of a busy log.
DROP INDEX audit_events_at;
CREATE INDEX audit_events_at_seq ON audit_events (at, seq);
