-- Outstanding SP-initiated logins, keyed by the opaque RelayState sent with the AuthnRequest,
-- so that any app node (or the same node after a restart) can match the IdP's answer.
CREATE TABLE sp_pending_requests (
    relay_state TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    return_to TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sp_pending_requests_expiry ON sp_pending_requests (expires_at);
