-- LogoutRequests the IdP has acted on (sqlite), so a captured one cannot be replayed: the
-- front-channel request travels in a URL or form that a proxy log or browser history may
-- keep. Keyed by issuer and ID (IDs are unique only per issuer), kept until the Single
-- Logout profile's time window would refuse the request anyway. Shared by every IdP node
-- through the store. Owned by src/web/logout/replay.rs.

CREATE TABLE slo_seen_requests (
    issuer     TEXT NOT NULL,
    request_id TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (issuer, request_id)
);
CREATE INDEX slo_seen_requests_expires ON slo_seen_requests (expires_at);
