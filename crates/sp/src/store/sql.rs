//! [`AccountStore`] over SQLite or PostgreSQL through the sqlx Any driver.
//!
//! The SQL is written once for both backends (`$n` placeholders, `ON CONFLICT DO NOTHING`,
//! TEXT/BIGINT columns); the only difference is the row lock PostgreSQL takes on lookups. The
//! SQLite login writer (`store::writer`) runs the same statements and decodes rows through the
//! same [`AccountColumns`].

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Account, AccountStore, AccountTx, AuditEvent, AuditKind, Backend, Database, ProvisionedBy,
    RoleOrigin,
};
use crate::error::{SetFieldError, StoreError};
use crate::jit::{EMAIL_FIELD, IdentityKey, PlanAction, ProvisioningPlan, normalize_email};
use crate::settings::AuditSettings;

/// Accounts, roles and audit log in SQL.
#[derive(Debug, Clone)]
pub struct SqlAccountStore {
    db: Database,
}

/// A transaction of [`SqlAccountStore`]; rolled back when dropped uncommitted.
#[derive(Debug)]
pub struct SqlAccountTx {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) backend: Backend,
}

macro_rules! select_account {
    () => {
        "SELECT id, idp_entity_id, identity_key, email, fields, provisioned_by, active, \
         created_at, updated_at FROM sp_accounts "
    };
}

/// An account with its roles in one statement (one row per role, or one row with NULL role
/// columns): a login's lookup is one trip to the database, not two. The SQLite writer reads
/// the columns by position: keep their order.
macro_rules! select_account_with_roles {
    () => {
        "SELECT a.id AS id, a.idp_entity_id AS idp_entity_id, a.identity_key AS identity_key, \
         a.email AS email, a.fields AS fields, a.provisioned_by AS provisioned_by, \
         a.active AS active, a.created_at AS created_at, a.updated_at AS updated_at, r.role AS role, \
         r.managed AS managed FROM sp_accounts a \
         LEFT JOIN sp_account_roles r ON r.account_id = a.id "
    };
}

pub(crate) const BY_IDENTITY: &str = concat!(
    select_account_with_roles!(),
    "WHERE a.idp_entity_id = $1 AND a.identity_key = $2"
);
// PostgreSQL cannot lock the nullable side of an outer join; the account row is the lock.
const BY_IDENTITY_LOCKED: &str = concat!(
    select_account_with_roles!(),
    "WHERE a.idp_entity_id = $1 AND a.identity_key = $2 FOR UPDATE OF a"
);
pub(crate) const BY_EMAIL: &str = concat!(select_account_with_roles!(), "WHERE a.email = $1");
const BY_EMAIL_LOCKED: &str = concat!(
    select_account_with_roles!(),
    "WHERE a.email = $1 FOR UPDATE OF a"
);
const BY_ID: &str = concat!(select_account!(), "WHERE id = $1");
const ALL: &str = concat!(select_account!(), "ORDER BY created_at, id");

// The statements of a login, shared with the SQLite writer (`store::writer`), which binds the
// same `$n` parameters by name.
pub(crate) const INSERT_ACCOUNT: &str = "INSERT INTO sp_accounts (id, idp_entity_id, identity_key, \
    email, fields, provisioned_by, created_at, updated_at, active) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING";
pub(crate) const UPDATE_ACCOUNT: &str = "UPDATE sp_accounts SET idp_entity_id = $2, \
    identity_key = $3, email = $4, fields = $5, updated_at = $6, active = $7 WHERE id = $1";
pub(crate) const GRANT_ROLE: &str = "INSERT INTO sp_account_roles (account_id, role, managed) \
    VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
pub(crate) const REVOKE_MANAGED_ROLE: &str =
    "DELETE FROM sp_account_roles WHERE account_id = $1 AND role = $2 AND managed = 1";
/// When the account of identity (`$1`, `$2`) was deleted by SCIM, if that is remembered still
/// at `$3` ([`AccountTx::deleted_at`]).
pub(crate) const DELETED_AT: &str = "SELECT deleted_at FROM sp_deleted_identities \
    WHERE idp_entity_id = $1 AND identity_key = $2 AND expires_at > $3";
