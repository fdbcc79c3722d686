//! The crate's one error type.
//!
//! A refused login is an error the caller must show to the person (with its code and the
//! operation ID, which the audit log carries too), while a store error is an outage: keeping
//! them as distinct variants lets the ACS render the right page without string matching.

use uuid::Uuid;

use crate::jit::{Refusal, RefusalCode};

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
    /// The SAML layer refused the response (or could not build a request): a binding, a
    /// signature or a profile rule, named by the inner error.
    #[error("SAML: {0}")]
    Saml(#[from] latchkey_saml::Error),
    /// The SP settings are not usable; nothing was started.
    #[error("settings: {0}")]
    Settings(#[from] SettingsError),
    /// The IdP metadata could not be read, fetched or used.
    #[error("IdP metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// The RelayState names an outstanding request that has expired: the person took longer
    /// at the IdP than the request lifetime allows.
    #[error("the login request has expired; start again")]
    RequestExpired,
    /// The Response answers a login this SP started, but the browser that posted it is not
    /// the one that started it ([`crate::binding`]): login CSRF, or a browser that did not
    /// send the login cookie. The pending request was used up; nothing was verified.
    #[error("the Response answers a login started in another browser: {0}")]
    BrowserMismatch(BrowserMismatch),
    /// Too many logins are outstanding to remember another one. Forgetting an unexpired one
    /// would break that person's login, so the new one is refused instead.
    #[error("too many outstanding login requests ({0})")]
    TooManyPendingRequests(usize),
    /// The browser's network has as many logins started and not finished as one client may
    /// ([`crate::login::PENDING_PER_NETWORK`]); nothing was stored. Answer 429.
    #[error("too many outstanding login requests from this client's network ({0})")]
    TooManyPendingFromClient(usize),
    /// Single logout could not start, or a logout message was refused (see
    /// [`LogoutError`]). A refused message ended no session.
    #[error("single logout: {0}")]
    Logout(#[from] LogoutError),
}

impl Error {
    /// The failure's stable code, shown on error pages (with the operation ID, never the
    /// detail), logged and audited.
    pub fn code(&self) -> Code {
        match self {
            Self::Contract(_) => Code::Toolkit(ToolkitCode::ContractInvalid),
            Self::Refused { refusal, .. } => Code::Jit(refusal.code),
            Self::Replay(ReplayError::Replayed(_)) => Code::Toolkit(ToolkitCode::AssertionReplayed),
            Self::Replay(ReplayError::Expired(_)) => Code::Toolkit(ToolkitCode::AssertionExpired),
            Self::Replay(ReplayError::Full(_)) => Code::Toolkit(ToolkitCode::ReplayCacheFull),
            Self::Store(e) if e.is_busy() => Code::Toolkit(ToolkitCode::StoreBusy),
            Self::Store(_) => Code::Toolkit(ToolkitCode::StoreFailed),
            Self::Saml(e) => Code::Saml(e.code()),
            Self::Settings(_) => Code::Toolkit(ToolkitCode::SettingsInvalid),
            Self::Metadata(_) => Code::Toolkit(ToolkitCode::IdpMetadataUnusable),
            Self::RequestExpired => Code::Toolkit(ToolkitCode::RequestExpired),
            Self::BrowserMismatch(_) => Code::Toolkit(ToolkitCode::BrowserMismatch),
            Self::TooManyPendingRequests(_) => Code::Toolkit(ToolkitCode::TooManyPendingRequests),
            Self::TooManyPendingFromClient(_) => {
                Code::Toolkit(ToolkitCode::TooManyPendingFromClient)
            }
            Self::Logout(e) => e.code(),
        }
    }

    /// The refusal of a Response answering the request `request_id` once that request is
    /// used up (by another post of the same answer, on any node): the profile's, as when the
    /// RelayState names no request any more (InResponseTo names a request we no longer hold).
    pub(crate) fn request_used(request_id: &str) -> Self {
        Self::Saml(latchkey_saml::Error::InResponseToMismatch {
            expected: None,
            found: Some(request_id.to_owned()),
        })
    }

    /// Whether the failure is the server's (an outage or misconfiguration) rather than a
    /// refusal of what the browser brought: decides between 500 and 4xx pages.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Contract(_)
                | Self::Store(_)
                | Self::Settings(_)
                | Self::Metadata(_)
                | Self::TooManyPendingRequests(_)
                | Self::Replay(ReplayError::Full(_))
                | Self::Logout(
                    LogoutError::NoSloUrl | LogoutError::NoSigningKey | LogoutError::NoIdpEndpoint
                )
        )
    }

    /// Whether the server turned the request away because it is at its bound, not because
    /// anything failed: the answer is 503 with `Retry-After`, and the same request may
    /// succeed a moment later (nothing of it was applied or used up).
    pub fn is_busy(&self) -> bool {
        match self {
            Self::Store(e) => e.is_busy(),
            Self::TooManyPendingRequests(_) | Self::Replay(ReplayError::Full(_)) => true,
            _ => false,
        }
    }

    /// Whether this client has too much under way: the answer is 429 with `Retry-After`
    /// (nothing of the request was stored), while other clients are served.
    pub fn is_throttled(&self) -> bool {
        matches!(self, Self::TooManyPendingFromClient(_))
    }
}

