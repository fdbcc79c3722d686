-- Identities whose account a SCIM DELETE removed under `deprovision = "delete"`: a login whose
-- subject authenticated at or before `deleted_at` (an assertion in flight across the delete) is
-- refused (`ACCOUNT_DELETED`) rather than creating the account again. A row lives until
-- `expires_at` (unix milliseconds, like `deleted_at`), past any such assertion's lifetime;
-- every SCIM delete purges the expired ones, so the table holds at most the deletes of one
-- such lifetime.
CREATE TABLE sp_deleted_identities (
    idp_entity_id TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    deleted_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (idp_entity_id, identity_key)
);
CREATE INDEX sp_deleted_identities_expiry ON sp_deleted_identities (expires_at);
