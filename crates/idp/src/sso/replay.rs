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
//! Recording a request is one statement: a row past its window is replaced in place by the
//! same upsert that refuses a live one, so expired rows never block anything and the table
//! is swept by the server's janitor ([`purge_seen_requests`]), not by every request.
//!
//! An AuthnRequest answered at once (a live session, or a refusal) is recorded in the
//! transaction that stores its answer's audit line: validation hands back a [`Claim`], and
//! the audit writer's group commit ([`crate::audit::AuditBatcher::record_claiming`]) takes
//! the claims of a whole batch in one multi-row upsert, answering each request whether its
//! ID was still free. No Response leaves before that commit, and of two requests with one
//! ID exactly one is answered, on any node. A request that waits for a sign-in is recorded
//! on its own before it is parked ([`SeenRequests::claim`]).

use std::collections::HashMap;

use sqlx::AnyConnection;
use time::OffsetDateTime;

use crate::error::Result;
use crate::store::{Store, timestamp};

/// Which kind of request an ID belongs to (each has its own table: IDs are unique only per
/// issuer and per kind of message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Seen {
    /// A LogoutRequest from an application.
    LogoutRequest,
    /// An AuthnRequest from an application.
    AuthnRequest,
}

impl Seen {
    const ALL: [Seen; 2] = [Seen::LogoutRequest, Seen::AuthnRequest];

    fn table(self) -> &'static str {
        match self {
            Seen::LogoutRequest => "slo_seen_requests",
            Seen::AuthnRequest => "sso_seen_requests",
        }
    }

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

/// A request ID to record as used before the request is answered: what
/// [`crate::sso::request::validate`] hands back instead of recording it itself, so that the
/// record can share the answer's write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    seen: Seen,
    issuer: String,
    id: String,
    until: OffsetDateTime,
}

impl Claim {
    /// `issuer`'s AuthnRequest `id`, used until `until` (the end of its IssueInstant window).
    pub fn authn_request(issuer: &str, id: &str, until: OffsetDateTime) -> Self {
        Claim {
            seen: Seen::AuthnRequest,
            issuer: issuer.to_owned(),
            id: id.to_owned(),
            until,
        }
    }

    /// The request's ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The error a request gets when its claim finds the ID used.
    pub fn replayed(&self) -> super::SsoError {
        super::SsoError::Replayed(self.id.chars().take(200).collect())
    }

    fn key(&self) -> (Seen, &str, &str) {
        (self.seen, &self.issuer, &self.id)
    }
}

/// Most claims in one statement (4 parameters each, and one for the time).
const MAX_CLAIMS_PER_STATEMENT: usize = 256;

/// Records `claims` as used on `conn` (a transaction the caller commits): one multi-row
/// upsert per kind of request and [`MAX_CLAIMS_PER_STATEMENT`]. Answers, claim by claim,
/// whether its ID was free (recorded now) or live already (a replay; nothing changed).
/// A claim repeating an earlier one of the same call is a replay of it; one whose window
/// has passed at `now` is refused.
pub(crate) async fn claim_all(
    conn: &mut AnyConnection,
    claims: &[&Claim],
    now: OffsetDateTime,
) -> Result<Vec<bool>> {
    let mut won = vec![false; claims.len()];
    // The first of each key goes to the database; a repeat in the batch lost to it.
    // A claim whose window has passed by now loses outright: its record would already be
    // expired, and could be taken over again by the next one (its request is stale).
    let mut first: HashMap<(Seen, &str, &str), usize> = HashMap::new();
    for (i, c) in claims.iter().enumerate() {
        if c.until > now {
            first.entry(c.key()).or_insert(i);
        }
    }
    let now = timestamp::format(now);
    for seen in Seen::ALL {
        let mut mine: Vec<usize> = (0..claims.len())
            .filter(|&i| claims[i].seen == seen && first.get(&claims[i].key()) == Some(&i))
            .collect();
        // In key order, so that two nodes' batches sharing IDs lock their rows in the same
        // order (PostgreSQL): one waits for the other, neither deadlocks.
        mine.sort_by_key(|&i| claims[i].key());
        for chunk in mine.chunks(MAX_CLAIMS_PER_STATEMENT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|k| format!("(${}, ${}, ${})", 3 * k + 1, 3 * k + 2, 3 * k + 3))
                .collect();
            // The time last, so that placeholders appear in the order they are bound.
            let at = 3 * chunk.len() + 1;
            let table = seen.table();
            // Only the table name (a constant) and placeholders are formatted in.
            let sql = sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (issuer, request_id, expires_at) VALUES {} \
                 ON CONFLICT (issuer, request_id) DO UPDATE \
                 SET expires_at = excluded.expires_at WHERE {table}.expires_at <= ${at} \
                 RETURNING issuer, request_id",
                rows.join(", ")
            ));
            let mut query = sqlx::query_as::<_, (String, String)>(sql);
            for &i in chunk {
                let c = claims[i];
                query = query
                    .bind(c.issuer.as_str())
                    .bind(c.id.as_str())
                    .bind(timestamp::format(c.until));
            }
            query = query.bind(now.as_str());
            // Rows come back for exactly the claims that inserted or took over an expired
            // row; a live row is left alone and not returned.
            for (issuer, id) in query.fetch_all(&mut *conn).await? {
                if let Some(&i) = first.get(&(seen, issuer.as_str(), id.as_str())) {
                    won[i] = true;
                }
            }
        }
    }
    Ok(won)
}

/// The record of requests already used.
#[derive(Debug, Clone, Copy)]
pub struct SeenRequests<'s> {
    store: &'s Store,
}

impl<'s> SeenRequests<'s> {
    /// The record in `store`.
    pub fn new(store: &'s Store) -> Self {
        SeenRequests { store }
    }

    /// Records `claim` on its own (a write of its own, committed when this returns).
    /// Returns `false` for a replay, as [`Self::first_use`].
    pub async fn claim(&self, claim: &Claim, now: OffsetDateTime) -> Result<bool> {
        self.first_use(claim.seen, &claim.issuer, &claim.id, claim.until, now)
            .await
    }

    /// Records `issuer`'s request `id` of kind `seen` as used until `until`. Returns `false`
    /// when it was already recorded and has not expired: a replay. Atomic across nodes: of
    /// two racing calls with one ID, the primary key lets exactly one insert win.
    ///
    /// A record whose window has ended by `now` is refused, as in [`claim_all`]: written, it
    /// would already be expired, so a replay at that same instant (the last one a profile
    /// window that includes its end still accepts) would take it over and be used again.
    pub(crate) async fn first_use(
        &self,
        seen: Seen,
        issuer: &str,
        id: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        if until <= now {
            return Ok(false);
        }
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

        // A record whose window ends now is refused outright: written, it would already be
        // expired, and the next use at this instant would take it over again.
        let end = until2;
        assert!(
            !seen
                .first_use(Seen::LogoutRequest, "sp", "_id2", end, end)
                .await
                .unwrap()
        );
        assert!(
            !seen
                .first_use(Seen::LogoutRequest, "sp", "_id2", end, end)
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
