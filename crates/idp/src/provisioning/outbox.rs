//! Writing the outbox (in the caller's transaction) and taking rows from it (the worker).
//!
//! Each writer is one `INSERT ... SELECT` over `scim_connections`, so with no application
//! connected nothing is written and a change costs one indexed statement more. Writers that
//! remove access (a member removed, a user or group deleted) run *before* the removal, while
//! the user still counts as assigned; the others run after.

use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use crate::audit::{Actor, Change};
use crate::directory::User;
use crate::error::{Error, Result};
use crate::ids::{AppId, GroupId, UserId};
use crate::store::{Store, timestamp};

/// The applications a user is (or was, going by the remote ids) at: assigned, or holding an
/// id we were given.
const USER_AT_APP: &str = "(EXISTS (SELECT 1 FROM app_access x JOIN group_members m \
     ON m.group_id = x.group_id WHERE x.app_id = c.app_id AND m.user_id = $1) \
     OR EXISTS (SELECT 1 FROM scim_remote_ids r WHERE r.app_id = c.app_id AND r.user_id = $1))";

/// True for an outbox row `o` that takes access away: its user is no longer admitted by
/// the application (deleted, suspended, or in none of its groups), so its delivery removes
/// them there ([`super::worker::wanted`]'s rule, in SQL). The one home of "a pending removal".
const REMOVAL: &str = "NOT EXISTS (SELECT 1 FROM users u JOIN group_members m \
     ON m.user_id = u.id JOIN app_access x ON x.group_id = m.group_id \
     WHERE u.id = o.user_id AND x.app_id = o.app_id AND u.status = 'active')";

/// A user was created, changed, suspended, resumed, deleted, or their groups changed: one
/// row for each connected application they are (or were) at.
pub(crate) async fn user_changed(
    conn: &mut AnyConnection,
    user: &User,
    reason: &str,
    now: OffsetDateTime,
) -> Result<u64> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO scim_outbox (app_id, user_id, user_name, user_email, reason, created_at, \
         next_attempt_at) SELECT c.app_id, $1, $2, $5, $3, $4, $4 FROM scim_connections c \
         WHERE {USER_AT_APP}"
    ));
    Ok(sqlx::query(sql)
        .bind(user.id.to_db())
        .bind(&user.username)
        .bind(reason)
        .bind(timestamp::format(now))
        .bind(&user.email)
        .execute(conn)
        .await?
        .rows_affected())
}

