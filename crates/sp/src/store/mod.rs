//! Where accounts, roles and the audit log live.
//!
//! The JIT engine talks to storage only through [`AccountStore`] and the transaction it opens
//! ([`AccountTx`]), so the whole read-decide-write of one login happens inside one transaction
//! and a store other than SQL can be plugged in. [`SqlAccountStore`] is the implementation
//! over SQLite or PostgreSQL.

mod audit;
mod database;
mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod writer;

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub use audit::{AuditEvent, AuditKind, LogoutRecord};
pub use database::{Backend, Database, WriterStats, probe_connection};
pub use sql::{AUDIT_PURGE_BATCH, AuditPurge, SqlAccountStore, SqlAccountTx};
pub(crate) use sql::{from_millis, is_value_taken, millis};

use crate::error::StoreError;
use crate::jit::IdentityKey;

/// A local account as the SP application sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account's own ID, independent of any IdP.
    pub id: Uuid,
    /// The identity JIT knows it by; `None` for a local account nobody has linked yet.
    pub identity: Option<IdentityKey>,
    /// The normalised `email` field, kept apart because it is unique across accounts.
    pub email: Option<String>,
    /// Field values by field name (IdP-owned, create-only and app-owned alike).
    pub fields: BTreeMap<String, String>,
    /// Roles held, with who granted them.
    pub roles: BTreeMap<String, RoleOrigin>,
    /// Who created the account.
    pub provisioned_by: ProvisionedBy,
    /// `false` once SCIM disabled the account: its logins are refused (`ACCOUNT_DISABLED`)
    /// and the application must end its sessions.
    #[serde(default = "enabled")]
    pub active: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change made by JIT or the app.
    pub updated_at: OffsetDateTime,
}

fn enabled() -> bool {
    true
}

/// Who granted a role, which decides whether JIT may withdraw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleOrigin {
    /// Granted by a JIT role rule; withdrawn when no rule grants it any more.
    Managed,
    /// Granted by an app admin; JIT never removes it.
    Manual,
}

/// Who created an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionedBy {
    /// JIT, at a first login.
    Jit,
    /// The application (a local account, possibly linked to an identity later).
    App,
}

impl ProvisionedBy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Jit => "jit",
            Self::App => "app",
        }
    }
}

/// A store of accounts that can open transactions.
///
/// Futures are `Send` so an engine over any store can run inside a multi-threaded server.
pub trait AccountStore: Send + Sync {
    /// The transaction type; dropping it without [`AccountTx::commit`] must roll back.
    type Tx: AccountTx;

    /// Opens a transaction that serialises with every other login touching the same rows.
    fn begin(&self) -> impl Future<Output = Result<Self::Tx, StoreError>> + Send;

    /// The SP database the store keeps its rows in, when it is one ([`SqlAccountStore`]).
    /// A replay cache on the same database ([`crate::replay::SqlReplayCache`]) then records
    /// the assertion inside the login's transaction ([`AccountTx::record_assertion`]), and on
    /// a SQLite file the JIT engine writes logins through the database's writer thread
    /// (`store::writer`) instead of [`AccountStore::begin`].
    fn database(&self) -> Option<&Database> {
        None
    }
}

/// One transaction on an [`AccountStore`].
pub trait AccountTx: Send {
    /// The account keyed by `identity`, with its roles.
    fn find_by_identity(
        &mut self,
        identity: &IdentityKey,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;

    /// The account whose normalised e-mail is `email`, with its roles.
    fn find_by_email(
        &mut self,
        email: &str,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;

    /// Inserts `account` (fields only, not roles) unless another account already has its
    /// identity or e-mail. Returns `false` in that case: a concurrent login got there first,
    /// and the caller must look again rather than fail.
    fn insert_account(
        &mut self,
        account: &Account,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes `account`'s identity, e-mail, fields and `updated_at` (not its roles).
    fn update_account(
        &mut self,
        account: &Account,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// [`AccountTx::update_account`] for an update that moves the account to an e-mail
    /// address it did not hold, or links it to an identity: `false`, with nothing written and
    /// the transaction still usable, when the address's or the identity's unique index
    /// refuses it, because another account took the address or identity after this
    /// transaction looked it up (a concurrent login committed first). The caller then looks
    /// again and plans the login as it would have, had it come second.
    ///
    /// The default writes through [`AccountTx::update_account`], so a store that does not
    /// override it reports such a conflict as the error its update returns.
    fn update_account_new_email(
        &mut self,
        account: &Account,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move {
            self.update_account(account).await?;
            Ok(true)
        }
    }

    /// When a SCIM DELETE removed the account of `identity` (`deprovision = "delete"`), if
    /// that is remembered still at `now` (see `sp_deleted_identities`): a login whose
    /// subject authenticated by then must not create the account again. A store that keeps
    /// no such record keeps the default, `None`.
    fn deleted_at(
        &mut self,
        identity: &IdentityKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<OffsetDateTime>, StoreError>> + Send {
        let _ = (identity, now);
        async { Ok(None) }
    }

    /// Grants `role`; keeps the existing grant (and its origin) if there is one.
    fn grant_role(
        &mut self,
        account_id: Uuid,
        role: &str,
        origin: RoleOrigin,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Withdraws `role` if, and only if, JIT granted it.
    fn revoke_managed_role(
        &mut self,
        account_id: Uuid,
        role: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Appends an event to the app's audit log.
    fn append_audit(
        &mut self,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records the assertion `assertion_id` issued at `issued_at` in the SP database's replay
    /// cache inside this transaction; `false` when an unexpired entry already holds it (a
    /// replay). Called only when [`AccountStore::database`] is the replay cache's database; a
    /// store without one keeps the default, which refuses.
    fn record_assertion(
        &mut self,
        assertion_id: &str,
        issued_at: OffsetDateTime,
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (assertion_id, issued_at, not_on_or_after, now);
        async {
            Err(StoreError::Inconsistent(
                "this account store keeps no replay cache".to_owned(),
            ))
        }
    }

    /// Uses up the pending request `request_id` kept under `relay_state` in the SP database
    /// ([`crate::login::SqlPendingRequests`]) inside this transaction: `false` when it is no
    /// longer there (another login used it first), and the login must then be refused. Called
    /// only when [`AccountStore::database`] is the database keeping the SP's pending
    /// requests; a store without one keeps the default, which refuses.
    fn use_pending_request(
        &mut self,
        relay_state: &str,
        request_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (relay_state, request_id);
        async {
            Err(StoreError::Inconsistent(
                "this account store keeps no pending requests".to_owned(),
            ))
        }
    }

    /// Whether [`AccountTx::append_audit_once`] records the assertion in the same trip to
    /// the database as the audit event. The JIT engine then records a login's assertion with
    /// its audit event, last, rather than first in a trip of its own: on PostgreSQL a trip is
    /// most of a statement's cost, and a replay still leaves nothing, its transaction being
    /// rolled back whatever it did before.
    fn records_with_audit(&self) -> bool {
        false
    }

    /// [`AccountTx::record_assertion`], then [`AccountTx::append_audit`] only if the assertion
    /// was fresh: `false` for a replay, with nothing appended.
    fn append_audit_once(
        &mut self,
        event: &AuditEvent,
        assertion_id: &str,
        issued_at: OffsetDateTime,
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move {
            if !self
                .record_assertion(assertion_id, issued_at, not_on_or_after, now)
                .await?
            {
                return Ok(false);
            }
            self.append_audit(event).await?;
            Ok(true)
        }
    }

    /// Makes every write of this transaction durable.
    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