/// Why the browser posting a Response is not the one that started its login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserMismatch {
    /// The browser sent no login cookie (or a malformed one): another browser, or one that
    /// keeps no cookie for this SP (a plain-http SP on another site than the IdP).
    #[error("this one sent no login cookie")]
    NoCookie,
    /// The browser's login cookie is not the one the login was started with.
    #[error("its login cookie is another browser's")]
    OtherBrowser,
    /// The login was stored before logins were bound to browsers.
    #[error("the login was started before logins were bound to browsers")]
    Unbound,
}

/// Why single logout could not start, or why a logout message from the IdP was refused.
/// Each variant names the rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// `slo_url` is not set: the IdP would have nowhere to send its answer.
    #[error("no slo_url is configured")]
    NoSloUrl,
    /// The SP has no key: the profile requires logout messages to be signed.
    #[error("no SP key is configured to sign logout messages")]
    NoSigningKey,
    /// The IdP's metadata lists no HTTP-Redirect SingleLogoutService.
    #[error("the IdP has no HTTP-Redirect SingleLogoutService")]
    NoIdpEndpoint,
    /// A LogoutResponse came back with a RelayState naming no logout we started (never
    /// issued, already answered, or from another node's memory).
    #[error("the LogoutResponse answers no logout request of ours")]
    UnknownRequest,
    /// The IdP's LogoutRequest was already acted on: a replay.
    #[error("LogoutRequest `{0}` was already used")]
    Replayed(String),
    /// The message is not the kind this step expects (a LogoutResponse where a
    /// LogoutRequest was due, or an AuthnRequest, or neither field in a form).
    #[error("unexpected message: {0}")]
    UnexpectedMessage(&'static str),
    /// A rule of the binding, signature or Single Logout profile was broken; the inner
    /// error names it.
    #[error("{0}")]
    Refused(latchkey_saml::Error),
}

impl LogoutError {
    /// The stable code; a refused message has the SAML layer's code for the rule it broke.
    pub fn code(&self) -> Code {
        match self {
            Self::NoSloUrl | Self::NoSigningKey | Self::NoIdpEndpoint => {
                Code::Toolkit(ToolkitCode::LogoutNotConfigured)
            }
            Self::UnknownRequest => Code::Toolkit(ToolkitCode::LogoutUnknownRequest),
            Self::Replayed(_) => Code::Toolkit(ToolkitCode::LogoutReplayed),
            Self::UnexpectedMessage(_) => Code::Toolkit(ToolkitCode::LogoutUnexpectedMessage),
            Self::Refused(e) => Code::Saml(e.code()),
        }
    }
}

/// The SP's one code vocabulary: every code the toolkit (and an application's pages built
/// on it) can show, log or audit. The SAML layer's codes and the JIT refusals keep their
/// own homes ([`latchkey_saml::Code`], [`RefusalCode`]); this enum joins them with the
/// toolkit's own, and no two of the three share a wire form (a test checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// The SAML layer refused the message (binding, signature or profile rule).
    Saml(latchkey_saml::Code),
    /// The JIT engine refused the login.
    Jit(RefusalCode),
    /// The toolkit itself refused or failed.
    Toolkit(ToolkitCode),
}

