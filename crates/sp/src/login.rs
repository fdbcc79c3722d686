//! Starting an SP-initiated login, and remembering it until the IdP answers.
//!
//! The outstanding request is kept on the server, keyed by a random opaque RelayState. The
//! IdP echoes RelayState in its cross-site POST to the ACS, which is how the ACS finds the
//! request again; the request ID never depends on anything the browser could alter except
//! the unguessable key. The request also keeps the hash of the starting browser's binding
//! cookie, which the ACS checks ([`crate::binding`]).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, StoreError};
use crate::network::{WIDE_NETWORK_FACTOR, network_of, wide_network_of};
use crate::store::{Database, from_millis, millis};

/// A login we started and the IdP has not answered yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingRequest {
    /// The AuthnRequest's ID, which the Response must echo as InResponseTo.
    pub request_id: String,
    /// The local path to return to after login (already checked to be local).
    pub return_to: Option<String>,
    /// After this the request is no longer honoured.
    pub expires_at: OffsetDateTime,
    /// The SHA-256 (hex) of the binding value of the browser that started the login
    /// ([`crate::binding`]): the ACS honours the request only from a browser presenting that
    /// value. `None` for a request stored before logins were bound, which the ACS refuses.
    pub browser: Option<String>,
}

/// The browser redirect that starts a login. `Debug` leaves the cookie's value out.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginRedirect {
    /// The IdP URL with the encoded (and maybe signed) AuthnRequest and RelayState.
    pub url: String,
    /// The opaque key the request is stored under.
    pub relay_state: String,
    /// The request that was stored.
    pub request: PendingRequest,
    /// The `Set-Cookie` header value to send with the redirect: the browser's binding (the
    /// value it presented, or a fresh one), which the ACS will ask for.
    pub set_cookie: String,
    /// What the browser presents once it holds that cookie (for tests, and callers that are
    /// not a browser).
    pub browser: crate::binding::BrowserBinding,
}

impl std::fmt::Debug for LoginRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRedirect")
            .field("url", &self.url)
            .field("relay_state", &self.relay_state)
            .field("request", &self.request)
            .field("browser", &self.browser)
            .finish_non_exhaustive()
    }
}

/// Logins one client network ([`network_of`]) may have started and not finished: a
/// fiftieth of the default capacity, so that one client alone cannot fill it and turn
/// everyone's logins away; generous for an office behind one address (a request is held only
/// until the IdP answers, at most the request lifetime).
pub const PENDING_PER_NETWORK: usize = 200;

/// Logins the /64s of one IPv6 /48 ([`wide_network_of`]) may have started and not finished
/// together: [`WIDE_NETWORK_FACTOR`] networks' worth, so that a site's 65,536 /64s give its
/// owner no more than a twentieth of the default capacity.
pub const PENDING_PER_WIDE_NETWORK: usize = WIDE_NETWORK_FACTOR as usize * PENDING_PER_NETWORK;

/// For an IPv6 /64 `network`, the networks of its /48 ([`wide_network_of`]) as a range in
/// byte order, `[start, end)` (the prefix ends in `:`, and `;` is the next byte); empty
/// strings for any other network, which has no /48 bound.
fn wide_range(network: &str) -> (String, String) {
    wide_network_of(network)
        .and_then(|wide| {
            let stem = wide.strip_suffix(':')?;
            Some((wide.to_owned(), format!("{stem};")))
        })
        .unwrap_or_default()
}

/// Outstanding requests, in memory.
///
/// # Security
/// Bounded: when full of unexpired requests a new login is refused rather than forgetting one,
/// so a flood of login starts can cost memory only up to the bound; a start from a known client
/// is also refused past [`PENDING_PER_NETWORK`] for its network (and
/// [`PENDING_PER_WIDE_NETWORK`] for its IPv6 /48), so a single client cannot fill the bound. A request is taken (removed) when its RelayState comes back, so each can be
/// answered once.
#[derive(Debug)]
pub struct PendingRequests {
    held: Mutex<Held>,
    capacity: usize,
}

/// The requests by key, and how many each client network holds: a start is checked against
/// its network's count, not by counting the whole map under the lock.
#[derive(Debug, Default)]
struct Held {
    entries: HashMap<String, (PendingRequest, String)>,
    per_network: HashMap<String, usize>,
}

impl Held {
    fn mine(&self, network: &str) -> usize {
        self.per_network.get(network).copied().unwrap_or(0)
    }

