-- Read-only admin API tokens (sqlite; keep in step with ../postgres/0540_read_only_tokens.sql).
-- Scope 'api_read' calls /api/v1 with GET and HEAD only. A CHECK constraint cannot be changed in
-- place on SQLite, so the table is rebuilt, the same way on both backends; nothing references it.
CREATE TABLE api_tokens_next (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT,
    scope        TEXT NOT NULL DEFAULT 'api' CHECK (scope IN ('api', 'api_read', 'scim'))
);
INSERT INTO api_tokens_next (id, name, secret_hash, created_at, created_by, last_used_at, revoked_at, scope)
SELECT id, name, secret_hash, created_at, created_by, last_used_at, revoked_at, scope FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_next RENAME TO api_tokens;
