//! Failed sign-in throttling, per account and per client address, kept in the store so
//! every node counts the same failures.
//!
//! A few failures are free; after that each further failure doubles a lock-out (capped), and
//! a quiet window resets the count. Accounts are keyed by the name as typed (case-folded), so
//! names that do not exist are throttled exactly like names that do and the throttle cannot
//! be used to find out which exist. A success clears the account's counter only: the
//! address's counter keeps counting a spray over many accounts.

use time::{Duration, OffsetDateTime};

use crate::error::Result;
use crate::store::{self, Store, timestamp};

/// When to start refusing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed before any lock-out.
    pub free_failures: i64,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// The longest lock-out.
    pub max_lock: Duration,
}

impl ThrottlePolicy {
    /// For one account: 5 free failures.
    pub const ACCOUNT: ThrottlePolicy = ThrottlePolicy {
        free_failures: 5,
        window: Duration::minutes(15),
        max_lock: Duration::minutes(15),
    };
    /// For one client address: 20 free failures (several people may share a NAT).
    pub const ADDRESS: ThrottlePolicy = ThrottlePolicy {
        free_failures: 20,
        window: Duration::minutes(15),
        max_lock: Duration::minutes(15),
    };

    /// The lock-out after `failures` failures in the window.
    fn lock_for(&self, failures: i64) -> Option<Duration> {
        let over = failures - self.free_failures;
        if over < 0 {
            return None;
        }
        let seconds = 1i64.checked_shl(u32::try_from(over.min(20)).unwrap_or(20));
        Some(
            seconds
                .map(Duration::seconds)
                .unwrap_or(self.max_lock)
                .min(self.max_lock),
        )
    }
}

/// The throttle table.
#[derive(Debug, Clone, Copy)]
pub struct Throttle<'s> {
    store: &'s Store,
}

/// The key for an account name as typed.
pub fn account_key(name: &str) -> String {
    format!("account:{}", store::fold(name.trim()))
}

/// The key for a client address.
pub fn address_key(addr: &str) -> String {
    format!("addr:{addr}")
}

impl<'s> Throttle<'s> {
    /// The throttle in `store`.
    pub fn new(store: &'s Store) -> Self {
        Throttle { store }
    }

    /// The latest lock-out among `keys` still in force at `now`, if any.
    pub async fn locked_until(
        &self,
        keys: &[String],
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>> {
        let mut latest: Option<OffsetDateTime> = None;
        for key in keys {
            let until: Option<Option<String>> = sqlx::query_scalar(
                "SELECT locked_until FROM login_throttle WHERE throttle_key = $1",
            )
            .bind(key)
            .fetch_optional(self.store.pool())
            .await?;
            if let Some(Some(text)) = until {
                let t = timestamp::parse("login_throttle.locked_until", &text)?;
                if t > now && latest.is_none_or(|l| t > l) {
                    latest = Some(t);
                }
            }
        }
        Ok(latest)
    }

    /// Counts a failure against `key`.
    pub async fn failure(
        &self,
        key: &str,
        policy: ThrottlePolicy,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT failures, first_at FROM login_throttle WHERE throttle_key = $1")
                .bind(key)
                .fetch_optional(&mut *conn)
                .await?;
        let (failures, first_at) = match row {
            Some((n, first)) => {
                let first = timestamp::parse("login_throttle.first_at", &first)?;
                if now - first > policy.window {
                    (1, now)
                } else {
                    (n.saturating_add(1), first)
                }
            }
            None => (1, now),
        };
        let locked = policy
            .lock_for(failures)
            .map(|d| timestamp::format(now + d));
        sqlx::query(
            "INSERT INTO login_throttle (throttle_key, failures, first_at, locked_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (throttle_key) DO UPDATE SET \
             failures = excluded.failures, first_at = excluded.first_at, \
             locked_until = excluded.locked_until",
        )
        .bind(key)
        .bind(failures)
        .bind(timestamp::format(first_at))
        .bind(locked)
        .execute(&mut *conn)
        .await?;
        store::commit(tx).await
    }

    /// Forgets the failures counted against `key`.
    pub async fn clear(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
            .bind(key)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_doubles_after_the_free_failures_and_is_capped() {
        let p = ThrottlePolicy::ACCOUNT;
        assert_eq!(p.lock_for(4), None);
        assert_eq!(p.lock_for(5), Some(Duration::seconds(1)));
        assert_eq!(p.lock_for(6), Some(Duration::seconds(2)));
        assert_eq!(p.lock_for(9), Some(Duration::seconds(16)));
        assert_eq!(p.lock_for(100), Some(Duration::minutes(15)));
        assert_eq!(p.lock_for(i64::MAX), Some(Duration::minutes(15)));
    }

    #[test]
    fn keys_fold_case() {
        assert_eq!(account_key(" Alice "), "account:alice");
        assert_eq!(address_key("10.0.0.1"), "addr:10.0.0.1");
    }
}