    /// Which bound a new start from `network` would pass, if any.
    fn over(&self, network: &str) -> Option<usize> {
        if self.mine(network) >= PENDING_PER_NETWORK {
            return Some(PENDING_PER_NETWORK);
        }
        wide_network_of(network)
            .filter(|wide| self.mine(wide) >= PENDING_PER_WIDE_NETWORK)
            .map(|_| PENDING_PER_WIDE_NETWORK)
    }

    /// Counts a request under its network and, for an IPv6 /64, under its /48 too (the
    /// /48's prefix never equals a network's name).
    fn insert(&mut self, key: String, request: PendingRequest, network: String) {
        *self.per_network.entry(network.clone()).or_insert(0) += 1;
        if let Some(wide) = wide_network_of(&network) {
            *self.per_network.entry(wide.to_owned()).or_insert(0) += 1;
        }
        self.entries.insert(key, (request, network));
    }

    fn remove(&mut self, key: &str) -> Option<PendingRequest> {
        let (request, network) = self.entries.remove(key)?;
        self.forget(&network);
        Some(request)
    }

    fn forget(&mut self, network: &str) {
        for counted in std::iter::once(network).chain(wide_network_of(network)) {
            if let Some(n) = self.per_network.get_mut(counted) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_network.remove(counted);
                }
            }
        }
    }

    fn prune(&mut self, now: OffsetDateTime) {
        let mut gone = Vec::new();
        self.entries.retain(|_, (r, network)| {
            let keep = r.expires_at > now;
            if !keep {
                gone.push(std::mem::take(network));
            }
            keep
        });
        for network in gone {
            self.forget(&network);
        }
    }
}

impl PendingRequests {
    /// A store holding at most `capacity` outstanding requests.
    pub fn new(capacity: usize) -> Self {
        Self {
            held: Mutex::new(Held::default()),
            capacity,
        }
    }

