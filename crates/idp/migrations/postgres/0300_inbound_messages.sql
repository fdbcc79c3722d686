-- Inbound-message security (postgres). Keep in step with ../sqlite/0300_inbound_messages.sql.
--
-- allow_unsigned_logout: the documented legacy opt-in under which an application's
-- unsigned LogoutRequests and LogoutResponses are believed (an unsigned request then ends
-- at most the browser's own session). 0 for every row: logout messages must be signed.
--
-- authn_requests_signed: whether the application signs its AuthnRequests (metadata's
-- AuthnRequestsSigned). Signing certificates are now registered whatever that flag says,
-- because logout messages are checked with them; a registered certificate makes
-- AuthnRequests mandatory-signed only when this is 1. 1 for every existing row, which is
-- what a registered certificate meant before this column.
ALTER TABLE applications ADD COLUMN allow_unsigned_logout BIGINT NOT NULL DEFAULT 0;
ALTER TABLE applications ADD COLUMN authn_requests_signed BIGINT NOT NULL DEFAULT 1;

-- AuthnRequests the IdP has answered, so a captured one is single-use within its validity
-- window on every node, as LogoutRequests are (slo_seen_requests). Keyed by issuer and ID,
-- kept until the request would be refused as too old anyway. Owned by src/sso/replay.rs.
CREATE TABLE sso_seen_requests (
    issuer     TEXT NOT NULL,
    request_id TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (issuer, request_id)
);
CREATE INDEX sso_seen_requests_expires ON sso_seen_requests (expires_at);
