//! The assertion replay cache.
//!
//! An assertion must be accepted at most once while it is valid; afterwards the SAML layer
//! refuses it by its NotOnOrAfter anyway, so the entry can go. An assertion is known by its ID
//! and its IssueInstant, both under the IdP's signature: a second use carries both unchanged.
//! [`SqlReplayCache`] keys its entries by the instant first, so that they are inserted in
//! about the order they are issued, at the end of its b-tree; [`MemoryReplayCache`] refuses
//! a second use of an ID whatever its instant. [`SqlReplayCache`] lets several app nodes
//! share the cache; [`MemoryReplayCache`] serves a single node.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::error::{Error, ReplayError, StoreError};
use crate::store::Database;

/// Remembers accepted assertions until they expire.
pub trait ReplayCache: Send + Sync {
    /// Records the assertion `assertion_id` issued at `issued_at` (its IssueInstant) as used
    /// until `not_on_or_after`, or refuses it.
    ///
    /// Atomic: of two concurrent calls with one ID and instant, exactly one succeeds. Fails
    /// with [`ReplayError::Replayed`] when the assertion is already recorded and unexpired
    /// (a cache may also refuse the ID issued at another instant), and with
    /// [`ReplayError::Expired`] when `not_on_or_after` is not after `now`.
    fn check_and_store(
        &self,
        assertion_id: &str,
        issued_at: OffsetDateTime,
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The SP database holding the entries, for a cache kept there ([`SqlReplayCache`]). When
    /// the JIT engine's store is on the same database, [`crate::acs::run`] records the
    /// assertion inside the login's own transaction instead of calling
    /// [`ReplayCache::check_and_store`]: one commit per login, and the assertion is used up
    /// exactly when the login's effects are committed.
    fn database(&self) -> Option<&Database> {
        None
    }
}

/// An in-process replay cache with a bound on its size, keyed by the ID alone.
///
/// # Security
/// When full of unexpired entries it refuses new assertions ([`ReplayError::Full`]) rather than
/// evicting: evicting an unexpired ID would let that assertion be replayed.
#[derive(Debug)]
pub struct MemoryReplayCache {
    entries: Mutex<HashMap<String, OffsetDateTime>>,
    capacity: usize,
}

impl MemoryReplayCache {
    /// A cache holding at most `capacity` unexpired IDs.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// How many IDs are held (expired ones included until the next prune).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no ID is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, OffsetDateTime>> {
        // A panic while holding the lock cannot leave the map half-updated (each operation is
        // a single insert or retain), so a poisoned lock is still safe to use.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_and_store_now(
        &self,
        assertion_id: &str,
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), ReplayError> {
        if not_on_or_after <= now {
            return Err(ReplayError::Expired(assertion_id.to_owned()));
        }
        let mut entries = self.lock();
        if entries
            .get(assertion_id)
            .is_some_and(|expiry| *expiry > now)
        {
            return Err(ReplayError::Replayed(assertion_id.to_owned()));
        }
        if entries.len() >= self.capacity && !entries.contains_key(assertion_id) {
            entries.retain(|_, expiry| *expiry > now);
            if entries.len() >= self.capacity {
                return Err(ReplayError::Full(entries.len()));
            }
        }
        entries.insert(assertion_id.to_owned(), not_on_or_after);
        Ok(())
    }
}

impl ReplayCache for MemoryReplayCache {
    async fn check_and_store(
        &self,
        assertion_id: &str,
        _issued_at: OffsetDateTime,
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        Ok(self.check_and_store_now(assertion_id, not_on_or_after, now)?)
    }
}

/// A replay cache in the SP database, shared by every node using it.
#[derive(Debug, Clone)]
pub struct SqlReplayCache {
    db: Database,
}

impl SqlReplayCache {
    /// A cache in `db` (table `sp_replay_cache`).
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Deletes expired entries; returns how many. Recording IDs already prunes about once a
    /// minute; this is for a periodic job on quiet nodes.
    pub async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.db.prune_replay_cache(now).await
    }

    /// How many entries are stored, expired or not.
    pub async fn count_entries(&self) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sp_replay_cache")
            .fetch_one(self.db.pool())
            .await?;
        Ok(count)
    }
}

