//! Ceremonies under way: the challenge state kept server-side until the browser answers.

use time::{Duration, OffsetDateTime};

use super::WebauthnError;
use crate::ids::UserId;
use crate::session::{fresh_token, token_hash};
use crate::store::Store;
use crate::store::front_door::{EXPIRED_PER_START, FrontDoor, Scope};

/// How long a browser has to answer a challenge: long enough to find a key and touch it,
/// short enough that an abandoned ceremony's row goes soon (rounded down to the front
/// door's grid: [`crate::store::front_door::EXPIRY_GRID_SECONDS`]).
pub const CHALLENGE_LIFETIME: Duration = Duration::minutes(5);
/// Live ceremonies one owner (a user, or an anonymous client's network) may hold; a new one
/// past this is refused until the old ones expire or are answered.
pub const MAX_PENDING_PER_OWNER: i64 = 10;
/// Live anonymous ceremonies (passwordless sign-ins, counted per client network) in all, so
/// a flood from many networks cannot grow the table either. A user's own ceremonies
/// (enrolling a key, the security-key step after a password) neither count towards it nor
/// wait for it: a flood of anonymous starts must not shut every user out of their second
/// factor. Those are held to [`MAX_PENDING_PER_OWNER`] per user, and only a signed-in (or
/// password-proven) user can start one.
pub const MAX_PENDING: i64 = 10_000;
/// Live ceremonies the anonymous owners of one IPv6 /48 (its 65,536 /64s, each an owner:
/// [`crate::session::network_of`]) may hold together, as for parked requests: without it,
/// one site could fill [`MAX_PENDING`] for everyone.
const MAX_PENDING_PER_WIDE_OWNER: i64 =
    MAX_PENDING_PER_OWNER * crate::session::WIDE_OWNER_FACTOR as i64;

/// What a start refused for want of a place tells the client to wait, in seconds (as a
/// refused park does): ceremonies end when answered, or after [`CHALLENGE_LIFETIME`].
const BUSY_RETRY_AFTER: u64 = 30;

/// For an anonymous owner (`addr:` and an IPv6 /64), the prefix the owners of its /48
/// share (`addr:2001:db8:1:`), which the row carries as `wide` and its /48's count goes by.
/// `None` for users, IPv4 clients and anything else.
fn wide_of(owner: &str) -> Option<String> {
    let network = owner.strip_prefix("addr:")?;
    let wide = latchkey_sp::network::wide_network_of(network)?;
    Some(format!("addr:{wide}"))
}

/// What a ceremony is for; a handle answers only the kind of finish it was started for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Register,
    Passwordless,
    SecondFactor,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::Passwordless => "passwordless",
            Kind::SecondFactor => "second_factor",
        }
    }
}

/// A ceremony taken out of the table by its finish.
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) user: Option<UserId>,
    pub(crate) state: String,
}

pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The `webauthn_challenges` table.
pub(crate) struct Pending<'s> {
    store: &'s Store,
}

