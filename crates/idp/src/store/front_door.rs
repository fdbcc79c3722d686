//! The anonymous front door's counts: how many live rows each owner, each IPv6 /48 and all
//! anonymous clients hold in the tables anyone can write to without signing in (a parked
//! SAML request, a passwordless WebAuthn ceremony), kept in step in
//! `front_door_counts_parked` and `front_door_counts_ceremonies` (migration 0660).
//!
//! Each start takes its place under caps counted per owner, per IPv6 /48 and over every
//! anonymous row, in one conditional insert under a lock all starts share, so each count is
//! paid by every start, under the lock, by everyone waiting behind it. None is a count of the
//! table: each is a sum over a few rows kept here by (scope, name, expiry), moved by triggers
//! in the transaction of whatever inserts, deletes or changes a row (a start, a take, expired
//! rows deleted, a cascade, bulk or hand-written SQL), so no write path can leave them behind.
//!
//! A cap counts the live rows only: the sum over its rows whose expiry is after now. An
//! expired row counts for nothing from the instant it expires, whether it is deleted yet or
//! not, so no start has to delete every expired row first (50,000 at once after a flood ran
//! out): each deletes at most [`EXPIRED_PER_START`] of the oldest, which keeps the table from
//! growing while starts come (each adds one row), and the periodic sweep ([`FrontDoor::sweep`],
//! in batches under the same lock) deletes the rest when they do not. Starts write expiries on
//! a [`EXPIRY_GRID_SECONDS`] grid, so what one sum reads is bounded by a lifetime's worth of
//! grid points (91 for a parked request, 31 for a ceremony), however many rows there are;
//! a count's row is deleted when it reaches 0.

use time::OffsetDateTime;

use crate::error::Result;
use crate::store::{Store, WriteTx};

/// A table whose rows are counted for the front door's caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontDoor {
    /// `sso_parked_requests`; anonymous when owned by a network (`addr:`).
    Parked,
    /// `webauthn_challenges`; anonymous without a user.
    Ceremonies,
}

/// What a count covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One owner's rows (a network, or a user), by the row's `owner`.
    Owner,
    /// The rows of one IPv6 /48's owners, by the row's `wide` (the prefix they share).
    Wide,
    /// Every anonymous row (name `''`).
    All,
}

impl Scope {
    /// The scope as the count rows spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Owner => "owner",
            Scope::Wide => "wide",
            Scope::All => "all",
        }
    }
}

/// Starts write their rows' expiries on this grid, rounded down (a row lives its lifetime
/// less under this many seconds), so one name's counts have one row per grid point at most.
pub const EXPIRY_GRID_SECONDS: i64 = 10;

/// The most expired rows one start deletes, under the lock, before its own insert: more than
/// the one row it adds, so while starts come the expired rows go faster than rows come, and
/// few enough that no start pays for a mass expiry.
pub const EXPIRED_PER_START: i64 = 16;

/// Expired rows the sweep deletes per transaction: a start waits for at most one batch.
const SWEEP_BATCH: i64 = 1_000;