pub(crate) const INSERT_AUDIT: &str = "INSERT INTO sp_audit (id, operation_id, at, kind, \
    account_id, idp_entity_id, identity_key, session_index, plan, actor) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// The newest `$1` audit events on SQLite, by the order they were committed in (`seq`, the
/// table's rowid).
const AUDIT_LOG_SQLITE: &str = "SELECT id, operation_id, at, kind, account_id, idp_entity_id, \
    identity_key, session_index, plan, actor FROM sp_audit ORDER BY seq DESC LIMIT $1";

/// [`AUDIT_LOG_SQLITE`] on PostgreSQL, by the primary key.
const AUDIT_LOG_POSTGRES: &str = "SELECT id, operation_id, at, kind, account_id, idp_entity_id, \
    identity_key, session_index, plan, actor FROM sp_audit ORDER BY id DESC LIMIT $1";

/// Audit events [`SqlAccountStore::purge_audit`] deletes in one transaction at most, so that a
/// purge of millions never holds the write lock for long against the logins (on SQLite, a
/// few milliseconds a batch).
pub const AUDIT_PURGE_BATCH: u32 = 1_000;

/// SQLite: the next window of the log after `seq` `$1` in commit order (the log's time
/// order), read from the rowid's own b-tree: its last `seq` and how many rows it holds, at
/// most `$2`.
const AUDIT_WINDOW_SQLITE: &str = "SELECT max(seq) AS hi, count(*) AS n FROM \
    (SELECT seq FROM sp_audit WHERE seq > $1 ORDER BY seq LIMIT $2)";

/// SQLite: the events of the window `($1, $2]` older than `$3`. The time is checked row by
/// row, so an event that is not older is kept wherever it sits in the window.
const AUDIT_PURGE_SQLITE: &str = "DELETE FROM sp_audit WHERE seq > $1 AND seq <= $2 AND at < $3";

/// PostgreSQL: at most `$3` events older than `$2`, found along the primary key below `$1`,
/// the least ID an event of the cutoff's millisecond can have ([`AuditEvent::id_at`]).
const AUDIT_PURGE_POSTGRES: &str = "DELETE FROM sp_audit WHERE id IN (SELECT id FROM sp_audit \
    WHERE id < $1 AND at < $2 ORDER BY id LIMIT $3)";

/// PostgreSQL: at most `$2` events older than `$1` among those whose IDs are not in time order
/// (random version 4 IDs, written before [`AuditEvent::id_at`]), by the partial index
/// `sp_audit_unordered_at` that holds only them (migration `20261206000050`). Its `WHERE` is
/// the index's, word for word, which is what lets the planner use it.
const AUDIT_PURGE_UNORDERED_POSTGRES: &str = "DELETE FROM sp_audit WHERE id IN (SELECT id FROM \
    sp_audit WHERE substr(id, 15, 1) <> '7' AND at < $1 ORDER BY at LIMIT $2)";

/// [`INSERT_AUDIT`] only if the assertion `$12` issued at `$11` is fresh, recording it until
/// `$13` (unless an entry unexpired at `$14` holds it, as [`crate::replay::RECORD_ASSERTION`]):
/// one trip for both. PostgreSQL only (a data-modifying `WITH`).
const INSERT_AUDIT_ONCE: &str = "WITH fresh AS (INSERT INTO sp_replay_cache (issued_at, \
    assertion_id, not_on_or_after) VALUES ($11, $12, $13) ON CONFLICT (issued_at, assertion_id) \
    DO UPDATE SET not_on_or_after = excluded.not_on_or_after \
    WHERE sp_replay_cache.not_on_or_after <= $14 \
    RETURNING 1) INSERT INTO sp_audit (id, operation_id, at, kind, account_id, idp_entity_id, \
    identity_key, session_index, plan, actor) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
    WHERE EXISTS (SELECT 1 FROM fresh)";

