//! LogoutRequest IDs the IdP has acted on, kept in the store (table `slo_seen_requests`) so
//! every node refuses a replay, not just the one that saw the original.
//!
//! # Security
//! A front-channel LogoutRequest is a URL or a form that a proxy log, a browser history or a
//! referrer may keep. Its signature stays valid for the profile's time window, so without
//! this record anyone holding it could end the person's sessions again (and start the chain
//! to every application again). The record is kept exactly as long as the window: after it,
//! the profile refuses the request as too old anyway.

use time::OffsetDateTime;

use crate::error::Result;
use crate::store::{Store, timestamp};

/// The record of LogoutRequests already used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeenLogoutRequests<'s> {
    store: &'s Store,
}

impl<'s> SeenLogoutRequests<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        SeenLogoutRequests { store }
    }

    /// Records `issuer`'s request `id` as used until `until`. Returns `false` when it was
    /// already recorded and has not expired: a replay. Atomic across nodes: of two racing
    /// calls with one ID, the primary key lets exactly one insert win.
    pub(crate) async fn first_use(
        &self,
        issuer: &str,
        id: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        // Expired rows go first, so a record past its window never blocks anything, and the
        // table stays small without a scheduler.
        sqlx::query("DELETE FROM slo_seen_requests WHERE expires_at <= $1")
            .bind(timestamp::format(now))
            .execute(self.store.pool())
            .await?;
        let done = sqlx::query(
            "INSERT INTO slo_seen_requests (issuer, request_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(issuer.to_owned())
        .bind(id.to_owned())
        .bind(timestamp::format(until))
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
