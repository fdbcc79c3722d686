-- A group's members' version (postgres; keep in step with ../sqlite/0630_group_version.sql).
-- A SCIM group's ETag was a hash of the group as answered, every member included: a PATCH with
-- `If-Match` on a group of 100,000 read and rendered all of them (seconds) only to learn its
-- version. The ETag is now a hash of the group's own fields and this number, which any change
-- to what a group's member list shows moves, by trigger, so no write path (SCIM, console, API,
-- CLI, bulk loads, a user's deletion cascading out of `group_members`, hand-written SQL) can
-- forget to: a membership added, removed or changed, a member's entry as SCIM wrote it, a
-- member's username (the `display` of an entry SCIM did not write). Existing groups start at 0.
-- Statement triggers move each group a statement touches once (a bulk load of 100,000 members
-- is one update), taking the groups' rows in ID order so that two statements touching the
-- same groups queue rather than deadlock.
ALTER TABLE directory_groups ADD COLUMN members_version BIGINT NOT NULL DEFAULT 0;
CREATE FUNCTION groups_members_version(ids TEXT[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN PERFORM 1 FROM directory_groups WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
UPDATE directory_groups SET members_version = members_version + 1 WHERE id = ANY (ids); END $$;
CREATE FUNCTION group_members_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF TG_OP = 'INSERT' THEN PERFORM groups_members_version(ARRAY(SELECT DISTINCT group_id FROM came));
ELSIF TG_OP = 'DELETE' THEN PERFORM groups_members_version(ARRAY(SELECT DISTINCT group_id FROM gone));
ELSIF TG_OP = 'UPDATE' THEN PERFORM groups_members_version(ARRAY(SELECT group_id FROM came UNION SELECT group_id FROM gone));
ELSE UPDATE directory_groups SET members_version = members_version + 1; END IF; RETURN NULL; END $$;
CREATE TRIGGER group_members_insert_version AFTER INSERT ON group_members
REFERENCING NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION group_members_version();
CREATE TRIGGER group_members_update_version AFTER UPDATE ON group_members
REFERENCING OLD TABLE AS gone NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION group_members_version();
CREATE TRIGGER group_members_delete_version AFTER DELETE ON group_members
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION group_members_version();
CREATE TRIGGER group_members_truncate_version AFTER TRUNCATE ON group_members
FOR EACH STATEMENT EXECUTE FUNCTION group_members_version();
CREATE TRIGGER scim_group_members_insert_version AFTER INSERT ON scim_group_members
REFERENCING NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION group_members_version();
CREATE TRIGGER scim_group_members_update_version AFTER UPDATE ON scim_group_members
REFERENCING OLD TABLE AS gone NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION group_members_version();
CREATE TRIGGER scim_group_members_delete_version AFTER DELETE ON scim_group_members
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION group_members_version();
CREATE TRIGGER scim_group_members_truncate_version AFTER TRUNCATE ON scim_group_members
FOR EACH STATEMENT EXECUTE FUNCTION group_members_version();
CREATE FUNCTION users_username_members_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM groups_members_version(ARRAY(SELECT group_id FROM group_members WHERE user_id = NEW.id)); RETURN NULL; END $$;
CREATE TRIGGER users_username_members_version AFTER UPDATE OF username ON users
FOR EACH ROW WHEN (NEW.username IS DISTINCT FROM OLD.username) EXECUTE FUNCTION users_username_members_version();
