//! The crate's one error type.
//!
//! A refused login is an error the caller must show to the person (with its code and the
//! operation ID, which the audit log carries too), while a store error is an outage: keeping
//! them as distinct variants lets the ACS render the right page without string matching.

use uuid::Uuid;

use crate::jit::Refusal;

/// Everything that can go wrong in the SP toolkit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provisioning contract (SP.toml `[provisioning]`) is not usable; nothing was run.
    #[error("invalid provisioning contract: {0}")]
    Contract(#[from] ContractError),
    /// The JIT engine refused the login. The refusal was written to the audit log under
    /// `operation_id`, and no account was created or changed.
    #[error("login refused ({code}, operation {operation_id}): {detail}", code = refusal.code.as_str(), detail = refusal.detail)]
    Refused {
        /// Why, as a stable code and a human detail.
        refusal: Refusal,
        /// The ID shown on the error page and stored with the audit event.
        operation_id: Uuid,
    },
    /// The assertion was refused by the replay cache.
    #[error("replay cache: {0}")]
    Replay(#[from] ReplayError),
    /// The database failed or holds data this crate did not write; the transaction was rolled
    /// back.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// A provisioning contract that cannot be applied safely. Each variant names the rule broken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContractError {
    /// The TOML text does not parse into a contract (unknown key, wrong type, ...).
    #[error("cannot parse contract: {0}")]
    Parse(String),
    /// Two field mappings write the same account field, so the winner would be arbitrary.
    #[error("account field `{0}` is mapped twice")]
    DuplicateField(String),
    /// A field or role name is empty.
    #[error("empty name in {0}")]
    EmptyName(&'static str),
    /// An IdP-owned or create-only field has no attribute to read its value from.
    #[error("field `{0}` is written by JIT but names no attribute")]
    FieldWithoutAttribute(String),
    /// An app-owned field was marked required or given an attribute; JIT never reads or writes
    /// app-owned fields, so either setting would silently do nothing.
    #[error("field `{0}` is app-owned: it cannot have an attribute or be required")]
    AppFieldWithAttribute(String),
    /// A role condition sets none, or more than one, of `contains`, `equals`, `prefix`.
    #[error("role rule granting `{0}` must set exactly one of contains, equals, prefix")]
    AmbiguousCondition(String),
    /// Both `default_role` and `deny_when_no_role` are set: one says "let them in with the
    /// default", the other "refuse them", so the contract would contradict itself.
    #[error("default_role and deny_when_no_role cannot both be set")]
    DefaultRoleWithDeny,
    /// `link_by_email` is on but no field named `email` is read from an attribute, so there is
    /// no IdP-asserted address to link by.
    #[error("link_by_email needs an `email` field mapped from an attribute")]
    LinkWithoutEmail,
}

/// Why the replay cache refused to accept an assertion ID.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayError {
    /// This assertion ID was already accepted and has not expired yet: a replay.
    #[error("assertion `{0}` was already used")]
    Replayed(String),
    /// The assertion is already past its NotOnOrAfter. The SAML layer should have refused it;
    /// the cache refuses too rather than store an entry that is dead on arrival.
    #[error("assertion `{0}` has already expired")]
    Expired(String),
    /// The in-memory cache is full of unexpired entries. Evicting one would reopen a replay
    /// window for it, so the cache fails closed instead.
    #[error("replay cache is full ({0} unexpired entries)")]
    Full(usize),
}

/// A database failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The driver reported an error (connection, constraint, syntax, ...).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names a database this crate does not support (only SQLite and PostgreSQL).
    #[error("unsupported database backend `{0}`")]
    UnsupportedBackend(String),
    /// The database contradicted itself within one transaction (an insert conflicted with a
    /// row the next read could not find); the login was not applied.
    #[error("inconsistent store: {0}")]
    Inconsistent(String),
    /// A row holds a value this crate would never have written (bad UUID, bad JSON, ...).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table the row came from.
        table: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}