/// A group was renamed or deleted: its name is what an application that is sent `groups`
/// knows it by, and a deleted group may be what let its members in. So each member is
/// brought in line at every connected application they are at, whether this group opens it
/// or another of theirs does (they move to the group of the new name there, or leave the
/// deleted group: a role the application gave that group goes with it). Run before a
/// deletion, while the members still count as assigned.
pub(crate) async fn members_changed(
    conn: &mut AnyConnection,
    group: GroupId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<u64> {
    Ok(sqlx::query(
        "INSERT INTO scim_outbox (app_id, user_id, user_name, user_email, reason, created_at, \
         next_attempt_at) SELECT c.app_id, u.id, u.username, u.email, $2, $3, $3 \
         FROM scim_connections c JOIN group_members g ON g.group_id = $1 \
         JOIN users u ON u.id = g.user_id \
         WHERE EXISTS (SELECT 1 FROM app_access x JOIN group_members m \
         ON m.group_id = x.group_id WHERE x.app_id = c.app_id AND m.user_id = u.id) \
         OR EXISTS (SELECT 1 FROM scim_remote_ids r WHERE r.app_id = c.app_id \
         AND r.user_id = u.id)",
    )
    .bind(group.to_db())
    .bind(reason)
    .bind(timestamp::format(now))
    .execute(conn)
    .await?
    .rows_affected())
}

/// A group was given or taken an application: one row per member, if it is connected.
pub(crate) async fn access_changed(
    conn: &mut AnyConnection,
    app: AppId,
    group: GroupId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<u64> {
    Ok(sqlx::query(
        "INSERT INTO scim_outbox (app_id, user_id, user_name, user_email, reason, created_at, \
         next_attempt_at) SELECT c.app_id, u.id, u.username, u.email, $3, $4, $4 \
         FROM scim_connections c JOIN group_members m ON m.group_id = $2 \
         JOIN users u ON u.id = m.user_id WHERE c.app_id = $1",
    )
    .bind(app.to_db())
    .bind(group.to_db())
    .bind(reason)
    .bind(timestamp::format(now))
    .execute(conn)
    .await?
    .rows_affected())
}

/// An application was connected: one row per user it should hold, and per user it holds an
/// id of (from an earlier connection).
pub(crate) async fn app_connected(
    conn: &mut AnyConnection,
    app: AppId,
    now: OffsetDateTime,
) -> Result<u64> {
    Ok(sqlx::query(
        "INSERT INTO scim_outbox (app_id, user_id, user_name, user_email, reason, created_at, \
         next_attempt_at) SELECT $1, u.id, u.username, u.email, 'app.scim_connect', $2, $2 \
         FROM users u WHERE u.id IN (SELECT m.user_id FROM app_access x \
         JOIN group_members m ON m.group_id = x.group_id WHERE x.app_id = $1) \
         OR u.id IN (SELECT r.user_id FROM scim_remote_ids r WHERE r.app_id = $1)",
    )
    .bind(app.to_db())
    .bind(timestamp::format(now))
    .execute(conn)
    .await?
    .rows_affected())
}

/// One outbox row taken by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Its sequence number.
    pub seq: i64,
    /// The application.
    pub app_id: AppId,
    /// The user (who may have been deleted since).
    pub user_id: UserId,
    /// Their username when the row was written.
    pub user_name: String,
    /// Their e-mail address when the row was written (none on rows from before migration
    /// 0670): what an application keyed on addresses knows a deleted user by.
    pub user_email: Option<String>,
    /// Deliveries tried so far.
    pub attempts: i64,
}

/// Takes up to `limit` due rows for `owner` until `lease_until`: only the oldest row of each
/// (application, user), only rows no live lease holds. One statement, whose outer condition
/// re-checks the lease, so two nodes racing for a row cannot both get it (PostgreSQL
/// re-evaluates it on the locked row; SQLite has one writer).
pub(crate) async fn claim(
    store: &Store,
    owner: &str,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<Claimed>> {
    let now = timestamp::format(now);
    let rows = sqlx::query(
        "UPDATE scim_outbox SET lease_owner = $1, lease_until = $2 WHERE seq IN ( \
           SELECT o.seq FROM scim_outbox o WHERE o.next_attempt_at <= $3 \
           AND (o.lease_until IS NULL OR o.lease_until < $3) \
           AND NOT EXISTS (SELECT 1 FROM scim_outbox p WHERE p.app_id = o.app_id \
             AND p.user_id = o.user_id AND p.seq < o.seq) \
           ORDER BY o.seq LIMIT $4) \
         AND (lease_until IS NULL OR lease_until < $3) \
         RETURNING seq, app_id, user_id, user_name, user_email, attempts",
    )
    .bind(owner)
    .bind(timestamp::format(lease_until))
    .bind(&now)
    .bind(i64::from(limit))
    .fetch_all(store.pool())
    .await?;
    let mut claimed = rows
        .into_iter()
        .map(|row| {
            Ok(Claimed {
                seq: row.try_get("seq")?,
                app_id: AppId::from_db(&row.try_get::<String, _>("app_id")?)?,
                user_id: UserId::from_db(&row.try_get::<String, _>("user_id")?)?,
                user_name: row.try_get("user_name")?,
                user_email: row.try_get("user_email")?,
                attempts: row.try_get("attempts")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|c| c.seq);
    Ok(claimed)
}

/// Takes every row of the pair committed so far for `owner` (the claimed one and any newer),
/// before the directory is read: a delivery that reads it after this covers exactly these
/// rows, which [`done`] then removes. Returns the newest. A row of the pair committed later
/// is not taken, even with a lower `seq` (on PostgreSQL a sequence number is drawn before
/// its transaction commits, so an older number can appear after a newer one): its change
/// may not be in what is delivered, so it stays for the next delivery.
pub(crate) async fn take_pair(
    store: &Store,
    item: &Claimed,
    owner: &str,
    lease_until: OffsetDateTime,
) -> Result<i64> {
    let seqs: Vec<i64> = sqlx::query_scalar(
        "UPDATE scim_outbox SET lease_owner = $3, lease_until = $4 \
         WHERE app_id = $1 AND user_id = $2 RETURNING seq",
    )
    .bind(item.app_id.to_db())
    .bind(item.user_id.to_db())
    .bind(owner)
    .bind(timestamp::format(lease_until))
    .fetch_all(store.pool())
    .await?;
    Ok(seqs.into_iter().max().unwrap_or(item.seq).max(item.seq))
}

/// Removes the pair's rows [`take_pair`] took for `owner`, up to `through`, after a delivery,
/// in one transaction with `event` (the removal's `scim.user_remove`, if it was one): a
/// failure leaves both undone, so the retry records it once. The event is written only if
/// rows were removed: a node whose lease was taken over leaves the rows, and their event, to
/// the node now delivering them.
pub(crate) async fn done(
    store: &Store,
    item: &Claimed,
    owner: &str,
    through: i64,
    event: Option<Change>,
) -> Result<()> {
    let mut tx = store.begin().await?;
    let conn = crate::store::conn(&mut tx);
    let removed = sqlx::query(
        "DELETE FROM scim_outbox WHERE app_id = $1 AND user_id = $2 AND seq <= $3 \
         AND lease_owner = $4",
    )
    .bind(item.app_id.to_db())
    .bind(item.user_id.to_db())
    .bind(through)
    .bind(owner)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if let Some(event) = event
        && removed > 0
    {
        crate::audit::record(conn, &Actor::system(), store.now(), event).await?;
    }
    crate::store::commit(tx).await
}

/// Puts a row back after a failed delivery, due again at `next`.
pub(crate) async fn retry_later(
    store: &Store,
    item: &Claimed,
    next: OffsetDateTime,
    error: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE scim_outbox SET attempts = attempts + 1, next_attempt_at = $2, \
         lease_owner = NULL, lease_until = NULL, last_error = $3 WHERE seq = $1",
    )
    .bind(item.seq)
    .bind(timestamp::format(next))
    .bind(super::clip(error))
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The time the oldest waiting row was written, if any: the health check's measure.
pub(crate) async fn oldest(store: &Store) -> Result<Option<OffsetDateTime>> {
    // The oldest row is the first by sequence: one step into the primary key.
    let at: Option<String> =
        sqlx::query_scalar("SELECT created_at FROM scim_outbox ORDER BY seq LIMIT 1")
            .fetch_optional(store.pool())
            .await?;
    at.map(|t| timestamp::parse("scim_outbox.created_at", &t))
        .transpose()
}

/// The users whose removals were waiting for an application when it was disconnected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DroppedRemovals {
    /// How many users had one.
    pub users: u64,
    /// The first of them by name (at most [`DROPPED_NAMED`]): (id, username).
    pub named: Vec<(UserId, String)>,
}

/// The most users a dropped queue's audit event names.
pub const DROPPED_NAMED: u32 = 20;

/// Takes every row now waiting for `app` (in the caller's transaction), and says whose
/// removals are among them; [`drop_taken`] then deletes exactly those rows. A row committed
/// between the two is neither counted nor deleted: it stays, never dropped unseen.
pub(crate) async fn take_app(
    conn: &mut AnyConnection,
    app: AppId,
    tag: &str,
    now: OffsetDateTime,
) -> Result<DroppedRemovals> {
    sqlx::query("UPDATE scim_outbox SET lease_owner = $2, lease_until = $3 WHERE app_id = $1")
        .bind(app.to_db())
        .bind(tag)
        .bind(timestamp::format(now + time::Duration::days(1)))
        .execute(&mut *conn)
        .await?;
    let of_removals =
        format!("FROM scim_outbox o WHERE o.app_id = $1 AND o.lease_owner = $2 AND {REMOVAL}");
    let users: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(DISTINCT o.user_id) {of_removals}"
    )))
    .bind(app.to_db())
    .bind(tag)
    .fetch_one(&mut *conn)
    .await?;
    let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT o.user_id, MAX(o.user_name) AS user_name {of_removals} \
         GROUP BY o.user_id ORDER BY MAX(o.user_name), o.user_id LIMIT $3"
    )))
    .bind(app.to_db())
    .bind(tag)
    .bind(i64::from(DROPPED_NAMED))
    .fetch_all(&mut *conn)
    .await?;
    Ok(DroppedRemovals {
        users: u64::try_from(users).unwrap_or(0),
        named: rows
            .into_iter()
            .map(|(id, name)| Ok((UserId::from_db(&id)?, name)))
            .collect::<Result<_>>()?,
    })
}

