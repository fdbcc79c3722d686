//! AuthnRequests parked while the browser goes to sign in, or comes back same-site.
//!
//! An HTTP-POST AuthnRequest arrives as a cross-site POST, which a `SameSite=Lax` session
//! cookie does not accompany. Rather than loosen the cookie, the IdP validates the request,
//! parks it under a random key and redirects the browser to a same-site GET that carries the
//! cookie. The key is stored hashed and expires quickly; taking a request deletes it, so one
//! AuthnRequest yields at most one Response.
//!
//! # Bounds
//! Anyone can have a request parked (an AuthnRequest from a registered application needs no
//! session), so parking takes a place first: at most [`ParkCaps::per_owner`] live rows per
//! [`ParkOwner`] (the browser's network, or the signed-in user), the /64s of one IPv6 /48
//! together [`WIDE_OWNER_FACTOR`] times that, and all anonymous owners (networks) together
//! [`ParkCaps::total`], checked and inserted in one statement (on PostgreSQL under an
//! advisory lock every node's parkings share), never counted and then inserted. The counts
//! are kept in step by the database ([`FrontDoor`]) and count live rows only, so checking
//! them costs the same however full the table is, or however much of it just expired. A
//! user's own
//! parks (a sign-in waiting for their second factor, their logout chain) neither count
//! towards the total nor wait for it: a flood of anonymous parks from many networks must not
//! shut every signed-in user out of their second factor or their single logout. Those are
//! held to [`ParkCaps::per_owner`] per user, and only a signed-in user can make one. Past an
//! owner's cap (or its /48's) a park is [`Error::Throttled`] (429); past the total
//! [`Error::Busy`] (503): a flood from many networks then delays new anonymous sign-ins, but
//! cannot grow the table.

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::{Duration, OffsetDateTime};

use latchkey_sp::network::{WIDE_NETWORK_FACTOR, wide_network_of};

use super::{fresh_token, network_of, token_hash};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::front_door::{EXPIRED_PER_START, FrontDoor, Scope};
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

/// Who a parked request counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkOwner(String);

impl ParkOwner {
    /// A browser nobody is signed in at, by its network ([`network_of`]: an IPv6 client
    /// counts as its /64, so rotating addresses gains nothing).
    pub fn network(address: &str) -> Self {
        ParkOwner(format!("{ANONYMOUS}{}", network_of(address)))
    }

    /// A signed-in user (a sign-in waiting for their second factor, their logout).
    pub fn user(user: UserId) -> Self {
        ParkOwner(format!("user:{user}"))
    }

    /// A browser nobody is signed in at ([`Self::network`]): counted towards
    /// [`ParkCaps::total`].
    fn is_anonymous(&self) -> bool {
        self.0.starts_with(ANONYMOUS)
    }

    /// For an IPv6 /64, the prefix every owner in its /48 shares ([`wide_network_of`]):
    /// a site handed a /48 has 65,536 /64s, so they also count together, under
    /// [`WIDE_OWNER_FACTOR`] times the cap.
    fn wide(&self) -> Option<String> {
        let network = self.0.strip_prefix(ANONYMOUS)?;
        wide_network_of(network).map(|wide| format!("{ANONYMOUS}{wide}"))
    }
}

/// The prefix of every anonymous [`ParkOwner`]: the rows migration 0660's triggers count
/// towards the total ([`FrontDoor::Parked`]) are those whose owner starts with it.
const ANONYMOUS: &str = "addr:";

/// How many owners' worth of parked requests the /64s of one IPv6 /48 may hold together.
pub const WIDE_OWNER_FACTOR: u32 = WIDE_NETWORK_FACTOR as u32;

/// How many live parked requests there may be (`[server] parked_per_network` and
/// `parked_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkCaps {
    /// Per [`ParkOwner`] (a network, or a signed-in user).
    pub per_owner: u32,
    /// Anonymous ones (owned by a network) in all; a user's own are held only to
    /// `per_owner`.
    pub total: u32,
}

impl ParkCaps {
    /// Generous per owner, because a whole office can sit behind one address and every
    /// sign-in page left open holds a row until [`PARK_TTL`] ends it; in all, a real
    /// request's row is under 2 KiB, and none holds more than
    /// [`crate::sso::request::MAX_HELD`] (4 KiB) of its request, so what anonymous clients
    /// park stays under ~100 MiB, and ~200 MiB whatever is sent (signed-in users' own rows
    /// come on top, each user's under the same per-owner cap).
    pub const DEFAULT: ParkCaps = ParkCaps {
        per_owner: 1_000,
        total: 50_000,
    };
}
/// What a refused park tells the browser to wait, in seconds.
const PARK_RETRY_AFTER: u64 = 30;

/// Parked requests in the store.
#[derive(Debug, Clone, Copy)]
pub struct ParkedRequests<'s> {
    store: &'s Store,
    caps: ParkCaps,
}

/// How long a parked request waits for the user (sign-in included), rounded down to the
/// front door's grid ([`crate::store::front_door::EXPIRY_GRID_SECONDS`]).
pub const PARK_TTL: Duration = Duration::minutes(15);

impl<'s> ParkedRequests<'s> {
    /// Parked requests in `store`, with the default caps.
    pub fn new(store: &'s Store) -> Self {
        ParkedRequests {
            store,
            caps: ParkCaps::DEFAULT,
        }
    }

    /// The same, parking under `caps` (the server's settings).
    pub fn with_caps(self, caps: ParkCaps) -> Self {
        ParkedRequests { caps, ..self }
    }

