-- SCIM 2.0 provisioning (latchkey_sp::scim). Portable between SQLite and PostgreSQL like the
-- first migration: TEXT ids and JSON, BIGINT times, versions and booleans.

-- 0 when the account is disabled (SCIM `active: false`, or a DELETE under the contract's
-- `deprovision = "disable"`): its logins are refused and the application ends its sessions.
ALTER TABLE sp_accounts ADD COLUMN active BIGINT NOT NULL DEFAULT 1;
-- The SCIM User resource as the client last wrote it (canonical JSON, without id, meta and
-- groups); NULL for an account SCIM does not manage.
ALTER TABLE sp_accounts ADD COLUMN scim_resource TEXT;
-- Lower-cased userName, unique: SCIM's userName is case-insensitive (RFC 7643 4.1.1).
ALTER TABLE sp_accounts ADD COLUMN scim_user_name TEXT;
-- Bumped at every SCIM write: the resource's ETag.
ALTER TABLE sp_accounts ADD COLUMN scim_version BIGINT NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX sp_accounts_scim_user_name ON sp_accounts (scim_user_name);

CREATE TABLE sp_scim_groups (
    id TEXT PRIMARY KEY,
    -- Lower-cased displayName, unique.
    name_key TEXT NOT NULL,
    -- The Group resource as written (canonical JSON, without id, meta and members).
    resource TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX sp_scim_groups_name ON sp_scim_groups (name_key);

CREATE TABLE sp_scim_members (
    group_id TEXT NOT NULL REFERENCES sp_scim_groups (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES sp_accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, account_id)
);
CREATE INDEX sp_scim_members_account ON sp_scim_members (account_id);

-- Who made a change that was not a login: the SCIM token's name.
ALTER TABLE sp_audit ADD COLUMN actor TEXT;