    /// Stores `request`, started by the browser at `client` (its address, if known), under a
    /// fresh random key and returns the key.
    pub fn insert(
        &self,
        request: PendingRequest,
        client: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<String, Error> {
        let network = client.map(network_of).unwrap_or_default();
        let mut held = self.lock();
        let over = |held: &Held| {
            held.entries.len() >= self.capacity
                || (client.is_some() && held.over(&network).is_some())
        };
        if over(&held) {
            held.prune(now);
            if held.entries.len() >= self.capacity {
                return Err(Error::TooManyPendingRequests(held.entries.len()));
            }
            if let Some(bound) = held.over(&network).filter(|_| client.is_some()) {
                return Err(Error::TooManyPendingFromClient(bound));
            }
        }
        // 122 random bits from the OS generator, as 32 hex digits: well under the 80 bytes
        // the bindings allow for RelayState.
        let key = Uuid::new_v4().simple().to_string();
        held.insert(key.clone(), request, network);
        Ok(key)
    }

    /// Takes the request stored under `relay_state`. `Ok(None)` when there is none (an
    /// IdP-initiated login, or a key we never issued); [`Error::RequestExpired`] when it was
    /// there but too old.
    pub fn take(
        &self,
        relay_state: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PendingRequest>, Error> {
        match self.lock().remove(relay_state) {
            Some(r) if r.expires_at <= now => Err(Error::RequestExpired),
            other => Ok(other),
        }
    }

    /// How many requests are held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // Each operation keeps the map and the counts in step before it returns, and none of
        // them can panic half-way: a poisoned lock is still safe to use.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where outstanding requests are kept.
#[derive(Debug)]
pub enum PendingStore {
    /// In this process: enough for one node; lost on restart.
    Memory(PendingRequests),
    /// In the SP database (table `sp_pending_requests`): shared by every node using it and
    /// kept across restarts.
    Sql(SqlPendingRequests),
}

impl PendingStore {
    /// Stores `request`, started by the browser at `client` (its address, if known), under a
    /// fresh random key and returns the key.
    pub async fn insert(
        &self,
        request: PendingRequest,
        client: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<String, Error> {
        match self {
            Self::Memory(m) => m.insert(request, client, now),
            Self::Sql(s) => s.insert(request, client, now).await,
        }
    }

    /// Takes the request stored under `relay_state` (see [`PendingRequests::take`]).
    pub async fn take(
        &self,
        relay_state: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PendingRequest>, Error> {
        match self {
            Self::Memory(m) => m.take(relay_state, now),
            Self::Sql(s) => s.take(relay_state, now).await,
        }
    }

    /// The SQL store, when requests are kept in the SP database.
    pub(crate) fn sql(&self) -> Option<&SqlPendingRequests> {
        match self {
            Self::Memory(_) => None,
            Self::Sql(s) => Some(s),
        }
    }

    /// How many requests are held, expired ones included until pruned.
    pub async fn count(&self) -> Result<usize, Error> {
        match self {
            Self::Memory(m) => Ok(m.len()),
            Self::Sql(s) => s.count().await,
        }
    }
}

/// Takes a pending request: deletes its row, returning what the ACS needs, in one statement
/// (so of two takes of one RelayState, on any node, one gets the row).
pub(crate) const TAKE_PENDING: &str = "DELETE FROM sp_pending_requests WHERE relay_state = $1 \
     RETURNING request_id, return_to, expires_at, browser";

/// Reads a pending request without taking it: the ACS's first look, before the Response is
/// verified ([`SqlPendingRequests::peek`]).
pub(crate) const PEEK_PENDING: &str = "SELECT request_id, return_to, expires_at, browser \
     FROM sp_pending_requests WHERE relay_state = $1";

/// Uses a pending request up inside a login's transaction: one row deleted, or none when
/// another login (on any node) used it first ([`crate::store::AccountTx::use_pending_request`]).
pub(crate) const USE_PENDING: &str =
    "DELETE FROM sp_pending_requests WHERE relay_state = $1 AND request_id = $2";

/// A taken row of [`TAKE_PENDING`]: request ID, return path, expiry (milliseconds), the
/// browser's binding hash ('' for none).
pub(crate) type PendingRow = (String, Option<String>, i64, String);

/// The advisory lock (PostgreSQL) that serializes inserts of pending requests across nodes:
/// an arbitrary constant, "lk-pend" in ASCII.
const PENDING_INSERT_LOCK: i64 = 0x006c_6b2d_7065_6e64;

/// Outstanding requests in SQL.
///
/// # Security
/// Bounded like [`PendingRequests`]: expired rows are pruned on insert, and a new login is
/// refused while `capacity` unexpired requests are outstanding, [`PENDING_PER_NETWORK`]
/// from its client's network, or [`PENDING_PER_WIDE_NETWORK`] from its IPv6 /48. `take` deletes the row it
/// returns in the same statement, so a RelayState is honoured once even across nodes. The ACS
/// ([`crate::acs::run`]) with the login's replay cache and accounts in the same database reads
/// the row instead and deletes it in the login's transaction by a conditional `DELETE`
/// (`USE_PENDING`): of two logins answering one request, on any node, one deletes it and
/// the other is refused with nothing kept.
#[derive(Debug, Clone)]
pub struct SqlPendingRequests {
    db: Database,
    capacity: usize,
}

impl SqlPendingRequests {
    /// A store in `db` holding at most `capacity` outstanding requests.
    pub fn new(db: Database, capacity: usize) -> Self {
        Self { db, capacity }
    }

    /// Prunes, then inserts only while fewer than `capacity` are held, as one step: a burst
    /// of logins cannot all see room and all insert. On SQLite the conditional insert is one
    /// statement under the database's write lock; on PostgreSQL, where concurrent statements
    /// each count their own snapshot, the transaction first takes an advisory lock that every
    /// node's inserts share.
    async fn insert(
        &self,
        request: PendingRequest,
        client: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<String, Error> {
        let network = client.map(network_of).unwrap_or_default();
        // A start from an unknown client is bounded by the total alone.
        let per_network = if client.is_some() {
            i64::try_from(PENDING_PER_NETWORK).unwrap_or(i64::MAX)
        } else {
            i64::MAX
        };
        let per_wide = i64::try_from(PENDING_PER_WIDE_NETWORK).unwrap_or(i64::MAX);
        let mut tx = self.db.pool().begin().await.map_err(StoreError::from)?;
        if self.db.backend() == crate::store::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PENDING_INSERT_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
        sqlx::query("DELETE FROM sp_pending_requests WHERE expires_at <= $1")
            .bind(millis(now))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let key = Uuid::new_v4().simple().to_string();
        let (wide, wide_end) = wide_range(&network);
        let inserted = sqlx::query(sqlx::AssertSqlSafe(self.insert_sql()))
            .bind(key.clone())
            .bind(request.request_id)
            .bind(request.return_to)
            .bind(millis(request.expires_at))
            .bind(network.clone())
            .bind(i64::try_from(self.capacity).unwrap_or(i64::MAX))
            .bind(per_network)
            .bind(wide)
            .bind(per_wide)
            .bind(wide_end)
            .bind(request.browser.unwrap_or_default())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .rows_affected();
        if inserted == 0 {
            // Which bound was reached (read in the same transaction).
            let (all, mine): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COUNT(CASE WHEN client = $1 THEN 1 END) \
                 FROM sp_pending_requests",
            )
            .bind(network)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from)?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(if all >= i64::try_from(self.capacity).unwrap_or(i64::MAX) {
                Error::TooManyPendingRequests(self.capacity)
            } else if mine >= per_network {
                Error::TooManyPendingFromClient(PENDING_PER_NETWORK)
            } else {
                Error::TooManyPendingFromClient(PENDING_PER_WIDE_NETWORK)
            });
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(key)
    }

    /// `client` as the statements counting clients compare it: in byte order, so that a
    /// /48's networks are one range of the client index. SQLite's default collation is
    /// byte-wise; PostgreSQL is told `COLLATE "C"`, which its client index is in.
    fn client_column(&self) -> &'static str {
        match self.db.backend() {
            crate::store::Backend::Postgres => "client COLLATE \"C\"",
            crate::store::Backend::Sqlite => "client",
        }
    }

    /// The conditional insert of [`Self::insert`]: the client's count and its /48's (a range
    /// of the client index), then the total.
    fn insert_sql(&self) -> String {
        let client = self.client_column();
        format!(
            "INSERT INTO sp_pending_requests \
             (relay_state, request_id, return_to, expires_at, client, browser) \
             SELECT $1, $2, $3, $4, $5, $11 \
             WHERE (SELECT COUNT(*) FROM sp_pending_requests WHERE {client} = $5) < $7 \
             AND ($8 = '' OR (SELECT COUNT(*) FROM sp_pending_requests \
                 WHERE {client} >= $8 AND {client} < $10) < $9) \
             AND (SELECT COUNT(*) FROM sp_pending_requests) < $6"
        )
    }

    /// The database's plan (not run) for a login started by `client`, one line per step,
    /// for the test that each count is read off an index. Not part of the API.
    #[doc(hidden)]
    pub async fn explain_insert(&self, client: &str) -> Result<Vec<String>, Error> {
        use sqlx::Row;
        let network = network_of(client);
        let (wide, wide_end) = wide_range(&network);
        let postgres = self.db.backend() == crate::store::Backend::Postgres;
        let explain = if postgres {
            "EXPLAIN"
        } else {
            "EXPLAIN QUERY PLAN"
        };
        let text = format!("{explain} {}", self.insert_sql());
        let rows = sqlx::query(sqlx::AssertSqlSafe(text))
            .bind(String::new())
            .bind(String::new())
            .bind(None::<String>)
            .bind(0_i64)
            .bind(network)
            .bind(0_i64)
            .bind(0_i64)
            .bind(wide)
            .bind(0_i64)
            .bind(wide_end)
            .bind(String::new())
            .fetch_all(self.db.pool())
            .await
            .map_err(StoreError::from)?;
        let mut lines = Vec::new();
        for row in rows {
            lines.push(
                if postgres {
                    row.try_get::<String, _>(0)
                } else {
                    row.try_get::<String, _>("detail")
                }
                .map_err(StoreError::from)?,
            );
        }
        Ok(lines)
    }

    async fn take(
        &self,
        relay_state: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PendingRequest>, Error> {
        let Some(row) = self.delete(relay_state).await? else {
            return Ok(None);
        };
        let request = pending_from_row(row)?;
        if request.expires_at <= now {
            return Err(Error::RequestExpired);
        }
        Ok(Some(request))
    }

    /// Deletes the row under `relay_state` and returns it: [`TAKE_PENDING`], committed. On a
    /// SQLite file it runs on the login writer (`store::writer`), as logins do: through the
    /// pool it would be a trip to the pool connection's thread and a commit (and now and
    /// then a checkpoint) there, costing more CPU than the rest of a login's writes.
    async fn delete(&self, relay_state: &str) -> Result<Option<PendingRow>, Error> {
        #[cfg(feature = "sqlite")]
        if let Some(writer) = self.db.writer() {
            let relay_state = relay_state.to_owned();
            return writer
                .run(move |mut tx| {
                    crate::store::writer::now_or_never(async move {
                        let row = tx.take_pending(&relay_state)?;
                        crate::store::AccountTx::commit(tx).await?;
                        Ok(row)
                    })
                })
                .await;
        }
        self.fetch_row(TAKE_PENDING, relay_state).await
    }

    /// The request stored under `relay_state`, read and left in place (expired or not): the
    /// ACS checks it, verifies the Response, and then uses it up in the login's own
    /// transaction ([`crate::store::AccountTx::use_pending_request`]), or by
    /// [`Self::discard`] when the login goes no further. On a SQLite file it is read on the
    /// login writer's connection when that is idle (no transaction, no commit), as the take
    /// was; otherwise through the pool.
    pub(crate) async fn peek(&self, relay_state: &str) -> Result<Option<PendingRequest>, Error> {
        #[cfg(feature = "sqlite")]
        if let Some(writer) = self.db.writer() {
            let row = writer.read_pending(relay_state).await?;
            return row.map(pending_from_row).transpose();
        }
        self.fetch_row(PEEK_PENDING, relay_state)
            .await?
            .map(pending_from_row)
            .transpose()
    }

    /// The one row `sql` (a statement on `relay_state` returning a request's columns) answers,
    /// through the pool.
    async fn fetch_row(
        &self,
        sql: &'static str,
        relay_state: &str,
    ) -> Result<Option<PendingRow>, Error> {
        use sqlx::Row as _;
        let row = sqlx::query(sql)
            .bind(relay_state.to_owned())
            .fetch_optional(self.db.pool())
            .await
            .map_err(StoreError::from)?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some((
            row.try_get("request_id").map_err(StoreError::from)?,
            row.try_get("return_to").map_err(StoreError::from)?,
            row.try_get("expires_at").map_err(StoreError::from)?,
            row.try_get("browser").map_err(StoreError::from)?,
        )))
    }

    /// Uses up the request under `relay_state` (if it is still there) in a commit of its own:
    /// for a login [`Self::peek`] found and that goes no further.
    pub(crate) async fn discard(&self, relay_state: &str) -> Result<(), Error> {
        self.delete(relay_state).await.map(drop)
    }

    /// Uses up the request under `relay_state` in a commit of its own; `Ok(false)` when it was
    /// no longer there (used by another login).
    pub(crate) async fn take_back(&self, relay_state: &str) -> Result<bool, Error> {
        Ok(self.delete(relay_state).await?.is_some())
    }

    /// The database the requests are kept in.
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    async fn count(&self) -> Result<usize, Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sp_pending_requests")
            .fetch_one(self.db.pool())
            .await
            .map_err(StoreError::from)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

/// A request as read from its row ([`PendingRow`]).
fn pending_from_row(row: PendingRow) -> Result<PendingRequest, Error> {
    let (request_id, return_to, expires_at, browser) = row;
    Ok(PendingRequest {
        request_id,
        return_to,
        expires_at: from_millis("sp_pending_requests", expires_at)?,
        browser: Some(browser).filter(|b| !b.is_empty()),
    })
}

/// The longest `return_to` kept, in bytes: a page of ours, with its query.
pub const MAX_RETURN_TO: usize = 2048;

/// `return_to` if it is a path on this site, else `None`; a space or a non-ASCII character
/// in it is percent-encoded, so what is kept is always a valid `Location` header value.
///
/// # Security
/// Only `/`-rooted paths are kept (not `//host`, not `/\host`, no scheme, no control
/// character): anything else would make the login an open redirect or split the header. At
/// most [`MAX_RETURN_TO`] bytes: anyone can start a login, and the path is held with its
/// pending request (whose bounds count rows) until the IdP answers.
pub fn local_path(return_to: &str) -> Option<String> {
    let ok = return_to.len() <= MAX_RETURN_TO
        && return_to.starts_with('/')
        && !return_to.starts_with("//")
        && !return_to.starts_with("/\\")
        && !return_to.chars().any(|c| c.is_control());
    if !ok {
        return None;
    }
    let mut path = String::with_capacity(return_to.len());
    for c in return_to.chars() {
        if c.is_ascii_graphic() {
            path.push(c);
        } else {
            let mut bytes = [0u8; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                path.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Some(path)
}
