-- The names a group had before (postgres; keep in step with ../sqlite/0600_group_former_names.sql).
-- An application connected over SCIM made a group of the old name, and may grant it rights of
-- its own (a wiki space, a project role); a rename in the directory renames that group there
-- instead of moving its members into a new one. The last eight names of a group are kept.
CREATE TABLE group_former_names (
    group_id   TEXT NOT NULL REFERENCES directory_groups (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    renamed_at TEXT NOT NULL,
    PRIMARY KEY (group_id, name)
);
