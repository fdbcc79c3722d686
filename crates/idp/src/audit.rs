//! The audit log: who changed what, with the state before and after.
//!
//! Every directory or application change writes its event inside the same transaction as the
//! change itself, so the log can never show a change that did not happen or miss one that did.
//! Secrets (password hashes) are never part of `before`/`after`.

mod batch;

pub use batch::AuditBatcher;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::store::sql::Sql;
use crate::store::{Store, timestamp};

/// Who made a change: a stable label (`cli:<os user>@<host>`, `user:<id>`, `api:<token id>`,
/// `system`, ...) that filters match on, and the name a person reads in the log (the
/// username, the token's name), kept as it was at the time of the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    label: String,
    name: Option<String>,
}

impl Actor {
    /// An actor with a caller-chosen label (e.g. `app:<id>`) and no separate name.
    pub fn new(label: impl Into<String>) -> Self {
        Actor {
            label: label.into(),
            name: None,
        }
    }

    /// An actor with a label and the name shown for it.
    pub fn named(label: impl Into<String>, name: impl Into<String>) -> Self {
        Actor {
            label: label.into(),
            name: Some(name.into()),
        }
    }

    /// The IdP itself (migrations, JIT, scheduled jobs).
    pub fn system() -> Self {
        Actor::new("system")
    }

    /// An administrator at the command line, named by their OS account (the binary passes
    /// `<user>@<host>`): labelled `cli:<who>`, and `<who>` is the name shown.
    pub fn cli(who: &str) -> Self {
        Actor::named(format!("cli:{who}"), who)
    }

    /// A directory user by ID alone (labelled `user:<id>`, no name recorded).
    pub fn user(id: crate::ids::UserId) -> Self {
        Actor::new(format!("user:{id}"))
    }

    /// A directory user acting in the console or the portal: labelled by ID (which filters
    /// match), named by their username.
    pub fn person(user: &crate::directory::User) -> Self {
        Actor::named(format!("user:{}", user.id), user.username.clone())
    }

    /// The label as stored.
    pub fn as_str(&self) -> &str {
        &self.label
    }

    /// The name recorded beside the label, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Monotonic position in the log (for paging).
    pub seq: i64,
    /// Globally unique event ID (for cross-referencing logs).
    pub id: Uuid,
    /// When the change was committed (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who made it: the stable label (`user:<id>`, `api:<token id>`, `cli:<user>@<host>`).
    pub actor: String,
    /// Their name when they made it (username, token name), where one was recorded.
    pub actor_name: Option<String>,
    /// What was done, e.g. `user.create`, `group.member_add`, `app.assign`.
    pub action: String,
    /// The kind of object changed: `user`, `group`, `app`, `key` (a signing key) or
    /// `key_store` (the database key store as a whole: import, rewrap).
    pub target_kind: String,
    /// The changed object's internal ID.
    pub target_id: Option<String>,
    /// A human name for the target (username, group name, entity ID) at the time.
    pub target_name: Option<String>,
    /// The object's state before the change (`None` for creations).
    pub before: Option<Value>,
    /// The object's state after the change (`None` for deletions).
    pub after: Option<Value>,
}

/// Which events to list; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events by this actor.
    pub actor: Option<String>,
    /// Only events with this action.
    pub action: Option<String>,
    /// Only events about this object ID.
    pub target_id: Option<String>,
    /// Only events by or about this user (its ID): what they did, and what was done to them.
    pub user_id: Option<String>,
    /// Only events at or after this time. With it or `until`, the events come newest first
    /// by their time (`at`, then `seq`), which an index serves; without either, by `seq`.
    pub since: Option<OffsetDateTime>,
    /// Only events before this time (with `since`, a time range).
    pub until: Option<OffsetDateTime>,
    /// Only events after the one with this `seq` in the listing's order (paging backwards).
    pub before_seq: Option<i64>,
    /// At most this many events (default 100, newest first).
    pub limit: Option<u32>,
}

/// A change about to be recorded.
#[derive(Debug)]
pub struct Change {
    /// What was done, e.g. `login.success`.
    pub action: &'static str,
    /// The kind of thing it was done to, e.g. `user`.
    pub target_kind: &'static str,
    /// Its ID.
    pub target_id: String,
    /// Its name as shown to admins.
    pub target_name: String,
    /// The state before (a JSON snapshot), where one makes sense.
    pub before: Option<Value>,
    /// The state after, or the details of the event.
    pub after: Option<Value>,
}

