-- Passkeys and security keys (WebAuthn), postgres. Owned by src/webauthn/.
-- Keep in step with ../sqlite/0380_webauthn.sql.

-- A user's registered credentials, several per user. credential_id is the authenticator's
-- ID (base64url), unique across users: the same key cannot be enrolled on two accounts.
-- passkey is webauthn-rs's serialised Passkey (public key, counter, flags): no secret.
CREATE TABLE webauthn_credentials (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   TEXT NOT NULL CONSTRAINT webauthn_credentials_credential_id_uq UNIQUE,
    passkey         TEXT NOT NULL,
    name            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    last_used_at    TEXT,
    sign_count      BIGINT NOT NULL,
    backup_eligible BIGINT NOT NULL,
    backed_up       BIGINT NOT NULL
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- Ceremonies under way: the challenge state the browser must answer, single-use (a finish
-- deletes its row with RETURNING) and short-lived (expires_at, Unix milliseconds). handle_hash
-- is the SHA-256 of the handle the browser holds; owner is who started it (user:<id> or
-- addr:<network>), which the per-owner cap counts.
CREATE TABLE webauthn_challenges (
    handle_hash TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,
    owner       TEXT NOT NULL,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX webauthn_challenges_owner ON webauthn_challenges (owner);
CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires_at);
