-- Invitation and password-reset links (src/enrollment/). Only the SHA-256 hex digest of a
-- link's token is stored: a copy of the database lets nobody set a password. A link is
-- used by one UPDATE that sets used_at only while it is NULL and the link unexpired, so two
-- simultaneous redemptions cannot both succeed. Issuing a link marks the user's older
-- unused links of the same kind used (superseded_by names the newer one).
CREATE TABLE enrollment_links (
    token_hash    TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT,
    superseded_by TEXT
);
CREATE INDEX enrollment_links_user ON enrollment_links (user_id, kind);
CREATE INDEX enrollment_links_expires ON enrollment_links (expires_at);
