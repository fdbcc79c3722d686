-- Bearer tokens for the admin REST API (sqlite). Owned by the api module (src/api/tokens.rs);
-- numbered apart from the directory migrations so both can grow independently.
-- Only a SHA-256 of each token's secret is stored: the secret is shown once, at creation.

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
