//! The anonymous front door's totals: how many rows anonymous clients hold in each table
//! anyone can write to without signing in (a parked SAML request, a passwordless WebAuthn
//! ceremony), kept in step in `front_door_counts` (migration 0655).
//!
//! Each anonymous start takes its place under caps counted per owner, per IPv6 /48 and over
//! every anonymous row, in one conditional insert under a lock all starts share. The first
//! two are index ranges bounded by their caps; the last was a count of the whole range
//! (8-11 ms at 50,000 rows on PostgreSQL, 80 ms under churn), which a flood from a few dozen
//! /48s made every legitimate start pay under the lock. It is now one row read by its key,
//! moved by triggers in the same transaction as whatever inserts, deletes or changes a row
//! (the start itself, a take, the expired rows each start deletes first, a cascade, bulk or
//! hand-written SQL), so no write path can leave it behind. A row counts until it is
//! deleted, expired or not: each start deletes the expired rows first, under the same lock,
//! so at the check the total is the live one.

use crate::error::Result;
use crate::store::Store;

/// A table whose anonymous rows are counted in `front_door_counts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontDoor {
    /// `sso_parked_requests` owned by a network (`addr:`).
    Parked,
    /// `webauthn_challenges` without a user.
    Ceremonies,
}

impl FrontDoor {
    /// The total as a scalar subquery, for the admission's condition: one row by its key,
    /// whatever the table holds.
    pub(crate) const fn total_sql(self) -> &'static str {
        match self {
            FrontDoor::Parked => {
                "(SELECT live FROM front_door_counts WHERE counted = 'sso_parked_requests')"
            }
            FrontDoor::Ceremonies => {
                "(SELECT live FROM front_door_counts WHERE counted = 'webauthn_challenges')"
            }
        }
    }

    /// The anonymous rows `store` holds in this table, expired ones not yet deleted
    /// included (for tests and operators; the admission reads [`Self::total_sql`] in its
    /// own statement).
    pub async fn total(self, store: &Store) -> Result<i64> {
        let sql = format!("SELECT {}", self.total_sql());
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(store.pool())
            .await?)
    }
}
