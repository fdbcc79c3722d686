-- The IdP's SCIM client (src/provisioning/): applications it pushes users to.
-- The bearer token is sealed under the KEK (AES-256-GCM, the row's app ID in the AAD), as
-- signing keys and TOTP secrets are; it is never shown back.
CREATE TABLE scim_connections (
    app_id          TEXT PRIMARY KEY NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    base_url        TEXT NOT NULL,
    token_sealed    TEXT NOT NULL,
    sealed_with     TEXT NOT NULL,
    on_remove       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    last_success_at TEXT,
    last_error      TEXT,
    last_error_at   TEXT,
    last_sync_at    TEXT
);

-- The outbox: one row per (application, user) that must be brought in line with the
-- directory, written in the transaction of the change. The worker computes what to send
-- when it delivers, so rows are "converge this pair", and delivering the newest state
-- covers every older row of the pair. user_id has no foreign key: a deleted user's rows
-- stay until delivered, with the username to find them by.
CREATE TABLE scim_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id          TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    user_name       TEXT NOT NULL,
    reason          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    last_error      TEXT
);
CREATE INDEX scim_outbox_pair ON scim_outbox (app_id, user_id, seq);
CREATE INDEX scim_outbox_due ON scim_outbox (next_attempt_at);

-- The id each application gave our user (app x user -> remote id).
CREATE TABLE scim_remote_ids (
    app_id     TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    remote_id  TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