/// Writes one event on the given connection (the caller's transaction), stamped `at` (the
/// caller's [`crate::Store::now`], so the line and the change it records agree).
pub(crate) async fn record(
    conn: &mut AnyConnection,
    actor: &Actor,
    at: OffsetDateTime,
    change: Change,
) -> Result<()> {
    let json = |v: &Option<Value>| v.as_ref().map(Value::to_string);
    sqlx::query(
        "INSERT INTO audit_events \
         (id, at, actor, actor_name, action, target_kind, target_id, target_name, before, after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(Uuid::new_v4().hyphenated().to_string())
    .bind(timestamp::format(at))
    .bind(actor.as_str())
    .bind(actor.name())
    .bind(change.action)
    .bind(change.target_kind)
    .bind(change.target_id)
    .bind(change.target_name)
    .bind(json(&change.before))
    .bind(json(&change.after))
    .execute(conn)
    .await?;
    Ok(())
}

/// A line ready to store: what [`record`] writes, in the form the multi-row statements bind.
pub(crate) struct Line {
    id: String,
    at: String,
    actor: String,
    actor_name: Option<String>,
    action: &'static str,
    target_kind: &'static str,
    target_id: String,
    target_name: String,
    before: Option<String>,
    after: Option<String>,
}

impl Line {
    /// The line for `change` by `actor`, stamped `at`, with a fresh event ID.
    pub(crate) fn new(actor: &Actor, at: OffsetDateTime, change: Change) -> Line {
        let json = |v: &Option<Value>| v.as_ref().map(Value::to_string);
        Line {
            id: Uuid::new_v4().hyphenated().to_string(),
            at: timestamp::format(at),
            actor: actor.as_str().to_owned(),
            actor_name: actor.name().map(str::to_owned),
            action: change.action,
            target_kind: change.target_kind,
            before: json(&change.before),
            after: json(&change.after),
            target_id: change.target_id,
            target_name: change.target_name,
        }
    }
}

/// Most lines in one multi-row statement: 10 parameters each stays far below every
/// backend's limit (SQLite 32,766, PostgreSQL 65,535).
pub(crate) const MAX_LINES_PER_STATEMENT: usize = 1_000;

/// Stores `lines` with one multi-row `INSERT` per [`MAX_LINES_PER_STATEMENT`] on `conn`
/// (the caller's transaction, or a pooled connection for the group commit).
pub(crate) async fn insert_lines(conn: &mut AnyConnection, lines: &[Line]) -> Result<()> {
    for chunk in lines.chunks(MAX_LINES_PER_STATEMENT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = i * 10;
                let n: Vec<String> = (1..=10).map(|k| format!("${}", p + k)).collect();
                format!("({})", n.join(", "))
            })
            .collect();
        // Only placeholders are formatted in; every value is bound.
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_events \
             (id, at, actor, actor_name, action, target_kind, target_id, target_name, before, after) \
             VALUES {}",
            rows.join(", ")
        ));
        let mut query = sqlx::query(sql);
        for l in chunk {
            query = query
                .bind(l.id.as_str())
                .bind(l.at.as_str())
                .bind(l.actor.as_str())
                .bind(l.actor_name.as_deref())
                .bind(l.action)
                .bind(l.target_kind)
                .bind(l.target_id.as_str())
                .bind(l.target_name.as_str())
                .bind(l.before.as_deref())
                .bind(l.after.as_deref());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Serialises a value for the log; a failure here is a bug, so it is recorded, not hidden.
pub(crate) fn snapshot<T: Serialize>(value: &T) -> Option<Value> {
    Some(serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("<{e}>"))))
}

/// Read access to the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'s> {
    store: &'s Store,
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    seq: i64,
    id: String,
    at: String,
    actor: String,
    actor_name: Option<String>,
    action: String,
    target_kind: String,
    target_id: Option<String>,
    target_name: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