    /// Parks `payload` for `owner`; returns the key for the continue URL. The caps count
    /// live requests only; a few expired rows go first ([`EXPIRED_PER_START`]), the periodic
    /// sweep deletes the rest.
    pub async fn park<T: Parkable>(
        &self,
        payload: &T,
        owner: &ParkOwner,
        now: OffsetDateTime,
    ) -> Result<String> {
        let key = fresh_token();
        let json = serde_json::to_string(payload).map_err(|e| Error::corrupt("parked", e))?;
        let mut tx = self
            .store
            .begin_serialized(FrontDoor::Parked.lock())
            .await?;
        FrontDoor::Parked
            .delete_expired(&mut tx, now, EXPIRED_PER_START)
            .await?;
        let inserted = self
            .bind_park(
                sqlx::query(sqlx::AssertSqlSafe(self.park_sql())),
                owner,
                kind_hash::<T>(&key),
                json,
                now,
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            // Which cap was reached (read in the same transaction, from the kept counts,
            // never a count of the table: under a flood every start is refused here, still
            // under the lock).
            let live = |scope| {
                let sql = format!("SELECT {}", FrontDoor::Parked.live_sql(scope, "$1", "$2"));
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                    .bind(if scope == Scope::All { "" } else { &owner.0 })
                    .bind(timestamp::format(now))
            };
            let mine = live(Scope::Owner).fetch_one(&mut *tx).await?;
            let full = if owner.is_anonymous() {
                let all = live(Scope::All).fetch_one(&mut *tx).await?;
                all >= i64::from(self.caps.total)
            } else {
                false
            };
            crate::store::commit(tx).await?;
            tracing::warn!(owner = %owner.0, waiting = mine, "parked request refused: cap reached");
            // The owner's cap, or its /48's while there is room in all; a user's only theirs.
            // Read after the insert (on PostgreSQL in a later snapshot), so a take that freed
            // a place in between makes a start refused by the total read as its /48's: the
            // refusal's kind, not the admission, can be off under such a race.
            return Err(if mine >= i64::from(self.caps.per_owner) || !full {
                Error::Throttled {
                    retry_after_seconds: PARK_RETRY_AFTER,
                }
            } else {
                Error::Busy {
                    what: "sign-ins waiting",
                    retry_after_seconds: PARK_RETRY_AFTER,
                }
            });
        }
        crate::store::commit(tx).await?;
        Ok(key.to_string())
    }

    /// The conditional insert [`Self::park`] takes a place with: the owner's live rows, all
    /// anonymous ones (for an anonymous owner) and its /48's (for an IPv6 /64), each read
    /// from the counts kept in step ([`FrontDoor::Parked`]: a few rows by key, however full
    /// the table is), at the park's time (`$3`). The row carries its /48 (`wide`), by which
    /// the /48's count follows it.
    fn park_sql(&self) -> String {
        let door = FrontDoor::Parked;
        let mine = door.live_sql(Scope::Owner, "$5", "$3");
        let all = door.live_sql(Scope::All, "''", "$3");
        let wide = door.live_sql(Scope::Wide, "$8", "$3");
        format!(
            "INSERT INTO sso_parked_requests \
             (key_hash, payload, created_at, expires_at, owner, wide) \
             SELECT $1, $2, $3, $4, $5, $8 \
             WHERE {mine} < $6 \
             AND ($10 = '' OR {all} < $7) \
             AND ($8 IS NULL OR {wide} < $9)"
        )
    }

    /// Binds [`Self::park_sql`]'s values for a park by `owner`. Only a column name is
    /// formatted into the statement; every value is bound.
    fn bind_park<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
        owner: &ParkOwner,
        key_hash: String,
        json: String,
        now: OffsetDateTime,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        let wide = owner.wide();
        // A user's park neither counts towards the total nor is held back by it.
        let anonymous = if owner.is_anonymous() { ANONYMOUS } else { "" };
        query
            .bind(key_hash)
            .bind(json)
            .bind(timestamp::format(now))
            .bind(timestamp::format(FrontDoor::expiry(now + PARK_TTL)))
            .bind(owner.0.clone())
            .bind(i64::from(self.caps.per_owner))
            .bind(i64::from(self.caps.total))
            .bind(wide)
            .bind(i64::from(
                self.caps.per_owner.saturating_mul(WIDE_OWNER_FACTOR),
            ))
            .bind(anonymous)
    }

    /// The database's plan for a park by `owner` (not run), for the tests that hold every
    /// count to the kept counts' key.
    #[doc(hidden)]
    pub async fn explain_park(&self, owner: &ParkOwner, now: OffsetDateTime) -> Result<String> {
        let postgres = self.store.backend() == crate::store::Backend::Postgres;
        let sql = crate::store::sql::explain(&self.park_sql(), postgres);
        let rows = self
            .bind_park(
                sqlx::query(sqlx::AssertSqlSafe(sql)),
                owner,
                String::new(),
                String::new(),
                now,
            )
            .fetch_all(self.store.pool())
            .await?;
        crate::store::sql::plan_of(rows, postgres)
    }

    /// Parks `payload` under a key the caller already holds (one made by [`super::fresh_token`]
    /// for another kind), so that records of several kinds can hang off one capability: a
    /// single-logout hop's request, what was sent for it, and its outcome. Each kind hashes
    /// the key under its own name, so the records stay apart; parking the same kind twice
    /// under one key fails. Not capped itself: callers hang these records only off a key
    /// whose own [`Self::park`] took a place, a bounded number per key (one per application
    /// of a logout, and what was sent to it and came back).
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