impl FrontDoor {
    /// The counted table.
    pub const fn table(self) -> &'static str {
        match self {
            FrontDoor::Parked => "sso_parked_requests",
            FrontDoor::Ceremonies => "webauthn_challenges",
        }
    }

    /// The table of its counts.
    pub const fn counts(self) -> &'static str {
        match self {
            FrontDoor::Parked => "front_door_counts_parked",
            FrontDoor::Ceremonies => "front_door_counts_ceremonies",
        }
    }

    /// The table's key column.
    const fn key(self) -> &'static str {
        match self {
            FrontDoor::Parked => "key_hash",
            FrontDoor::Ceremonies => "handle_hash",
        }
    }

    /// The advisory lock (PostgreSQL) every node's starts into this table share, and the
    /// sweep's batches: an arbitrary constant, "lk-parkd" / "lk-wchal" in ASCII.
    pub(crate) const fn lock(self) -> i64 {
        match self {
            FrontDoor::Parked => 0x6c6b_2d70_6172_6b64,
            FrontDoor::Ceremonies => 0x6c6b_2d77_6368_616c,
        }
    }

    /// The live rows of `scope` named by the placeholder `name` at the placeholder `now` (the
    /// table's own spelling of a time), as a scalar subquery for an admission's condition:
    /// a range of the counts' primary key, at most a lifetime's worth of grid points.
    pub(crate) fn live_sql(self, scope: Scope, name: &str, now: &str) -> String {
        format!(
            "(SELECT CAST(COALESCE(SUM(live), 0) AS BIGINT) FROM {} \
             WHERE scope = '{}' AND name = {name} AND expires_at > {now})",
            self.counts(),
            scope.as_str()
        )
    }

    /// When a row written at `due` (its start's time plus its lifetime) expires: `due`
    /// rounded down to the [`EXPIRY_GRID_SECONDS`] grid.
    pub(crate) fn expiry(due: OffsetDateTime) -> OffsetDateTime {
        let at = due.unix_timestamp();
        OffsetDateTime::from_unix_timestamp(at - at.rem_euclid(EXPIRY_GRID_SECONDS)).unwrap_or(due)
    }

    /// Deletes up to `limit` of the oldest rows expired at `now` (read off the expiry
    /// index); returns how many went.
    pub(crate) async fn delete_expired(
        self,
        tx: &mut WriteTx,
        now: OffsetDateTime,
        limit: i64,
    ) -> Result<u64> {
        let (table, key) = (self.table(), self.key());
        let sql = format!(
            "DELETE FROM {table} WHERE {key} IN \
             (SELECT {key} FROM {table} WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let query = match self {
            FrontDoor::Parked => query.bind(crate::store::timestamp::format(now)),
            FrontDoor::Ceremonies => query.bind(crate::webauthn::challenges::unix_ms(now)),
        };
        Ok(query.bind(limit).execute(&mut **tx).await?.rows_affected())
    }

    /// Deletes every row expired at `now`, in batches of [`SWEEP_BATCH`], each in its own
    /// transaction under the starts' lock, so a start never waits behind more than one batch
    /// (the periodic job of `latchkey serve`); returns how many went.
    pub async fn sweep(self, store: &Store, now: OffsetDateTime) -> Result<u64> {
        let mut gone = 0;
        loop {
            let mut tx = store.begin_serialized(self.lock()).await?;
            let batch = self.delete_expired(&mut tx, now, SWEEP_BATCH).await?;
            crate::store::commit(tx).await?;
            gone += batch;
            if batch < SWEEP_BATCH.unsigned_abs() {
                return Ok(gone);
            }
        }
    }

    /// The live anonymous rows in this table at `now` (for tests and operators; the admission
    /// reads [`Self::live_sql`] in its own statement).
    pub async fn total(self, store: &Store, now: OffsetDateTime) -> Result<i64> {
        self.live(store, Scope::All, "", now).await
    }

    /// The live rows of `scope` named `name` at `now`, as the admission counts them.
    pub async fn live(
        self,
        store: &Store,
        scope: Scope,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<i64> {
        let sql = format!("SELECT {}", self.live_sql(scope, "$1", "$2"));
        let query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(name.to_owned());
        let query = match self {
            FrontDoor::Parked => query.bind(crate::store::timestamp::format(now)),
            FrontDoor::Ceremonies => query.bind(crate::webauthn::challenges::unix_ms(now)),
        };
        Ok(query.fetch_one(store.pool()).await?)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::FrontDoor;

    #[test]
    fn expiries_fall_on_the_grid_at_or_before_their_due_time() {
        assert_eq!(
            FrontDoor::expiry(datetime!(2026-12-07 07:15:09.999 UTC)),
            datetime!(2026-12-07 07:15:00 UTC)
        );
        assert_eq!(
            FrontDoor::expiry(datetime!(2026-12-07 07:15:10 UTC)),
            datetime!(2026-12-07 07:15:10 UTC)
        );
    }
}