impl Code {
    /// Every code of the SP surface: the SAML layer's, the JIT refusals, then the toolkit's.
    pub fn all() -> impl Iterator<Item = Code> {
        let saml = latchkey_saml::Code::ALL.iter().copied().map(Code::Saml);
        let jit = RefusalCode::ALL.iter().copied().map(Code::Jit);
        let toolkit = ToolkitCode::ALL.iter().copied().map(Code::Toolkit);
        saml.chain(jit).chain(toolkit)
    }

    /// The code as shown on pages, written to logs and asserted by tests.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Saml(c) => c.as_str(),
            Code::Jit(c) => c.as_str(),
            Code::Toolkit(c) => c.as_str(),
        }
    }

    /// What the code means, for the generated table.
    pub fn meaning(self) -> &'static str {
        match self {
            Code::Saml(c) => c.meaning(),
            Code::Jit(c) => c.meaning(),
            Code::Toolkit(c) => c.meaning(),
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

latchkey_saml::stable_codes! {
    /// The codes of failures that belong to the toolkit rather than to a SAML rule or a JIT
    /// refusal.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum ToolkitCode {
        /// The provisioning contract (SP.toml `[provisioning]`) is not usable.
        ContractInvalid = "CONTRACT_INVALID",
        /// This assertion was already used once: a replay.
        AssertionReplayed = "ASSERTION_REPLAYED",
        /// The assertion had already expired when the replay cache saw it.
        AssertionExpired = "ASSERTION_EXPIRED",
        /// The replay cache is full of unexpired entries and fails closed.
        ReplayCacheFull = "REPLAY_CACHE_FULL",
        /// The SP's database failed; nothing was applied.
        StoreFailed = "STORE_FAILED",
        /// The SP's database is contended: too many logins already waiting for it, a lock
        /// not granted in time, or a transaction aborted for another (PostgreSQL
        /// serialization failure or deadlock). Answered 503; nothing of it was applied: try
        /// again shortly.
        StoreBusy = "STORE_BUSY",
        /// The SP settings are not usable.
        SettingsInvalid = "SETTINGS_INVALID",
        /// The IdP metadata could not be read, fetched or used.
        IdpMetadataUnusable = "IDP_METADATA_UNUSABLE",
        /// The login this SP started has expired: the person took longer at the IdP than
        /// the request lifetime allows.
        RequestExpired = "REQUEST_EXPIRED",
        /// The Response answers a login this SP started in another browser (or the browser
        /// did not send the login cookie): refused, as login CSRF would be. Start again.
        BrowserMismatch = "BROWSER_MISMATCH",
        /// Too many logins are outstanding to remember another one.
        TooManyPendingRequests = "TOO_MANY_PENDING_REQUESTS",
        /// Too many logins were started from the browser's network and not finished (429);
        /// other clients are still served.
        TooManyPendingFromClient = "TOO_MANY_PENDING_FROM_CLIENT",
        /// Single logout is not set up (no slo_url, no SP key, or no IdP endpoint).
        LogoutNotConfigured = "LOGOUT_NOT_CONFIGURED",
        /// A LogoutResponse answers no logout this SP started (or one already answered).
        LogoutUnknownRequest = "LOGOUT_UNKNOWN_REQUEST",
        /// The IdP's LogoutRequest was already acted on: a replay.
        LogoutReplayed = "LOGOUT_REPLAYED",
        /// A message of the wrong kind arrived at the SingleLogoutService.
        LogoutUnexpectedMessage = "LOGOUT_UNEXPECTED_MESSAGE",
    }
}

/// SP settings that cannot be used. Each variant names the setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The TOML text does not parse into settings (unknown key, wrong type, ...).
    #[error("cannot parse settings: {0}")]
    Parse(String),
    /// A file named by the settings cannot be read.
    #[error("cannot read {path}: {detail}")]
    Read {
        /// The path, as resolved.
        path: String,
        /// The I/O error.
        detail: String,
    },
    /// The SP's private key or certificate cannot be loaded.
    #[error("SP key: {0}")]
    Key(#[from] latchkey_xmlsec::crypto::KeyError),
    /// The SP's key does not belong to its certificate: requests would be signed with a key
    /// the IdP cannot verify.
    #[error("the SP private key does not match its certificate")]
    KeyCertificateMismatch,
    /// `[idp]` must name exactly one of `metadata_file` and `metadata_url`.
    #[error("[idp] must set exactly one of metadata_file and metadata_url")]
    MetadataSource,
    /// An algorithm in the allow-list is unknown (or SHA-1 without saying so).
    #[error("unknown algorithm `{0}`")]
    UnknownAlgorithm(String),
    /// A setting has a value that cannot work (an empty entity ID, a zero lifetime...).
    #[error("invalid `{setting}`: {detail}")]
    Invalid {
        /// The setting's name.
        setting: &'static str,
        /// Why.
        detail: String,
    },
    /// Metadata is configured by URL but the crate was built without the `fetch` feature.
    #[error("metadata_url needs latchkey-sp's `fetch` feature")]
    FetchDisabled,
}