impl<'s> Audit<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Audit { store }
    }

    /// Writes one event on its own (no surrounding change), stamped `at`. Sign-in paths
    /// with a running [`AuditBatcher`] go through it instead.
    pub async fn record(&self, actor: &Actor, at: OffsetDateTime, change: Change) -> Result<()> {
        let mut conn = self.store.pool().acquire().await?;
        record(&mut conn, actor, at, change).await
    }

    /// Writes many events in one transaction, with multi-row statements: for loading a
    /// log (a migration from another system, a benchmark's history). Each line is exactly
    /// what [`Audit::record`] would write for it; all are stored or none.
    pub async fn record_many(&self, lines: Vec<(Actor, OffsetDateTime, Change)>) -> Result<()> {
        let lines: Vec<Line> = lines
            .into_iter()
            .map(|(actor, at, change)| Line::new(&actor, at, change))
            .collect();
        let mut tx = self.store.begin().await?;
        insert_lines(crate::store::conn(&mut tx), &lines).await?;
        crate::store::commit(tx).await
    }

    /// Events matching the filter, newest first.
    ///
    /// The statement names only the filters that are set ([`crate::store::sql`]), so each
    /// is a plain predicate an index serves (migration 0441: actor, action and target, each
    /// with `seq` for the order); `before_seq` is the keyset cursor.
    pub async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        let mut sql = listing(filter);
        sql.push(" LIMIT ")
            .int(i64::from(filter.limit.unwrap_or(100)));
        let rows: Vec<EventRow> = sql.fetch_all(self.store.pool()).await?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    /// The database's plan for a page of this listing, for the tests that check an index
    /// serves every filter.
    #[doc(hidden)]
    pub async fn explain_list(&self, filter: &AuditFilter) -> Result<String> {
        let mut sql = listing(filter);
        sql.push(" LIMIT ").int(100);
        sql.plan(
            self.store.pool(),
            self.store.backend() == crate::store::Backend::Postgres,
        )
        .await
    }

    /// Deletes the events from before `cutoff` (`[audit] retain_days`), a batch at a time so
    /// no statement holds the database long, then records the sweep itself as an
    /// `audit.purged` event by the system, so a gap in the log is never unexplained. Returns
    /// how many went.
    pub async fn purge_before(&self, cutoff: OffsetDateTime) -> Result<u64> {
        const BATCH: i64 = 5_000;
        let before = crate::store::timestamp::format(cutoff);
        let mut purged = 0u64;
        loop {
            let gone = sqlx::query(
                "DELETE FROM audit_events WHERE seq IN \
                 (SELECT seq FROM audit_events WHERE at < $1 ORDER BY at LIMIT $2)",
            )
            .bind(&before)
            .bind(BATCH)
            .execute(self.store.pool())
            .await?
            .rows_affected();
            purged += gone;
            if gone < u64::try_from(BATCH).unwrap_or(u64::MAX) {
                break;
            }
        }
        if purged > 0 {
            self.record(
                &Actor::system(),
                self.store.now(),
                Change {
                    action: "audit.purged",
                    target_kind: "audit",
                    target_id: String::new(),
                    target_name: String::new(),
                    before: None,
                    after: Some(serde_json::json!({ "before": before, "events": purged })),
                },
            )
            .await?;
        }
        Ok(purged)
    }

    /// How many events the log holds.
    pub async fn count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
            .fetch_one(self.store.pool())
            .await?)
    }
}

/// The listing statement for `filter`, without its LIMIT: a fixed fragment per filter that
/// is set, never `($n IS NULL OR ...)` (which keeps the planner off the indexes).
fn listing(filter: &AuditFilter) -> Sql {
    let mut sql = Sql::new(
        "SELECT seq, id, at, actor, actor_name, action, target_kind, target_id, target_name, \
         before, after FROM audit_events WHERE 1 = 1",
    );
    if let Some(actor) = &filter.actor {
        sql.push(" AND actor = ").text(actor.clone());
    }
    if let Some(action) = &filter.action {
        sql.push(" AND action = ").text(action.clone());
    }
    if let Some(target) = &filter.target_id {
        sql.push(" AND target_id = ").text(target.clone());
    }
    if let Some(user) = &filter.user_id {
        // What they did (as `user:<id>`) and what was done to them: two index ranges.
        sql.push(" AND (actor = ")
            .text(format!("user:{user}"))
            .push(" OR target_id = ")
            .text(user.clone())
            .push(")");
    }
    let window = filter.since.is_some() || filter.until.is_some();
    match (window, filter.before_seq) {
        // A time window is read from the (at, seq) index in its own order, newest first
        // (migration 0460), and so is the page after a cursor: after the cursor's line in
        // that order. Walking `seq` and testing `at` reads the whole log when the window
        // holds less than a page; reading the window through `at` and sorting it by `seq`
        // costs the window's size (seconds for a day of a busy log).
        (true, before) => {
            if let Some(since) = filter.since {
                sql.push(" AND at >= ").text(timestamp::format(since));
            }
            if let Some(until) = filter.until {
                sql.push(" AND at < ").text(timestamp::format(until));
            }
            if let Some(before) = before {
                sql.push(" AND (at, seq) < ((SELECT c.at FROM audit_events c WHERE c.seq = ")
                    .int(before)
                    .push("), ")
                    .int(before)
                    .push(")");
            }
            sql.push(" ORDER BY at DESC, seq DESC");
        }
        (false, before) => {
            if let Some(before) = before {
                sql.push(" AND seq < ").int(before);
            }
            sql.push(" ORDER BY seq DESC");
        }
    }
    sql
}

impl EventRow {
    pub(crate) fn into_event(self) -> Result<AuditEvent> {
        let json = |what: &'static str, text: Option<String>| -> Result<Option<Value>> {
            text.map(|t| serde_json::from_str(&t).map_err(|e| Error::corrupt(what, e)))
                .transpose()
        };
        Ok(AuditEvent {
            seq: self.seq,
            id: Uuid::parse_str(&self.id).map_err(|e| Error::corrupt("audit_events.id", e))?,
            at: timestamp::parse("audit_events.at", &self.at)?,
            actor: self.actor,
            actor_name: self.actor_name,
            action: self.action,
            target_kind: self.target_kind,
            target_id: self.target_id,
            target_name: self.target_name,
            before: json("audit_events.before", self.before)?,
            after: json("audit_events.after", self.after)?,
        })
    }
}
