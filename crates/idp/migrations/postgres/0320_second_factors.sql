-- Second factors (postgres). Owned by src/mfa/. Keep in step with ../sqlite/0320_second_factors.sql.

-- What a session's authentication used, as a comma-separated list of method names
-- (password, totp, recovery_code; WebAuthn adds passkey, security_key): the assertion's
-- AuthnContextClassRef and the MFA policy are decided from it. A step-up adds a method and
-- moves authn_at (the AuthnInstant) in place, so the session and its SessionIndex stay.
ALTER TABLE web_sessions ADD COLUMN authn_methods TEXT NOT NULL DEFAULT 'password';

-- TOTP factors (RFC 6238). The secret is sealed with AES-256-GCM under the key-encryption
-- key (src/keys/kek.rs), with the row's id and user in the AAD so a sealed secret copied to
-- another row does not open; sealed_with names the KEK. A factor counts only once
-- confirmed with a valid code. last_step is the last accepted 30-second step, moved only
-- forwards by one conditional UPDATE, so a code is accepted once.
CREATE TABLE mfa_totp (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    sealed_with   TEXT NOT NULL,
    confirmed     BIGINT NOT NULL,
    last_step     BIGINT NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
);
CREATE INDEX mfa_totp_user ON mfa_totp (user_id);

-- Recovery codes: only a SHA-256 of each (they are 80 random bits, so no slow hash is
-- needed); a use deletes the row it matched, in one statement.
CREATE TABLE mfa_recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- MFA policy beside the objects it is about, so the directory and registry rows are
-- unchanged: an application that requires a second factor (and the multi-factor class its
-- assertions state: refeds or mobile_two_factor), a group whose members need one, a user
-- an admin required to have one.
CREATE TABLE mfa_app_policy (
    app_id      TEXT PRIMARY KEY NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    require_mfa BIGINT NOT NULL,
    mfa_class   TEXT NOT NULL
);
CREATE TABLE mfa_group_policy (
    group_id    TEXT PRIMARY KEY NOT NULL REFERENCES directory_groups (id) ON DELETE CASCADE,
    require_mfa BIGINT NOT NULL
);
CREATE TABLE mfa_user_policy (
    user_id     TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    require_mfa BIGINT NOT NULL
);