impl SqlAccountStore {
    /// A store over an already migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The database, to build a [`crate::replay::SqlReplayCache`] on the same pool.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// One account by ID.
    pub async fn account(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        let row = sqlx::query(BY_ID)
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(row) => Ok(Some(load_roles(&mut conn, account_from_row(&row)?).await?)),
            None => Ok(None),
        }
    }

    /// Every account, oldest first (for admin listings and tests).
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        let rows = sqlx::query(ALL).fetch_all(&mut *conn).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(load_roles(&mut conn, account_from_row(row)?).await?);
        }
        Ok(out)
    }

    /// Creates an account on the application's behalf: a local account when `identity` is
    /// `None`, or a pre-provisioned one that JIT will recognise at its first login.
    ///
    /// Returns `None` when an account with that identity or e-mail already exists.
    pub async fn create_account(
        &self,
        identity: Option<IdentityKey>,
        fields: BTreeMap<String, String>,
        now: OffsetDateTime,
    ) -> Result<Option<Account>, StoreError> {
        let account = Account {
            id: Uuid::new_v4(),
            identity,
            email: fields.get(EMAIL_FIELD).map(|e| normalize_email(e)),
            fields,
            roles: BTreeMap::new(),
            provisioned_by: ProvisionedBy::App,
            active: true,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.begin().await?;
        if !tx.insert_account(&account).await? {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(account))
    }

    /// Grants `role` by hand, as an app admin does. A role JIT had granted becomes manual, so
    /// it survives the IdP dropping the group: the admin's explicit decision wins.
    pub async fn grant_manual_role(&self, account_id: Uuid, role: &str) -> Result<(), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        sqlx::query(
            "INSERT INTO sp_account_roles (account_id, role, managed) VALUES ($1, $2, 0) \
             ON CONFLICT (account_id, role) DO UPDATE SET managed = 0",
        )
        .bind(account_id.to_string())
        .bind(role.to_owned())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Sets one field as the application does (for app-owned fields, or a user's own edits).
    /// Returns `false` when the account does not exist, and [`SetFieldError::EmailTaken`]
    /// when the field is the e-mail and another account holds the address (also one that
    /// took it after the application looked): nothing is written then.
    pub async fn set_field(
        &self,
        account_id: Uuid,
        field: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<bool, SetFieldError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(BY_ID)
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx.tx)
            .await
            .map_err(StoreError::from)?;
        let Some(row) = row else {
            return Ok(false);
        };
        let mut account = account_from_row(&row)?;
        account.fields.insert(field.to_owned(), value.to_owned());
        account.email = account.fields.get(EMAIL_FIELD).map(|e| normalize_email(e));
        account.updated_at = now;
        match tx.update_account(&account).await {
            Err(StoreError::Database(e)) if is_email_taken(&e) => {
                return Err(SetFieldError::EmailTaken);
            }
            done => done?,
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The audit log, oldest first, at most `limit` events from the newest.
    ///
    /// Read by the log's only order, since each index on it would be one more page written
    /// per login: on SQLite `seq`, the rowid, the order events were committed in (the table
    /// has no index at all, migration `20261206000040`); on PostgreSQL the primary key, the
    /// IDs, which begin with their time ([`AuditEvent::id_at`]), so events of the same
    /// millisecond come in no particular order there.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let query = match self.db.backend() {
            Backend::Sqlite => AUDIT_LOG_SQLITE,
            Backend::Postgres => AUDIT_LOG_POSTGRES,
        };
        let rows = sqlx::query(query)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        let mut events = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        events.reverse();
        Ok(events)
    }
}

/// What one [`SqlAccountStore::purge_audit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPurge {
    /// Events deleted.
    pub events: u64,
    /// Transactions that deleted them, each at most [`AUDIT_PURGE_BATCH`] events.
    pub batches: u32,
    /// The operation ID of the `audit.purged` event recording the purge; `None` when nothing
    /// was old enough (no event is written then, as the IdP's purge does).
    pub operation_id: Option<Uuid>,
}

