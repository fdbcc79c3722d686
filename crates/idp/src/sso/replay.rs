//! Request IDs the IdP has acted on, kept in the store so every node refuses a replay, not
//! just the one that saw the original: LogoutRequests (table `slo_seen_requests`) and
//! AuthnRequests (table `sso_seen_requests`).
//!
//! # Security
//! A front-channel request is a URL or a form that a proxy log, a browser history or a
//! referrer may keep. Its signature stays valid for the profile's time window, so without
//! this record anyone holding it could end the person's sessions again (and start the chain
//! to every application again), or have a sign-in answered again. The record is kept exactly
//! as long as the window: after it, the request is refused as too old anyway.

use time::OffsetDateTime;

use crate::error::Result;
use crate::store::{Store, timestamp};

/// Which kind of request an ID belongs to (each has its own table: IDs are unique only per
/// issuer and per kind of message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A LogoutRequest from an application.
    LogoutRequest,
    /// An AuthnRequest from an application.
    AuthnRequest,
}

impl Seen {
    fn delete_expired(self) -> &'static str {
        match self {
            Seen::LogoutRequest => "DELETE FROM slo_seen_requests WHERE expires_at <= $1",
            Seen::AuthnRequest => "DELETE FROM sso_seen_requests WHERE expires_at <= $1",
        }
    }

    fn insert(self) -> &'static str {
        match self {
            Seen::LogoutRequest => {
                "INSERT INTO slo_seen_requests (issuer, request_id, expires_at) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
            }
            Seen::AuthnRequest => {
                "INSERT INTO sso_seen_requests (issuer, request_id, expires_at) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
            }
        }
    }
}

/// The record of requests already used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeenRequests<'s> {
    store: &'s Store,
}

impl<'s> SeenRequests<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        SeenRequests { store }
    }

    /// Records `issuer`'s request `id` of kind `seen` as used until `until`. Returns `false`
    /// when it was already recorded and has not expired: a replay. Atomic across nodes: of
    /// two racing calls with one ID, the primary key lets exactly one insert win.
    pub(crate) async fn first_use(
        &self,
        seen: Seen,
        issuer: &str,
        id: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        // Expired rows go first, so a record past its window never blocks anything, and the
        // table stays small without a scheduler.
        sqlx::query(seen.delete_expired())
            .bind(timestamp::format(now))
            .execute(self.store.pool())
            .await?;
        let done = sqlx::query(seen.insert())
            .bind(issuer.to_owned())
            .bind(id.to_owned())
            .bind(timestamp::format(until))
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
