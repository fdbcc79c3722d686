-- Sign-in throttling (sqlite), replacing login_throttle: an attempt now takes its slot in one
-- atomic statement before the password is checked, so a burst of simultaneous guesses is
-- counted as it arrives (login_throttle was read before the check and written after it,
-- and 40 simultaneous guesses all passed it). Times are Unix milliseconds so the one
-- statement can compute the back-off itself. Owned by src/session/throttle.rs.
-- Keep in step with ../postgres/0280_sign_in_throttle.sql.

DROP TABLE login_throttle;

CREATE TABLE login_attempts (
    throttle_key  TEXT PRIMARY KEY NOT NULL,
    -- attempts counted in the current run: failures, and attempts still being checked
    attempts      BIGINT NOT NULL,
    -- the last counted attempt; a run ends after a quiet window
    last_at       BIGINT NOT NULL,
    -- no attempt is admitted before this (0: none)
    blocked_until BIGINT NOT NULL
);
CREATE INDEX login_attempts_last_at ON login_attempts (last_at);

-- Secrets that every node must share and that are made on first use, such as the key
-- that signs trusted-browser (device) cookies (src/session/device.rs). Low value by
-- design: a device cookie only exempts a browser from other browsers' throttling.
CREATE TABLE server_secrets (
    name   TEXT PRIMARY KEY NOT NULL,
    secret TEXT NOT NULL
);
