-- latchkey-sp schema: JIT accounts, their roles, the app's audit log, the shared replay cache.
-- Portable between SQLite and PostgreSQL: TEXT ids (UUIDs), BIGINT times (Unix milliseconds)
-- and BIGINT booleans, because those are the types the sqlx Any driver reads back the same way
-- from both.

CREATE TABLE sp_accounts (
    id TEXT PRIMARY KEY,
    -- Both NULL for a local account the app created itself; both set once JIT owns it.
    idp_entity_id TEXT,
    identity_key TEXT,
    -- Normalised copy of fields.email, unique so two accounts can never share an address.
    email TEXT,
    -- JSON object of field name to string value.
    fields TEXT NOT NULL,
    -- 'jit' or 'app': who created the account.
    provisioned_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((idp_entity_id IS NULL) = (identity_key IS NULL))
);

-- The race-free creation rests on this index: concurrent first logins of one person all
-- INSERT ... ON CONFLICT DO NOTHING, and exactly one insert wins.
CREATE UNIQUE INDEX sp_accounts_identity ON sp_accounts (idp_entity_id, identity_key);
CREATE UNIQUE INDEX sp_accounts_email ON sp_accounts (email);

CREATE TABLE sp_account_roles (
    account_id TEXT NOT NULL REFERENCES sp_accounts (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    -- 1 when JIT granted it (and may withdraw it), 0 when an app admin did.
    managed BIGINT NOT NULL,
    PRIMARY KEY (account_id, role)
);

CREATE TABLE sp_audit (
    id TEXT PRIMARY KEY,
    operation_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    account_id TEXT,
    idp_entity_id TEXT NOT NULL,
    identity_key TEXT,
    session_index TEXT,
    -- The provisioning plan as JSON.
    plan TEXT NOT NULL
);
CREATE INDEX sp_audit_at ON sp_audit (at);
CREATE INDEX sp_audit_account ON sp_audit (account_id);

CREATE TABLE sp_replay_cache (
    assertion_id TEXT PRIMARY KEY,
    not_on_or_after BIGINT NOT NULL
);
CREATE INDEX sp_replay_cache_expiry ON sp_replay_cache (not_on_or_after);
