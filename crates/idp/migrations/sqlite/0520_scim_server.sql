-- The IdP's SCIM server (crates/idp/src/scim) and SCIM-only tokens (sqlite; keep in step with
-- ../postgres/0520_scim_server.sql).

-- What a token may call: 'api' (the admin REST API, every token made before this) or 'scim'
-- (only /scim/v2). Neither reaches the other's endpoints.
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'api' CHECK (scope IN ('api', 'scim'));

-- Per directory user that SCIM has written: the SCIM attributes the directory has no field
-- for (phone numbers, addresses, the whole e-mail list...), and the directory values SCIM
-- last wrote, which the overwrite rule compares with the current ones (docs/scim.md).
CREATE TABLE scim_users (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    resource   TEXT NOT NULL DEFAULT '{}',
    pushed     TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL
);

-- A group's externalId (groups have no custom attributes to hold it), and its member
-- entries as SCIM wrote them (`display`, `type`), for the members it still has.
CREATE TABLE scim_groups (
    group_id    TEXT PRIMARY KEY NOT NULL REFERENCES directory_groups (id) ON DELETE CASCADE,
    external_id TEXT,
    members     TEXT NOT NULL DEFAULT '[]',
    updated_at  TEXT NOT NULL
);
CREATE INDEX scim_groups_external_id ON scim_groups (external_id);

-- A user's externalId is the custom attribute of that name (released like any other);
-- `externalId eq`, which a provisioning client asks before every create, is served here.
CREATE INDEX users_scim_external_id ON users (json_extract(attributes, '$.externalId'));
