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
//!
//! Recording a request is one statement on the sign-in path: a row past its window is
//! replaced in place by the same upsert that refuses a live one, so expired rows never block
//! anything and the table is swept by the server's janitor ([`purge_seen_requests`]), not by
//! every request.

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
    const ALL: [Seen; 2] = [Seen::LogoutRequest, Seen::AuthnRequest];

    fn delete_expired(self) -> &'static str {
        match self {
            Seen::LogoutRequest => "DELETE FROM slo_seen_requests WHERE expires_at <= $1",
            Seen::AuthnRequest => "DELETE FROM sso_seen_requests WHERE expires_at <= $1",
        }
    }

    /// Inserts the ID, or takes over a row whose window has passed; a live row is left
    /// alone, so the statement changes no row exactly when the request is a replay.
    fn record(self) -> &'static str {
        match self {
            Seen::LogoutRequest => {
                "INSERT INTO slo_seen_requests (issuer, request_id, expires_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (issuer, request_id) DO UPDATE \
                 SET expires_at = excluded.expires_at \
                 WHERE slo_seen_requests.expires_at <= $4"
            }
            Seen::AuthnRequest => {
                "INSERT INTO sso_seen_requests (issuer, request_id, expires_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (issuer, request_id) DO UPDATE \
                 SET expires_at = excluded.expires_at \
                 WHERE sso_seen_requests.expires_at <= $4"
            }
        }
    }
}

/// Deletes the records whose window has passed, for the server's periodic janitor. The
/// sign-in path does not need it (an expired row is taken over in place); it only keeps the
/// tables from holding every request ever seen.
pub async fn purge_seen_requests(store: &Store, now: OffsetDateTime) -> Result<u64> {
    let mut purged = 0;
    for seen in Seen::ALL {
        purged += sqlx::query(seen.delete_expired())
            .bind(timestamp::format(now))
            .execute(store.pool())
            .await?
            .rows_affected();
    }
    Ok(purged)
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
        let done = sqlx::query(seen.record())
            .bind(issuer.to_owned())
            .bind(id.to_owned())
            .bind(timestamp::format(until))
            .bind(timestamp::format(now))
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::config::PasswordConfig;

    async fn store(dir: &std::path::Path) -> Store {
        let url = crate::config::sqlite_url(&dir.join("latchkey.db"));
        Store::open_url(&url, 2, PasswordConfig::default())
            .await
            .unwrap()
            .with_clock(crate::ManualClock::new(datetime!(2026-05-01 08:00 UTC)))
    }

    #[tokio::test]
    async fn a_live_record_refuses_and_an_expired_one_is_taken_over_then_purged() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let seen = SeenRequests::new(&store);
        let t0 = datetime!(2026-05-01 08:00 UTC);
        let until = t0 + Duration::minutes(5);
        let use_at = |now| seen.first_use(Seen::AuthnRequest, "sp", "_id1", until, now);

        assert!(use_at(t0).await.unwrap(), "first use");
        assert!(
            !use_at(t0 + Duration::minutes(1)).await.unwrap(),
            "replay in window"
        );
        // Another kind of message and another issuer have IDs of their own.
        assert!(
            seen.first_use(Seen::LogoutRequest, "sp", "_id1", until, t0)
                .await
                .unwrap()
        );
        assert!(
            seen.first_use(Seen::AuthnRequest, "sp2", "_id1", until, t0)
                .await
                .unwrap()
        );

        // Past the window the row no longer blocks, without any sweep having run...
        let later = until + Duration::seconds(1);
        let until2 = later + Duration::minutes(5);
        assert!(
            seen.first_use(Seen::AuthnRequest, "sp", "_id1", until2, later)
                .await
                .unwrap()
        );
        // ...and the taken-over row is live again for its new window.
        assert!(
            !seen
                .first_use(Seen::AuthnRequest, "sp", "_id1", until2, later)
                .await
                .unwrap()
        );

        // The janitor removes exactly the rows past their window: the two other t0 rows.
        assert_eq!(purge_seen_requests(&store, later).await.unwrap(), 2);
        assert_eq!(purge_seen_requests(&store, later).await.unwrap(), 0);
        assert!(
            !seen
                .first_use(Seen::AuthnRequest, "sp", "_id1", until2, later)
                .await
                .unwrap()
        );
    }
}
