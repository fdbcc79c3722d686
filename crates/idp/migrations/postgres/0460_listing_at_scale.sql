-- Listings at 100,000 users and millions of audit lines (postgres), found by `latchkey bench
-- list`. Keep in step with ../sqlite/0460_listing_at_scale.sql.
--
-- A group's members in username order (byte-wise, as 0440's user indexes): the member row
-- carries its user's case-folded username (written by directory/groups.rs with the row, and
-- by users.rs on a rename), so one index range is the page, whatever the group's size.
ALTER TABLE group_members ADD COLUMN username_key TEXT NOT NULL DEFAULT '';
UPDATE group_members SET username_key = (SELECT u.username_key FROM users u WHERE u.id = group_members.user_id);
CREATE INDEX group_members_group_username ON group_members (group_id, username_key COLLATE "C");
-- An audit time window newest first from one index, (at, seq) being its order.
DROP INDEX audit_events_at;
CREATE INDEX audit_events_at_seq ON audit_events (at, seq);
