//! AuthnRequests parked while the browser goes to sign in, or comes back same-site.
//!
//! An HTTP-POST AuthnRequest arrives as a cross-site POST, which a `SameSite=Lax` session
//! cookie does not accompany. Rather than loosen the cookie, the IdP validates the request,
//! parks it under a random key and redirects the browser to a same-site GET that carries the
//! cookie. The key is stored hashed and expires quickly; taking a request deletes it, so one
//! AuthnRequest yields at most one Response.

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::{Duration, OffsetDateTime};

use super::{fresh_token, token_hash};
use crate::error::{Error, Result};
use crate::store::{Store, timestamp};

/// Something that can be parked. Each kind hashes its keys under its own name, so a key
/// issued for one kind (a sign-in) finds nothing when presented as another (a logout chain).
pub trait Parkable: Serialize + DeserializeOwned {
    /// The kind's name, mixed into the stored key hash.
    const KIND: &'static str;
}

fn kind_hash<T: Parkable>(key: &str) -> String {
    token_hash(&format!("{}:{key}", T::KIND))
}

/// Parked requests in the store.
#[derive(Debug, Clone, Copy)]
pub struct ParkedRequests<'s> {
    store: &'s Store,
}

/// How long a parked request waits for the user (sign-in included).
pub const PARK_TTL: Duration = Duration::minutes(15);

impl<'s> ParkedRequests<'s> {
    /// Parked requests in `store`.
    pub fn new(store: &'s Store) -> Self {
        ParkedRequests { store }
    }

    /// Parks `payload`; returns the key for the continue URL.
    pub async fn park<T: Parkable>(&self, payload: &T, now: OffsetDateTime) -> Result<String> {
        let key = fresh_token();
        let json = serde_json::to_string(payload).map_err(|e| Error::corrupt("parked", e))?;
        // Opportunistic clean-up keeps the table small without a scheduler.
        sqlx::query("DELETE FROM sso_parked_requests WHERE expires_at <= $1")
            .bind(timestamp::format(now))
            .execute(self.store.pool())
            .await?;
        sqlx::query(
            "INSERT INTO sso_parked_requests (key_hash, payload, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(kind_hash::<T>(&key))
        .bind(json)
        .bind(timestamp::format(now))
        .bind(timestamp::format(now + PARK_TTL))
        .execute(self.store.pool())
        .await?;
        Ok(key.to_string())
    }

    /// Parks `payload` under a key the caller already holds (one made by [`super::fresh_token`]
    /// for another kind), so that records of several kinds can hang off one capability: a
    /// single-logout hop's request, what was sent for it, and its outcome. Each kind hashes
    /// the key under its own name, so the records stay apart; parking the same kind twice
    /// under one key fails.
    pub async fn park_under<T: Parkable>(
        &self,
        key: &str,
        payload: &T,
        now: OffsetDateTime,
    ) -> Result<()> {
        let json = serde_json::to_string(payload).map_err(|e| Error::corrupt("parked", e))?;
        sqlx::query(
            "INSERT INTO sso_parked_requests (key_hash, payload, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(kind_hash::<T>(key))
        .bind(json)
        .bind(timestamp::format(now))
        .bind(timestamp::format(now + PARK_TTL))
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// The request parked under `key`, with when it was parked, if not expired. It stays
    /// parked (the user may still have to sign in).
    pub async fn peek<T: Parkable>(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(T, OffsetDateTime)>> {
        if key.is_empty() || key.len() > 128 {
            return Ok(None);
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT payload, created_at FROM sso_parked_requests \
             WHERE key_hash = $1 AND expires_at > $2",
        )
        .bind(kind_hash::<T>(key))
        .bind(timestamp::format(now))
        .fetch_optional(self.store.pool())
        .await?;
        row.map(|(payload, created)| {
            Ok((
                serde_json::from_str(&payload)
                    .map_err(|e| Error::corrupt("sso_parked_requests.payload", e))?,
                timestamp::parse("sso_parked_requests.created_at", &created)?,
            ))
        })
        .transpose()
    }

    /// Removes the request under `key`; returns whether this call removed it, so of two
    /// racing callers exactly one goes on to answer it.
    pub async fn take<T: Parkable>(&self, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sso_parked_requests WHERE key_hash = $1")
            .bind(kind_hash::<T>(key))
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