impl<'s> Pending<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Pending { store }
    }

    /// Stores a ceremony's state and returns the handle the browser must send back. The caps
    /// count live ceremonies only; a few expired rows go first ([`EXPIRED_PER_START`]), the
    /// periodic sweep deletes the rest. Anyone can start a ceremony,
    /// so the caps (the owner's, its IPv6 /48's, all anonymous ones' unless `user` is set:
    /// [`MAX_PENDING`]) are taken as one step: the insert
    /// happens only if every count is under its cap, in one statement (SQLite's write lock
    /// serializes it), and on PostgreSQL under a transaction advisory lock every node's
    /// starts share, since there concurrent statements would each count their own snapshot.
    pub(crate) async fn put(
        &self,
        kind: Kind,
        owner: &str,
        user: Option<UserId>,
        state: &str,
        now: OffsetDateTime,
    ) -> Result<String, WebauthnError> {
        let mut tx = self
            .store
            .begin_serialized(FrontDoor::Ceremonies.lock())
            .await?;
        FrontDoor::Ceremonies
            .delete_expired(&mut tx, now, EXPIRED_PER_START)
            .await?;
        let handle = fresh_token();
        let inserted = self
            .bind_put(
                sqlx::query(sqlx::AssertSqlSafe(self.put_sql())),
                kind,
                owner,
                user,
                token_hash(&handle),
                state,
                now,
            )
            .execute(&mut *tx)
            .await
            .map_err(crate::Error::from)?
            .rows_affected();
        if inserted == 0 {
            // Which cap was reached, for the log line (read in the same transaction, from
            // the kept counts).
            let sql = format!(
                "SELECT {}",
                FrontDoor::Ceremonies.live_sql(Scope::Owner, "$1", "$2")
            );
            let mine: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(owner)
                .bind(unix_ms(now))
                .fetch_one(&mut *tx)
                .await
                .map_err(crate::Error::from)?;
            crate::store::commit(tx).await?;
            return Err(WebauthnError::Busy {
                what: if mine >= MAX_PENDING_PER_OWNER {
                    "ceremonies under way for this client"
                } else {
                    "ceremonies under way for this client's /48, or in all"
                },
                retry_after_seconds: BUSY_RETRY_AFTER,
            });
        }
        crate::store::commit(tx).await?;
        Ok(handle.to_string())
    }

    /// The conditional insert [`Self::put`] takes a place with: the owner's live ceremonies
    /// (at most [`MAX_PENDING_PER_OWNER`]), all anonymous ones (anonymous starts only), and
    /// its /48's (at most [`MAX_PENDING_PER_WIDE_OWNER`]), each read from the counts kept in
    /// step ([`FrontDoor::Ceremonies`]: a few rows by key, however full the table is) at the
    /// start's time (`$11`). The row carries its /48 (`wide`), by which that count follows it.
    fn put_sql(&self) -> String {
        let door = FrontDoor::Ceremonies;
        let mine = door.live_sql(Scope::Owner, "$3", "$11");
        let all = door.live_sql(Scope::All, "''", "$11");
        let wide = door.live_sql(Scope::Wide, "$9", "$11");
        format!(
            "INSERT INTO webauthn_challenges \
             (handle_hash, kind, owner, user_id, state, expires_at, wide) \
             SELECT $1, $2, $3, $4, $5, $6, $9 \
             WHERE {mine} < $7 \
             AND ($4 IS NOT NULL OR {all} < $8) \
             AND ($9 IS NULL OR {wide} < $10)"
        )
    }

    /// Binds [`Self::put_sql`]'s values. Only a column name is formatted into the
    /// statement; every value is bound.
    #[allow(clippy::too_many_arguments)]
    fn bind_put<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
        kind: Kind,
        owner: &str,
        user: Option<UserId>,
        handle_hash: String,
        state: &str,
        now: OffsetDateTime,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        query
            .bind(handle_hash)
            .bind(kind.as_str())
            .bind(owner.to_owned())
            .bind(user.map(UserId::to_db))
            .bind(state.to_owned())
            .bind(unix_ms(FrontDoor::expiry(now + CHALLENGE_LIFETIME)))
            .bind(MAX_PENDING_PER_OWNER)
            .bind(MAX_PENDING)
            .bind(wide_of(owner))
            .bind(MAX_PENDING_PER_WIDE_OWNER)
            .bind(unix_ms(now))
    }

    /// The database's plan for a start by `owner` (not run), for the tests that hold every
    /// count to the kept counts' key.
    pub(crate) async fn explain_put(
        &self,
        owner: &str,
        user: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<String, WebauthnError> {
        let postgres = self.store.backend() == crate::store::Backend::Postgres;
        let sql = crate::store::sql::explain(&self.put_sql(), postgres);
        let rows = self
            .bind_put(
                sqlx::query(sqlx::AssertSqlSafe(sql)),
                Kind::Passwordless,
                owner,
                user,
                String::new(),
                "",
                now,
            )
            .fetch_all(self.store.pool())
            .await
            .map_err(crate::Error::from)?;
        Ok(crate::store::sql::plan_of(rows, postgres)?)
    }

    /// Takes the ceremony out of the table: one statement deletes and returns it, so of two
    /// simultaneous finishes with the same handle (on any node) exactly one gets the state.
    /// A handle of another kind, or an expired one, is consumed and refused all the same.
    pub(crate) async fn take(
        &self,
        kind: Kind,
        handle: &str,
        now: OffsetDateTime,
    ) -> Result<Taken, WebauthnError> {
        if handle.is_empty() || handle.len() > 128 {
            return Err(WebauthnError::Challenge);
        }
        let row: Option<(String, Option<String>, String, i64)> = sqlx::query_as(
            "DELETE FROM webauthn_challenges WHERE handle_hash = $1 \
             RETURNING kind, user_id, state, expires_at",
        )
        .bind(token_hash(handle))
        .fetch_optional(self.store.pool())
        .await
        .map_err(crate::Error::from)?;
        let Some((stored_kind, user, state, expires_at)) = row else {
            return Err(WebauthnError::Challenge);
        };
        if stored_kind != kind.as_str() || expires_at <= unix_ms(now) {
            return Err(WebauthnError::Challenge);
        }
        let user = user.as_deref().map(UserId::from_db).transpose()?;
        Ok(Taken { user, state })
    }

    /// Live ceremonies (for tests and operators: what anonymous clients can make grow);
    /// expired rows not yet deleted count for nothing, as for the caps.
    pub(crate) async fn count(&self) -> Result<i64, WebauthnError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM webauthn_challenges WHERE expires_at > $1")
                .bind(unix_ms(self.store.now()))
                .fetch_one(self.store.pool())
                .await
                .map_err(crate::Error::from)?,
        )
    }
}