/// IdP metadata that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The document was refused by the SAML metadata reader.
    #[error("cannot read metadata: {0}")]
    Parse(latchkey_saml::Error),
    /// No IdP with the configured entity ID (or, with none configured, not exactly one IdP)
    /// is in the document.
    #[error("no usable IdP entity {0} in the metadata")]
    NoIdp(String),
    /// The IdP lists no signing certificate, so no response of it could ever be verified.
    #[error("IdP `{0}` has no signing certificate")]
    NoSigningKey(String),
    /// The IdP has no SingleSignOnService endpoint with the HTTP-Redirect binding.
    #[error("IdP `{0}` has no HTTP-Redirect SingleSignOnService")]
    NoRedirectEndpoint(String),
    /// Fetching the metadata URL failed.
    #[error("fetching {url}: {detail}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The trusted copy of the IdP metadata passed its `validUntil` and no newer one could
    /// be had: its keys may no longer be the IdP's.
    #[error("the metadata of IdP `{entity_id}` expired at {valid_until} (validUntil)")]
    Expired {
        /// The IdP.
        entity_id: String,
        /// The `validUntil` that passed.
        valid_until: time::OffsetDateTime,
    },
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
    /// SQLite reported an error on the login writer's connection (`store::writer`).
    #[cfg(feature = "sqlite")]
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite login writer could not take or answer a login (stopped, or its batch
    /// failed to commit: then no login of the batch was kept).
    #[error("login writer: {0}")]
    Writer(String),
    /// The SQLite login writer already has this many logins waiting: the login was turned
    /// away without waiting, so a burst cannot queue without bound.
    #[error("busy: {0} logins are already waiting for the login writer")]
    Busy(usize),
    /// The database did not answer within the bound of the operation
    /// ([`crate::store::Database::probe`]).
    #[error("the database did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// The URL names a database this crate does not support (only SQLite and PostgreSQL).
    #[error("unsupported database backend `{0}`")]
    UnsupportedBackend(String),
    /// A SQLite URL without a file name: SQLite would give each connection a private
    /// temporary database of its own, so the pool's connections would not share one.
    #[error("the SQLite URL `{0}` names no file (a database in memory is `sqlite::memory:`)")]
    NoDatabaseFile(String),
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

impl StoreError {
    /// Whether the database turned the work away for contention, not for a fault: the
    /// writer's queue at its bound, a lock not granted within the wait (SQLite `SQLITE_BUSY`
    /// or `SQLITE_LOCKED`, PostgreSQL `55P03`), a transaction aborted for another
    /// (PostgreSQL `40001` serialization failure, `40P01` deadlock), or no pool connection in
    /// time. Nothing was applied and a retry may succeed: `STORE_BUSY`, 503 with
    /// `Retry-After`, never a 500.
    pub fn is_busy(&self) -> bool {
        match self {
            Self::Busy(_) => true,
            Self::Database(sqlx::Error::PoolTimedOut) => true,
            Self::Database(sqlx::Error::Database(db)) => {
                db.code().is_some_and(|code| busy_code(&code))
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

/// A driver's error code that means contention: a PostgreSQL SQLSTATE (always five
/// characters), or SQLite's (extended) result code (at most four digits), whose low byte is
/// the primary code (5 `SQLITE_BUSY`, 6 `SQLITE_LOCKED`).
fn busy_code(code: &str) -> bool {
    if code.len() == 5 {
        return matches!(code, "40001" | "40P01" | "55P03");
    }
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

/// Why [`crate::store::SqlAccountStore::set_field`] wrote nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetFieldError {
    /// The new e-mail address is another account's (its unique index refused the write,
    /// also when a concurrent write took the address after the application checked): show
    /// the person that the address is in use, not an outage.
    #[error("another account holds this e-mail address")]
    EmailTaken,
    /// The database failed; nothing was written.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl SetFieldError {
    /// The stable code to show: the JIT refusal of a login asserting another account's
    /// address ([`RefusalCode::EmailBelongsToOtherAccount`]), or the store's.
    pub fn code(&self) -> Code {
        match self {
            Self::EmailTaken => Code::Jit(RefusalCode::EmailBelongsToOtherAccount),
            Self::Store(e) if e.is_busy() => Code::Toolkit(ToolkitCode::StoreBusy),
            Self::Store(_) => Code::Toolkit(ToolkitCode::StoreFailed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Code, Error, LogoutError, StoreError, ToolkitCode};

    /// A lock not granted, a transaction aborted for another, or no pool connection is
    /// contention (`STORE_BUSY`, 503), on either backend; any other code is a failure.
    #[test]
    fn contention_codes_are_busy_and_others_are_not() {
        for code in [
            "40001", "40P01", "55P03", "5", "6", "261", "517", "773", "262",
        ] {
            assert!(super::busy_code(code), "{code}");
        }
        // 42501 (insufficient privilege) has a low byte of 5 as a number: a SQLSTATE is
        // never read as SQLite's.
        for code in ["42501", "23505", "53300", "1", "19", "2067", "11", ""] {
            assert!(!super::busy_code(code), "{code}");
        }
        let locked = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(5),
            None,
        ));
        assert!(locked.is_busy());
        assert_eq!(Error::Store(locked).code().as_str(), "STORE_BUSY");
        let corrupt = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(11),
            None,
        ));
        assert!(!Error::Store(corrupt).is_busy());
        assert!(Error::Store(StoreError::Database(sqlx::Error::PoolTimedOut)).is_busy());
    }

    /// A login turned away at the writer's bound is the server's (no 4xx), but not a failure:
    /// its own code, and busy (503) where a failed store is not.
    #[test]
    fn a_full_writer_queue_is_busy_not_failed() {
        let busy = Error::Store(StoreError::Busy(1024));
        assert_eq!(busy.code(), Code::Toolkit(ToolkitCode::StoreBusy));
        assert_eq!(busy.code().as_str(), "STORE_BUSY");
        assert!(busy.is_busy());
        assert!(busy.is_internal());
        let failed = Error::Store(StoreError::Writer(
            "the writer thread has stopped".to_owned(),
        ));
        assert_eq!(failed.code(), Code::Toolkit(ToolkitCode::StoreFailed));
        assert!(!failed.is_busy());
        // The toolkit's other bounds are busy too: too many logins started and not finished,
        // a replay cache holding its most entries. Nothing was used up by either.
        for bound in [
            Error::TooManyPendingRequests(10_000),
            Error::Replay(super::ReplayError::Full(100_000)),
        ] {
            assert!(bound.is_busy(), "{bound}");
            assert!(bound.is_internal(), "{bound}");
        }
    }

    #[test]
    fn the_sp_vocabulary_has_one_meaning_per_code() {
        let mut seen = std::collections::BTreeMap::new();
        for code in Code::all() {
            if let Some(other) = seen.insert(code.as_str(), code) {
                panic!("{code} means both {other:?} and {code:?}");
            }
            assert!(!code.meaning().is_empty(), "{code}");
        }
        // Every SAML failure keeps the SAML layer's own code: nothing folds into a catch-all.
        let digest =
            latchkey_saml::Error::Xml(latchkey_xmlsec::dsig::SignatureError::DigestMismatch.into());
        assert_eq!(Error::Saml(digest).code().as_str(), "DIGEST_MISMATCH");
        assert_eq!(
            Error::Saml(latchkey_saml::Error::AudienceMissing)
                .code()
                .as_str(),
            "AUDIENCE_MISSING"
        );
        assert_eq!(
            Error::Logout(LogoutError::Refused(latchkey_saml::Error::LogoutExpired)).code(),
            Code::Saml(latchkey_saml::Code::LogoutExpired)
        );
        assert_eq!(
            Error::RequestExpired.code(),
            Code::Toolkit(ToolkitCode::RequestExpired)
        );
    }
}