impl SqlAccountStore {
    /// Deletes the audit events from before `before` (`now` minus the retention of
    /// [`AuditSettings`](crate::settings::AuditSettings)), at most [`AUDIT_PURGE_BATCH`] a
    /// transaction, then, if it deleted any, records the purge as an `audit.purged` event at
    /// `now` saying how many and the cutoff. That event is written after the last deletion,
    /// so the purge that wrote it never deletes it.
    ///
    /// Each batch is found by the log's order, never by a scan of the table: on SQLite a
    /// window of the next events by `seq` (the rowid, commit order, which is time order), and
    /// the walk stops at the first window with nothing older than the cutoff; on PostgreSQL
    /// the primary key's range below the cutoff's IDs, then the partial index of the events
    /// older than time-ordered IDs. Logins go on meanwhile: a batch holds the write lock
    /// (SQLite) or its rows (PostgreSQL) only while it deletes, and an event newer than the
    /// cutoff is never deleted, wherever it sits.
    pub async fn purge_audit(
        &self,
        before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<AuditPurge, StoreError> {
        let cutoff = millis(before);
        let batch = i64::from(AUDIT_PURGE_BATCH);
        let mut purge = AuditPurge {
            events: 0,
            batches: 0,
            operation_id: None,
        };
        let mut tally = |gone: u64| {
            if gone > 0 {
                purge.events += gone;
                purge.batches += 1;
            }
            gone
        };
        match self.db.backend() {
            Backend::Sqlite => {
                let mut after = i64::MIN;
                loop {
                    let window = sqlx::query(AUDIT_WINDOW_SQLITE)
                        .bind(after)
                        .bind(batch)
                        .fetch_one(self.db.pool())
                        .await?;
                    let last: Option<i64> = window.try_get("hi")?;
                    let rows: i64 = window.try_get("n")?;
                    let Some(last) = last else {
                        break;
                    };
                    let gone = sqlx::query(AUDIT_PURGE_SQLITE)
                        .bind(after)
                        .bind(last)
                        .bind(cutoff)
                        .execute(self.db.pool())
                        .await?
                        .rows_affected();
                    // A window with nothing old enough is past the cutoff, and so is the rest.
                    if tally(gone) == 0 || rows < batch {
                        break;
                    }
                    after = last;
                }
            }
            Backend::Postgres => {
                let least_id = uuid::Builder::from_unix_timestamp_millis(
                    u64::try_from(cutoff).unwrap_or(0),
                    &[0; 10],
                )
                .into_uuid()
                .to_string();
                let full = u64::from(AUDIT_PURGE_BATCH);
                loop {
                    let gone = sqlx::query(AUDIT_PURGE_POSTGRES)
                        .bind(least_id.clone())
                        .bind(cutoff)
                        .bind(batch)
                        .execute(self.db.pool())
                        .await?
                        .rows_affected();
                    if tally(gone) < full {
                        break;
                    }
                }
                loop {
                    let gone = sqlx::query(AUDIT_PURGE_UNORDERED_POSTGRES)
                        .bind(cutoff)
                        .bind(batch)
                        .execute(self.db.pool())
                        .await?
                        .rows_affected();
                    if tally(gone) < full {
                        break;
                    }
                }
            }
        }
        if purge.events == 0 {
            return Ok(purge);
        }
        let operation_id = crate::ids::random_uuid();
        let event = AuditEvent {
            id: AuditEvent::id_at(now),
            operation_id,
            at: now,
            kind: AuditKind::Purged,
            account_id: None,
            idp_entity_id: String::new(),
            identity_key: None,
            session_index: None,
            actor: Some("system".to_owned()),
            plan: ProvisioningPlan {
                identity: None,
                action: PlanAction::Purge {
                    before,
                    events: purge.events,
                },
            },
        };
        let mut tx = self.begin().await?;
        tx.append_audit(&event).await?;
        tx.commit().await?;
        purge.operation_id = Some(operation_id);
        Ok(purge)
    }

    /// [`SqlAccountStore::purge_audit`] of the events older than `settings` keep, as of
    /// `now`: what an application runs now and then (the demo apps every ten minutes).
    /// `None` when the settings keep every event (`retain_days = 0`, the default): nothing
    /// is deleted.
    ///
    /// The application decides when: the store reads no clock.
    pub async fn apply_audit_retention(
        &self,
        settings: &AuditSettings,
        now: OffsetDateTime,
    ) -> Result<Option<AuditPurge>, StoreError> {
        // A cutoff before the first instant there is leaves nothing older to delete.
        match settings.retention().and_then(|keep| now.checked_sub(keep)) {
            Some(before) => self.purge_audit(before, now).await.map(Some),
            None => Ok(None),
        }
    }

    /// The query plans of [`SqlAccountStore::purge_audit`]'s statements, one line per step,
    /// for the test that no batch scans the table (on PostgreSQL with sequential scans
    /// discouraged, as they would be over a long log). Not part of the API.
    #[doc(hidden)]
    pub async fn explain_audit_purge(&self) -> Result<Vec<String>, StoreError> {
        let mut tx = self.db.pool().begin().await?;
        let mut lines = Vec::new();
        match self.db.backend() {
            Backend::Sqlite => {
                for (sql, binds) in [(AUDIT_WINDOW_SQLITE, 2), (AUDIT_PURGE_SQLITE, 3)] {
                    let text = format!("EXPLAIN QUERY PLAN {sql}");
                    // Built from this module's constants only.
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for _ in 0..binds {
                        query = query.bind(0i64);
                    }
                    for row in query.fetch_all(&mut *tx).await? {
                        lines.push(row.try_get::<String, _>("detail")?);
                    }
                }
            }
            Backend::Postgres => {
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut *tx)
                    .await?;
                // The statements as they run, but for literals in place of the parameters.
                let statements = [
                    AUDIT_PURGE_POSTGRES
                        .replace("$1", "'0'")
                        .replace("$2", "0")
                        .replace("$3", "1000"),
                    AUDIT_PURGE_UNORDERED_POSTGRES
                        .replace("$1", "0")
                        .replace("$2", "1000"),
                ];
                for sql in statements {
                    let text = format!("EXPLAIN {sql}");
                    // Built from this module's constants only.
                    let query = sqlx::query(sqlx::AssertSqlSafe(text));
                    for row in query.fetch_all(&mut *tx).await? {
                        lines.push(row.try_get::<String, _>(0)?);
                    }
                }
            }
        }
        Ok(lines)
    }
}