impl ReplayCache for SqlReplayCache {
    /// One statement: the primary key makes the insert the atomic test, and an entry that
    /// has expired is overwritten, so an ID whose entry expired is accepted again exactly as
    /// the in-memory cache does. Expired entries are deleted about once a minute.
    async fn check_and_store(
        &self,
        assertion_id: &str,
        issued_at: OffsetDateTime,
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        if not_on_or_after <= now {
            return Err(ReplayError::Expired(assertion_id.to_owned()).into());
        }
        self.db.prune_replay_cache_if_due(now).await?;
        if legacy_entry_holds(&self.db, assertion_id, now).await? {
            return Err(ReplayError::Replayed(assertion_id.to_owned()).into());
        }
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        if record(&mut conn, assertion_id, issued_at, not_on_or_after, now).await? {
            Ok(())
        } else {
            Err(ReplayError::Replayed(assertion_id.to_owned()).into())
        }
    }

    fn database(&self) -> Option<&Database> {
        Some(&self.db)
    }
}

/// Records the assertion `$2` issued at `$1` until `$3`, unless an entry unexpired at `$4`
/// holds it: the primary key makes the insert the atomic test, and only an expired entry is
/// overwritten.
pub(crate) const RECORD_ASSERTION: &str = "INSERT INTO sp_replay_cache (issued_at, \
    assertion_id, not_on_or_after) VALUES ($1, $2, $3) ON CONFLICT (issued_at, assertion_id) \
    DO UPDATE SET not_on_or_after = excluded.not_on_or_after \
    WHERE sp_replay_cache.not_on_or_after <= $4";

/// The last instant (Unix ms) at which an entry recorded before the cache was keyed by the
/// IssueInstant too (`issued_at` 0, migration `20261207000200_replay_by_issue`) is unexpired;
/// `i64::MIN` when there is none. Read once when the database is opened: no such entry is
/// written after that migration (a node of an earlier version cannot write to the new table),
/// so the instant only ever comes closer.
pub(crate) async fn legacy_entries_until(pool: &sqlx::AnyPool) -> Result<i64, StoreError> {
    let until: Option<i64> =
        sqlx::query_scalar("SELECT MAX(not_on_or_after) FROM sp_replay_cache WHERE issued_at = 0")
            .fetch_one(pool)
            .await?;
    Ok(until.unwrap_or(i64::MIN))
}

/// Whether an entry recorded before the cache was keyed by the IssueInstant holds
/// `assertion_id` unexpired at `now`: such an entry has no instant to match, so it refuses
/// its ID whatever instant a later use says. Asked before the login's transaction, on any
/// connection: such entries are only ever deleted, never written, so one found now still
/// holds at the commit, and one not found cannot appear. Past the last such entry's expiry
/// (minutes after the upgrade) no statement runs.
pub(crate) async fn legacy_entry_holds(
    db: &Database,
    assertion_id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let now_ms = crate::store::millis(now);
    if now_ms >= db.legacy_replay_entries_until() {
        return Ok(false);
    }
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sp_replay_cache WHERE issued_at = 0 AND assertion_id = $1 \
         AND not_on_or_after > $2",
    )
    .bind(assertion_id.to_owned())
    .bind(now_ms)
    .fetch_optional(db.pool())
    .await?;
    Ok(held.is_some())
}

/// Records `assertion_id` in `sp_replay_cache` on `conn` (inside whatever transaction it is
/// in); `false` when an unexpired entry already holds it (a replay).
///
/// Of two concurrent calls with one ID, the unique key lets exactly one insert; the other
/// waits for it (PostgreSQL) or for the write lock (SQLite) and then sees it.
pub(crate) async fn record(
    conn: &mut sqlx::AnyConnection,
    assertion_id: &str,
    issued_at: OffsetDateTime,
    not_on_or_after: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(RECORD_ASSERTION)
        .bind(crate::store::millis(issued_at))
        .bind(assertion_id.to_owned())
        .bind(crate::store::millis(not_on_or_after))
        .bind(crate::store::millis(now))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