/// Deletes the rows [`take_app`] took under `tag`.
pub(crate) async fn drop_taken(conn: &mut AnyConnection, app: AppId, tag: &str) -> Result<()> {
    sqlx::query("DELETE FROM scim_outbox WHERE app_id = $1 AND lease_owner = $2")
        .bind(app.to_db())
        .bind(tag)
        .execute(conn)
        .await?;
    Ok(())
}

/// What waits for one user at one application: the rows of the pair, summed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The application.
    pub app_id: AppId,
    /// Its entity ID.
    pub app: String,
    /// A removal (the user is no longer admitted there) or an update.
    pub kind: PendingKind,
    /// When the oldest waiting row was written.
    pub since: OffsetDateTime,
    /// Deliveries tried and failed so far.
    pub attempts: i64,
    /// When it is tried next.
    pub next_attempt_at: OffsetDateTime,
    /// The last failure, as the application or the network said it.
    pub last_error: Option<String>,
}

/// What a pending change does at the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    /// Takes the user's access away (deactivate or delete, as the connection says).
    Removal,
    /// Creates or updates the user.
    Update,
}

impl PendingKind {
    /// The API's and CLI's name.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingKind::Removal => "removal",
            PendingKind::Update => "update",
        }
    }
}

/// The most applications [`pending_of_user`] lists.
const PENDING_LISTED: i64 = 500;