impl AccountStore for SqlAccountStore {
    type Tx = SqlAccountTx;

    async fn begin(&self) -> Result<SqlAccountTx, StoreError> {
        Ok(SqlAccountTx {
            tx: self.db.begin().await?,
            backend: self.db.backend(),
        })
    }

    fn database(&self) -> Option<&Database> {
        Some(&self.db)
    }
}

impl AccountTx for SqlAccountTx {
    async fn find_by_identity(
        &mut self,
        identity: &IdentityKey,
    ) -> Result<Option<Account>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => BY_IDENTITY,
            Backend::Postgres => BY_IDENTITY_LOCKED,
        };
        let rows = sqlx::query(sql)
            .bind(identity.idp_entity_id.clone())
            .bind(identity.key.clone())
            .fetch_all(&mut *self.tx)
            .await?;
        account_with_roles_rows(&rows)
    }

    async fn find_by_email(&mut self, email: &str) -> Result<Option<Account>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => BY_EMAIL,
            Backend::Postgres => BY_EMAIL_LOCKED,
        };
        let rows = sqlx::query(sql)
            .bind(email.to_owned())
            .fetch_all(&mut *self.tx)
            .await?;
        account_with_roles_rows(&rows)
    }

    async fn insert_account(&mut self, account: &Account) -> Result<bool, StoreError> {
        let (idp, key) = identity_columns(account);
        let done = sqlx::query(INSERT_ACCOUNT)
            .bind(account.id.to_string())
            .bind(idp)
            .bind(key)
            .bind(account.email.clone())
            .bind(fields_json(&account.fields)?)
            .bind(account.provisioned_by.as_str())
            .bind(millis(account.created_at))
            .bind(millis(account.updated_at))
            .bind(i64::from(account.active))
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn update_account(&mut self, account: &Account) -> Result<(), StoreError> {
        let (idp, key) = identity_columns(account);
        sqlx::query(UPDATE_ACCOUNT)
            .bind(account.id.to_string())
            .bind(idp)
            .bind(key)
            .bind(account.email.clone())
            .bind(fields_json(&account.fields)?)
            .bind(millis(account.updated_at))
            .bind(i64::from(account.active))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// On PostgreSQL a failed statement aborts its transaction, so the update runs in a
    /// savepoint rolled back when the e-mail or identity index refuses it (two more trips,
    /// paid only by the rare login that moves an address or links an account). On SQLite a
    /// refused statement undoes only itself.
    async fn update_account_new_email(&mut self, account: &Account) -> Result<bool, StoreError> {
        let postgres = self.backend == Backend::Postgres;
        if postgres {
            sqlx::query("SAVEPOINT jit_email")
                .execute(&mut *self.tx)
                .await?;
        }
        match self.update_account(account).await {
            Ok(()) => {
                if postgres {
                    sqlx::query("RELEASE SAVEPOINT jit_email")
                        .execute(&mut *self.tx)
                        .await?;
                }
                Ok(true)
            }
            Err(StoreError::Database(e)) if is_email_taken(&e) || is_identity_taken(&e) => {
                if postgres {
                    sqlx::query("ROLLBACK TO SAVEPOINT jit_email")
                        .execute(&mut *self.tx)
                        .await?;
                    sqlx::query("RELEASE SAVEPOINT jit_email")
                        .execute(&mut *self.tx)
                        .await?;
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn deleted_at(
        &mut self,
        identity: &IdentityKey,
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(DELETED_AT)
            .bind(identity.idp_entity_id.clone())
            .bind(identity.key.clone())
            .bind(millis(now))
            .fetch_optional(&mut *self.tx)
            .await?;
        at.map(|ms| from_millis("sp_deleted_identities", ms))
            .transpose()
    }

    async fn grant_role(
        &mut self,
        account_id: Uuid,
        role: &str,
        origin: RoleOrigin,
    ) -> Result<(), StoreError> {
        sqlx::query(GRANT_ROLE)
            .bind(account_id.to_string())
            .bind(role.to_owned())
            .bind(i64::from(origin == RoleOrigin::Managed))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn revoke_managed_role(
        &mut self,
        account_id: Uuid,
        role: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(REVOKE_MANAGED_ROLE)
            .bind(account_id.to_string())
            .bind(role.to_owned())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn append_audit(&mut self, event: &AuditEvent) -> Result<(), StoreError> {
        audit_query(INSERT_AUDIT, event)?
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    fn records_with_audit(&self) -> bool {
        self.backend == Backend::Postgres
    }

    async fn append_audit_once(
        &mut self,
        event: &AuditEvent,
        assertion_id: &str,
        issued_at: OffsetDateTime,
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        if self.backend != Backend::Postgres {
            if !self
                .record_assertion(assertion_id, issued_at, not_on_or_after, now)
                .await?
            {
                return Ok(false);
            }
            self.append_audit(event).await?;
            return Ok(true);
        }
        let done = audit_query(INSERT_AUDIT_ONCE, event)?
            .bind(millis(issued_at))
            .bind(assertion_id.to_owned())
            .bind(millis(not_on_or_after))
            .bind(millis(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_assertion(
        &mut self,
        assertion_id: &str,
        issued_at: OffsetDateTime,
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        crate::replay::record(&mut self.tx, assertion_id, issued_at, not_on_or_after, now).await
    }

    async fn use_pending_request(
        &mut self,
        relay_state: &str,
        request_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(crate::login::USE_PENDING)
            .bind(relay_state.to_owned())
            .bind(request_id.to_owned())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// The name PostgreSQL gives the unique index on accounts' e-mail addresses (migration
/// `20261128000001`), and the column SQLite names when it refuses a write to it.
const EMAIL_INDEX: &str = "sp_accounts_email";
pub(crate) const EMAIL_COLUMN: &str = "sp_accounts.email";

/// The unique index on accounts' identities, and the columns SQLite names when it refuses a
/// write to it.
const IDENTITY_INDEX: &str = "sp_accounts_identity";
pub(crate) const IDENTITY_COLUMNS: &str = "sp_accounts.idp_entity_id, sp_accounts.identity_key";

/// Whether `e` is the unique index on accounts' e-mail refusing a write: another account
/// holds the address.
fn is_email_taken(e: &sqlx::Error) -> bool {
    is_taken(e, EMAIL_INDEX, EMAIL_COLUMN)
}

/// Whether `e` is the unique index on accounts' identities refusing a write: another
/// account is linked to the identity.
fn is_identity_taken(e: &sqlx::Error) -> bool {
    is_taken(e, IDENTITY_INDEX, IDENTITY_COLUMNS)
}

/// Every unique index whose refusal of a write means a value is another row's: PostgreSQL's
/// name for it and the columns SQLite's message names. Accounts' e-mail and identity (a
/// login's conflicts), SCIM users' `userName` and groups' `displayName` (a SCIM write's).
const TAKEN_INDEXES: [(&str, &str); 4] = [
    (EMAIL_INDEX, EMAIL_COLUMN),
    (IDENTITY_INDEX, IDENTITY_COLUMNS),
    ("sp_accounts_scim_user_name", "sp_accounts.scim_user_name"),
    ("sp_scim_groups_name", "sp_scim_groups.name_key"),
];

/// Whether `e` is one of [`TAKEN_INDEXES`] refusing a write: a concurrent write took the
/// name, address or identity (a conflict to answer, not an outage). Any other constraint
/// (a primary key, a foreign key) is not.
pub(crate) fn is_value_taken(e: &sqlx::Error) -> bool {
    TAKEN_INDEXES
        .iter()
        .any(|(index, columns)| is_taken(e, index, columns))
}

/// Whether `e` is the unique index `index` (PostgreSQL's name for it; on SQLite the message
/// names its `columns`) refusing a write.
fn is_taken(e: &sqlx::Error, index: &str, columns: &str) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.is_unique_violation() && (d.constraint() == Some(index) || d.message().contains(columns))
    })
}

/// `sql` with an audit event's columns bound as `$1`..`$10`, in [`INSERT_AUDIT`]'s order.
fn audit_query(
    sql: &'static str,
    event: &AuditEvent,
) -> Result<sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>, StoreError> {
    Ok(sqlx::query(sql)
        .bind(event.id.to_string())
        .bind(event.operation_id.to_string())
        .bind(millis(event.at))
        .bind(event.kind.as_str())
        .bind(event.account_id.map(|id| id.to_string()))
        .bind(event.idp_entity_id.clone())
        .bind(event.identity_key.clone())
        .bind(event.session_index.clone())
        .bind(plan_json(event)?)
        .bind(event.actor.clone()))
}

pub(crate) fn identity_columns(account: &Account) -> (Option<String>, Option<String>) {
    match &account.identity {
        Some(identity) => (
            Some(identity.idp_entity_id.clone()),
            Some(identity.key.clone()),
        ),
        None => (None, None),
    }
}

pub(crate) fn fields_json(fields: &BTreeMap<String, String>) -> Result<String, StoreError> {
    serde_json::to_string(fields).map_err(|e| StoreError::Corrupt {
        table: "sp_accounts",
        detail: e.to_string(),
    })
}

pub(crate) fn plan_json(event: &AuditEvent) -> Result<String, StoreError> {
    serde_json::to_string(&event.plan).map_err(|e| StoreError::Corrupt {
        table: "sp_audit",
        detail: e.to_string(),
    })
}

/// Unix milliseconds; saturates far outside any realistic clock rather than wrapping.
pub(crate) fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_millis(table: &'static str, ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|e| {
        StoreError::Corrupt {
            table,
            detail: e.to_string(),
        }
    })
}

fn uuid(table: &'static str, text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

/// An account row's columns as either driver reads them, before they are checked.
pub(crate) struct AccountColumns {
    pub(crate) id: String,
    pub(crate) idp_entity_id: Option<String>,
    pub(crate) identity_key: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) fields: String,
    pub(crate) provisioned_by: String,
    pub(crate) active: i64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

impl AccountColumns {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.try_get("id")?,
            idp_entity_id: row.try_get("idp_entity_id")?,
            identity_key: row.try_get("identity_key")?,
            email: row.try_get("email")?,
            fields: row.try_get("fields")?,
            provisioned_by: row.try_get("provisioned_by")?,
            active: row.try_get("active")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// The account these columns hold (without roles), or why they cannot be one.
    fn into_account(self) -> Result<Account, StoreError> {
        const T: &str = "sp_accounts";
        let id = self.id;
        let identity = match (self.idp_entity_id, self.identity_key) {
            (Some(idp_entity_id), Some(key)) => Some(IdentityKey { idp_entity_id, key }),
            (None, None) => None,
            _ => {
                return Err(StoreError::Corrupt {
                    table: T,
                    detail: format!("account {id} has half an identity"),
                });
            }
        };
        Ok(Account {
            id: uuid(T, &id)?,
            identity,
            email: self.email,
            fields: serde_json::from_str(&self.fields).map_err(|e| StoreError::Corrupt {
                table: T,
                detail: e.to_string(),
            })?,
            roles: BTreeMap::new(),
            provisioned_by: match self.provisioned_by.as_str() {
                "jit" => ProvisionedBy::Jit,
                "app" => ProvisionedBy::App,
                other => {
                    return Err(StoreError::Corrupt {
                        table: T,
                        detail: format!("provisioned_by `{other}`"),
                    });
                }
            },
            active: self.active != 0,
            created_at: from_millis(T, self.created_at)?,
            updated_at: from_millis(T, self.updated_at)?,
        })
    }
}

fn account_from_row(row: &AnyRow) -> Result<Account, StoreError> {
    AccountColumns::from_row(row)?.into_account()
}

/// The account of a [`select_account_with_roles`] result, with every role its rows carry.
/// The unique indexes it is looked up by make every row the same account.
fn account_with_roles_rows(rows: &[AnyRow]) -> Result<Option<Account>, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let roles = rows
        .iter()
        .map(|row| Ok((row.try_get("role")?, row.try_get("managed")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    account_with_roles(AccountColumns::from_row(first)?, roles).map(Some)
}

/// The account in `columns` with the roles of its joined rows (`None` where it has none).
pub(crate) fn account_with_roles(
    columns: AccountColumns,
    roles: Vec<(Option<String>, Option<i64>)>,
) -> Result<Account, StoreError> {
    let mut account = columns.into_account()?;
    for (role, managed) in roles {
        if let (Some(role), Some(managed)) = (role, managed) {
            account.roles.insert(role, role_origin(managed));
        }
    }
    Ok(account)
}

fn role_origin(managed: i64) -> RoleOrigin {
    if managed != 0 {
        RoleOrigin::Managed
    } else {
        RoleOrigin::Manual
    }
}

async fn load_roles(
    conn: &mut sqlx::AnyConnection,
    mut account: Account,
) -> Result<Account, StoreError> {
    let rows = sqlx::query("SELECT role, managed FROM sp_account_roles WHERE account_id = $1")
        .bind(account.id.to_string())
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let role: String = row.try_get("role")?;
        let managed: i64 = row.try_get("managed")?;
        account.roles.insert(role, role_origin(managed));
    }
    Ok(account)
}

fn audit_from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    const T: &str = "sp_audit";
    let id: String = row.try_get("id")?;
    let operation_id: String = row.try_get("operation_id")?;
    let kind: String = row.try_get("kind")?;
    let account_id: Option<String> = row.try_get("account_id")?;
    let plan: String = row.try_get("plan")?;
    Ok(AuditEvent {
        id: uuid(T, &id)?,
        operation_id: uuid(T, &operation_id)?,
        at: from_millis(T, row.try_get("at")?)?,
        kind: AuditKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            table: T,
            detail: format!("kind `{kind}`"),
        })?,
        account_id: account_id.as_deref().map(|a| uuid(T, a)).transpose()?,
        idp_entity_id: row.try_get("idp_entity_id")?,
        identity_key: row.try_get("identity_key")?,
        session_index: row.try_get("session_index")?,
        actor: row.try_get("actor")?,
        plan: serde_json::from_str(&plan).map_err(|e| StoreError::Corrupt {
            table: T,
            detail: e.to_string(),
        })?,
    })
}
