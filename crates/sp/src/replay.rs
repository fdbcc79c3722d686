//! The assertion replay cache.
//!
//! An assertion ID must be accepted at most once while the assertion is valid; afterwards the
//! SAML layer refuses it by its NotOnOrAfter anyway, so the entry can go. [`SqlReplayCache`]
//! lets several app nodes share the cache; [`MemoryReplayCache`] serves a single node.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::error::{Error, ReplayError, StoreError};
use crate::store::Database;

/// Remembers accepted assertion IDs until they expire.
pub trait ReplayCache: Send + Sync {
    /// Records `assertion_id` as used until `not_on_or_after`, or refuses it.
    ///
    /// Atomic: of two concurrent calls with one ID, exactly one succeeds. Fails with
    /// [`ReplayError::Replayed`] when the ID is already recorded and unexpired, and with
    /// [`ReplayError::Expired`] when `not_on_or_after` is not after `now`.
    fn check_and_store(
        &self,
        assertion_id: &str,
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

/// An in-process replay cache with a bound on its size.
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
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        if not_on_or_after <= now {
            return Err(ReplayError::Expired(assertion_id.to_owned()).into());
        }
        self.db.prune_replay_cache_if_due(now).await?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        if record(&mut conn, assertion_id, not_on_or_after, now).await? {
            Ok(())
        } else {
            Err(ReplayError::Replayed(assertion_id.to_owned()).into())
        }
    }

    fn database(&self) -> Option<&Database> {
        Some(&self.db)
    }
}

/// Records an assertion ID (`$1`) until `$2`, unless an entry unexpired at `$3` holds it: the
/// primary key makes the insert the atomic test, and only an expired entry is overwritten.
pub(crate) const RECORD_ASSERTION: &str = "INSERT INTO sp_replay_cache (assertion_id, \
    not_on_or_after) VALUES ($1, $2) ON CONFLICT (assertion_id) DO UPDATE SET \
    not_on_or_after = excluded.not_on_or_after WHERE sp_replay_cache.not_on_or_after <= $3";

/// Records `assertion_id` in `sp_replay_cache` on `conn` (inside whatever transaction it is
/// in); `false` when an unexpired entry already holds it (a replay).
///
/// Of two concurrent calls with one ID, the unique key lets exactly one insert; the other
/// waits for it (PostgreSQL) or for the write lock (SQLite) and then sees it.
pub(crate) async fn record(
    conn: &mut sqlx::AnyConnection,
    assertion_id: &str,
    not_on_or_after: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(RECORD_ASSERTION)
        .bind(assertion_id.to_owned())
        .bind(crate::store::millis(not_on_or_after))
        .bind(crate::store::millis(now))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
