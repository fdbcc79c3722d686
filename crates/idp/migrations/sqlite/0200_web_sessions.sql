-- Browser sign-in state for the SSO server (sqlite). Owned by src/session/; numbered apart
-- from the directory (0001..) and API token (0090) migrations so each can grow on its own.
-- Everything here is shared by all IdP nodes through the store, so a load balancer may send
-- a browser to any node. Secrets (session tokens, parked-request keys) are stored only as
-- SHA-256 hex digests: a copy of the database does not let anyone resume a session.

CREATE TABLE web_sessions (
    token_hash    TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_index TEXT NOT NULL,
    authn_at      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- Which applications a session has sent assertions to, and as whom (for single logout).
CREATE TABLE web_session_apps (
    token_hash     TEXT NOT NULL REFERENCES web_sessions (token_hash) ON DELETE CASCADE,
    app_id         TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    name_id        TEXT NOT NULL,
    name_id_format TEXT NOT NULL,
    issued_at      TEXT NOT NULL,
    PRIMARY KEY (token_hash, app_id)
);

-- An AuthnRequest that was validated and is waiting for the user to sign in (or for the
-- browser to come back same-site, so the SameSite=Lax session cookie is sent).
CREATE TABLE sso_parked_requests (
    key_hash   TEXT PRIMARY KEY NOT NULL,
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sso_parked_requests_expires ON sso_parked_requests (expires_at);

-- Failed sign-in counters, per account and per client address (keys `account:<folded>`
-- and `addr:<ip>`), with the time before which further attempts are refused.
CREATE TABLE login_throttle (
    throttle_key TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,
    first_at     TEXT NOT NULL,
    locked_until TEXT
);
