-- Console roles (sqlite): admin, helpdesk, auditor, granted to a directory user directly or to a
-- group (every member then holds it). Owned by src/console/roles.rs. A grant names exactly one
-- holder; the partial unique indexes make a second identical grant a conflict.
-- Keep in step with ../postgres/0400_console_roles.sql.

CREATE TABLE console_roles (
    role       TEXT NOT NULL CONSTRAINT console_roles_role_ck
                   CHECK (role IN ('admin', 'helpdesk', 'auditor')),
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    group_id   TEXT REFERENCES directory_groups (id) ON DELETE CASCADE,
    granted_at TEXT NOT NULL,
    CONSTRAINT console_roles_one_holder_ck CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE UNIQUE INDEX console_roles_user_uq ON console_roles (user_id, role) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX console_roles_group_uq ON console_roles (group_id, role) WHERE group_id IS NOT NULL;
