//! The one error type of the IdP crate.
//!
//! Each variant names the rule that was broken, so that the CLI, the admin API and the logs can
//! all say *which* field was wrong without parsing message text.

use std::path::PathBuf;

/// Everything the IdP store, directory and application registry can refuse or fail at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another user already has this username (compared case-insensitively).
    #[error("username {username:?} is already taken")]
    DuplicateUsername {
        /// The username that was asked for.
        username: String,
    },
    /// Another user already has this e-mail address (compared case-insensitively).
    #[error("e-mail address {email:?} is already used by another user")]
    DuplicateEmail {
        /// The address that was asked for.
        email: String,
    },
    /// A group with this name already exists (compared case-insensitively).
    #[error("group {name:?} already exists")]
    DuplicateGroup {
        /// The group name that was asked for.
        name: String,
    },
    /// A service provider with this SAML entity ID is already registered.
    #[error("an application with entity ID {entity_id:?} is already registered")]
    DuplicateEntityId {
        /// The entity ID that was asked for.
        entity_id: String,
    },
    /// No user matches the given ID, username or e-mail address.
    #[error("unknown user {user:?}")]
    UnknownUser {
        /// What the caller looked the user up by.
        user: String,
    },
    /// No group has this name or ID.
    #[error("unknown group {name:?}")]
    UnknownGroup {
        /// What the caller looked the group up by.
        name: String,
    },
    /// No application has this entity ID or ID.
    #[error("unknown application {app:?}")]
    UnknownApplication {
        /// What the caller looked the application up by.
        app: String,
    },
    /// No admin API token has this ID or name (or it is already revoked).
    #[error("unknown API token {token:?}")]
    UnknownToken {
        /// What the caller looked the token up by.
        token: String,
    },
    /// The user is already a member of the group.
    #[error("user {user:?} is already a member of group {group:?}")]
    AlreadyMember {
        /// The user's username.
        user: String,
        /// The group's name.
        group: String,
    },
    /// The user is not a member of the group.
    #[error("user {user:?} is not a member of group {group:?}")]
    NotMember {
        /// The user's username.
        user: String,
        /// The group's name.
        group: String,
    },
    /// The group is already in the application's access policy.
    #[error("group {group:?} is already assigned to application {app:?}")]
    AlreadyAssigned {
        /// The application's entity ID.
        app: String,
        /// The group's name.
        group: String,
    },
    /// The group is not in the application's access policy.
    #[error("group {group:?} is not assigned to application {app:?}")]
    NotAssigned {
        /// The application's entity ID.
        app: String,
        /// The group's name.
        group: String,
    },
    /// A field value breaks a validation rule; `field` names the field as the user typed it.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field's name (e.g. `email`, `acs_url`).
        field: &'static str,
        /// Why the value was refused, including the value where that is safe to show.
        reason: String,
    },
    /// Assertions are to be encrypted to a certificate whose key cannot carry them: XML
    /// Encryption wraps the content key with RSA-OAEP, so only an RSA key will do. Refused
    /// when the application is stored rather than at its first sign-in (SSO refuses it
    /// again, for rows written before this rule).
    #[error(
        "invalid encryption_cert: its key ({key}) cannot encrypt assertions; XML Encryption key transport needs an RSA key"
    )]
    EncryptionKeyUnsupported {
        /// The certificate's key, e.g. `ECDSA P-256`, or why it could not be read.
        key: String,
    },
    /// A row of an import file was refused; nothing from the file was applied.
    #[error("line {line}: {source}")]
    ImportRow {
        /// The 1-based line number in the file (the header is line 1).
        line: u64,
        /// What was wrong with the row.
        source: Box<Error>,
    },
    /// An import file could not be read as CSV at all.
    #[error("cannot read CSV: {0}")]
    Csv(#[from] csv::Error),
    /// A stored value could not be decoded: the database was edited by hand or is damaged.
    #[error("corrupt stored {what}: {reason}")]
    CorruptRow {
        /// Which stored value (e.g. `users.attributes`).
        what: &'static str,
        /// What failed to decode.
        reason: String,
    },
    /// The configuration file could not be read or parsed, or a setting is out of range.
    #[error("configuration {path}: {reason}", path = path.display())]
    Config {
        /// The file (or environment variable) the bad setting came from.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Hashing a password failed (bad Argon2 parameters in the configuration).
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// A bounded resource of this node (password hashing) is full; the work was not done
    /// and may be asked for again after `retry_after_seconds`.
    #[error("the server is busy ({what}); try again in {retry_after_seconds} s")]
    Busy {
        /// What is full.
        what: &'static str,
        /// When to try again.
        retry_after_seconds: u64,
    },
    /// The database URL names a backend this build does not support.
    #[error("unsupported database URL {url:?}: expected sqlite:// or postgres://")]
    UnsupportedDatabase {
        /// The URL with any password removed.
        url: String,
    },
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database refused or failed a query.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database does not take writes (a read-only file or file system, missing
    /// permissions, a lock held too long): reads may still work, sign-ins would not.
    #[error("the database {database} cannot be written: {reason}")]
    DatabaseUnwritable {
        /// The SQLite file or the PostgreSQL URL (password removed).
        database: String,
        /// Why, as far as it can be told: read-only, locked, or the database's message.
        reason: String,
    },
    /// The data folder (or the SQLite file in it) cannot be created or opened for writing.
    #[error("cannot create or write {path}: {error}", path = path.display())]
    DataDirUnwritable {
        /// The folder or file.
        path: PathBuf,
        /// The OS error (permission denied, read-only file system, not a directory); not a
        /// `source`, as the message already says it and a report would say it twice.
        error: std::io::Error,
    },
    /// A sign-in's audit line could not be stored, so the sign-in is not answered.
    #[error("audit log unavailable: {0}")]
    AuditUnavailable(String),
    /// Reading a file failed.
    #[error("cannot read {path}: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidField`].
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidField {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::CorruptRow`].
    pub(crate) fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Error::CorruptRow {
            what,
            reason: reason.to_string(),
        }
    }
}
