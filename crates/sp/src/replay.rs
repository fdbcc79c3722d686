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

    /// Deletes expired entries; returns how many. [`ReplayCache::check_and_store`] already
    /// prunes, this is for a periodic job on quiet nodes.
    pub async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sp_replay_cache WHERE not_on_or_after <= $1")
            .bind(crate::store::millis(now))
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
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
    /// Prunes, then inserts; the primary key makes the insert the atomic test: a conflict is a
    /// replay. Pruning first means an ID whose entry expired is accepted again, exactly as the
    /// in-memory cache does.
    async fn check_and_store(
        &self,
        assertion_id: &str,
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        if not_on_or_after <= now {
            return Err(ReplayError::Expired(assertion_id.to_owned()).into());
        }
        self.prune(now).await?;
        let done = sqlx::query(
            "INSERT INTO sp_replay_cache (assertion_id, not_on_or_after) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(assertion_id.to_owned())
        .bind(crate::store::millis(not_on_or_after))
        .execute(self.db.pool())
        .await
        .map_err(StoreError::from)?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(ReplayError::Replayed(assertion_id.to_owned()).into())
        }
    }
}