/// What waits in the outbox for `user`, per application (by entity ID): one index step per
/// application into the pair index (`CROSS JOIN` holds SQLite to that order: without
/// statistics it otherwise scans the outbox, 5.8 ms instead of 0.02 ms at 100,000 rows).
pub(crate) async fn pending_of_user(store: &Store, user: UserId) -> Result<Vec<Pending>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT o.app_id, a.entity_id, MIN(o.created_at) AS since, MAX(o.attempts) AS attempts, \
         MIN(o.next_attempt_at) AS next_at, \
         (SELECT p.last_error FROM scim_outbox p WHERE p.app_id = o.app_id \
          AND p.user_id = o.user_id AND p.last_error IS NOT NULL ORDER BY p.seq DESC LIMIT 1) \
         AS last_error, \
         CASE WHEN {REMOVAL} THEN 'removal' ELSE 'update' END AS kind \
         FROM applications a CROSS JOIN scim_outbox o WHERE o.app_id = a.id AND o.user_id = $1 \
         GROUP BY o.app_id, o.user_id, a.entity_id ORDER BY a.entity_id LIMIT $2"
    ));
    let rows = sqlx::query(sql)
        .bind(user.to_db())
        .bind(PENDING_LISTED)
        .fetch_all(store.pool())
        .await?;
    rows.into_iter()
        .map(|row| {
            let when = |column: &str, what: &'static str| -> Result<OffsetDateTime> {
                timestamp::parse(what, &row.try_get::<String, _>(column)?)
            };
            Ok(Pending {
                app_id: AppId::from_db(&row.try_get::<String, _>("app_id")?)?,
                app: row.try_get("entity_id")?,
                kind: match row.try_get::<String, _>("kind")?.as_str() {
                    "removal" => PendingKind::Removal,
                    _ => PendingKind::Update,
                },
                since: when("since", "scim_outbox.created_at")?,
                attempts: row.try_get("attempts")?,
                next_attempt_at: when("next_at", "scim_outbox.next_attempt_at")?,
                last_error: row.try_get("last_error")?,
            })
        })
        .collect()
}

/// When the oldest waiting removal's row was written, if any: the health check's measure of
/// access not yet taken away. Walks the outbox from its oldest row to the first removal
/// (each row's removal rule is an index step).
pub(crate) async fn oldest_removal(store: &Store) -> Result<Option<OffsetDateTime>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT o.created_at FROM scim_outbox o WHERE {REMOVAL} ORDER BY o.seq LIMIT 1"
    ));
    let at: Option<String> = sqlx::query_scalar(sql).fetch_optional(store.pool()).await?;
    at.map(|t| timestamp::parse("scim_outbox.created_at", &t))
        .transpose()
}

/// The remote id an application gave the user, if we know it.
pub(crate) async fn remote_id(store: &Store, app: AppId, user: UserId) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT remote_id FROM scim_remote_ids WHERE app_id = $1 AND user_id = $2",
    )
    .bind(app.to_db())
    .bind(user.to_db())
    .fetch_optional(store.pool())
    .await?)
}

/// Records (or with `None` forgets) the remote id of a user at an application.
pub(crate) async fn set_remote_id(
    store: &Store,
    app: AppId,
    user: UserId,
    remote: Option<&str>,
) -> Result<()> {
    match remote {
        Some(remote) => sqlx::query(
            "INSERT INTO scim_remote_ids (app_id, user_id, remote_id, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (app_id, user_id) \
             DO UPDATE SET remote_id = excluded.remote_id, updated_at = excluded.updated_at",
        )
        .bind(app.to_db())
        .bind(user.to_db())
        .bind(remote)
        .bind(timestamp::format(store.now())),
        None => sqlx::query("DELETE FROM scim_remote_ids WHERE app_id = $1 AND user_id = $2")
            .bind(app.to_db())
            .bind(user.to_db()),
    }
    .execute(store.pool())
    .await
    .map_err(Error::from)?;
    Ok(())
}
