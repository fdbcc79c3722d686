-- A group's members' version (sqlite; keep in step with ../postgres/0630_group_version.sql).
-- A SCIM group's ETag was a hash of the group as answered, every member included: a PATCH with
-- `If-Match` on a group of 100,000 read and rendered all of them (seconds) only to learn its
-- version. The ETag is now a hash of the group's own fields and this number, which any change
-- to what a group's member list shows moves, by trigger, so no write path (SCIM, console, API,
-- CLI, bulk loads, a user's deletion cascading out of `group_members`, hand-written SQL) can
-- forget to: a membership added, removed or changed, a member's entry as SCIM wrote it, a
-- member's username (the `display` of an entry SCIM did not write). Existing groups start at 0.
ALTER TABLE directory_groups ADD COLUMN members_version INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER group_members_insert_version AFTER INSERT ON group_members
BEGIN UPDATE directory_groups SET members_version = members_version + 1 WHERE id = NEW.group_id; END;
CREATE TRIGGER group_members_update_version AFTER UPDATE ON group_members
BEGIN UPDATE directory_groups SET members_version = members_version + 1 WHERE id IN (OLD.group_id, NEW.group_id); END;
CREATE TRIGGER group_members_delete_version AFTER DELETE ON group_members
BEGIN UPDATE directory_groups SET members_version = members_version + 1 WHERE id = OLD.group_id; END;
CREATE TRIGGER scim_group_members_insert_version AFTER INSERT ON scim_group_members
BEGIN UPDATE directory_groups SET members_version = members_version + 1 WHERE id = NEW.group_id; END;
CREATE TRIGGER scim_group_members_update_version AFTER UPDATE ON scim_group_members
BEGIN UPDATE directory_groups SET members_version = members_version + 1 WHERE id IN (OLD.group_id, NEW.group_id); END;
CREATE TRIGGER scim_group_members_delete_version AFTER DELETE ON scim_group_members
BEGIN UPDATE directory_groups SET members_version = members_version + 1 WHERE id = OLD.group_id; END;
CREATE TRIGGER users_username_members_version AFTER UPDATE OF username ON users
WHEN NEW.username IS NOT OLD.username
BEGIN UPDATE directory_groups SET members_version = members_version + 1 WHERE id IN (SELECT group_id FROM group_members WHERE user_id = NEW.id); END;
