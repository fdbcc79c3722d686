//! The IdP's admin error type, and the admin code vocabulary ([`ErrorCode`]).
//!
//! [`Error`] is what the store, directory, registry and configuration return; the browser
//! side wraps it ([`crate::sso::SsoError`], `latchkey_idp_web::WebError`), as do the key store
//! ([`crate::keys::KeyError`]), the catalog and metadata import. Each variant names the rule
//! that was broken, and [`Error::code`] gives it one snake_case code that the admin API sends
//! (its `error` field), the CLI prints and classes into an exit code, and the browser pages
//! log: nobody parses message text.
//!
//! The API's `error` field is always an [`ErrorCode`]: the code of the [`Error`], except that
//! server faults ([`Class::Unavailable`] other than `busy`) answer `internal` with an
//! operation ID and their own code goes only to the log line under that ID. Codes of the
//! request's shape (`invalid_json`, `unauthorized`, ...) come from the API alone.

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
    /// The record changed since the editor read it (a form drawn before someone else's
    /// change): nothing was written. Saving over it would put back what the other change
    /// replaced; the editor reads it again and redoes the edit.
    #[error("this {what} was changed by someone else since it was read; nothing was saved")]
    ChangedSince {
        /// What changed: "user".
        what: &'static str,
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
    /// The console role is already granted to this user or group.
    #[error("role {role} is already granted to {holder:?}")]
    AlreadyGranted {
        /// The role.
        role: &'static str,
        /// The user's username or the group's name.
        holder: String,
    },
    /// The console role is not granted to this user or group (directly).
    #[error("role {role} is not granted to {holder:?}")]
    NotGranted {
        /// The role.
        role: &'static str,
        /// The user's username or the group's name.
        holder: String,
    },
    /// The change would leave no active user holding the admin role (directly or through a
    /// group): the console would have no one to run it. Nothing was written.
    #[error("this would leave no active admin; grant admin to another active user first")]
    LastAdmin,
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
    /// A new password breaks the password policy ([`crate::password::check_policy`]).
    #[error("invalid password: {rule}")]
    PasswordRefused {
        /// Which rule; each has its own [`ErrorCode`].
        rule: crate::password::PasswordRule,
    },
    /// An invitation or password-reset link cannot be used (see
    /// [`crate::enrollment::LinkState`]); nothing was changed.
    #[error("this {kind} link {state}")]
    LinkUnusable {
        /// Invitation or reset.
        kind: crate::enrollment::LinkKind,
        /// Unknown, expired or already used (or superseded).
        state: crate::enrollment::LinkState,
    },
    /// Too many requests of this kind for this account or address; nothing was done.
    #[error("too many requests; try again in {retry_after_seconds} s")]
    Throttled {
        /// When to try again.
        retry_after_seconds: u64,
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
    /// A SQLite URL that names no file (`sqlite://`, `sqlite:`): SQLite would give each of
    /// the pool's connections a private temporary database, so a write on one would not be
    /// where the next request reads.
    #[error("the SQLite URL {url:?} names no file (a database in memory is `sqlite::memory:`)")]
    NoDatabaseFile {
        /// The URL as given.
        url: String,
    },
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database refused or failed a query. A failure that only says another writer was
    /// in the way (see [`transient`]) is converted to [`Error::Busy`] instead.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database does not take writes (a read-only file or file system, missing
    /// permissions, a lock held too long): reads may still work, sign-ins would not.
    #[error("the database {database} cannot be written: {reason}")]
    DatabaseUnwritable {
        /// The SQLite file or the PostgreSQL URL (password removed).
        database: String,
        /// Why, as far as it can be told: read-only, locked, or the database's message.
        reason: String,
        /// The write only waited too long (the write lock held by another connection, or
        /// the database overloaded) rather than being refused: it may pass on its own.
        locked: bool,
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

/// Who is to act on a failure; the CLI's exit code (1, 2, 3) follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The request was understood and refused by a rule or by the current state (a
    /// duplicate, an unknown name): asking again the same way will not help.
    Refused,
    /// The request or a file it names cannot be used as given (a field, a CSV row, the
    /// configuration).
    BadInput,
    /// The server cannot do it now (busy, the database, the audit log, the disk); the
    /// request may be fine.
    Unavailable,
}

latchkey_saml::stable_codes! {
    /// The admin vocabulary: the codes of [`Error`], and the admin API's own codes for the
    /// shape of a request. Sent as the API's `error` field and printed by the CLI;
    /// snake_case, and part of the API's contract.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    // Exhaustive on purpose: the web crate's matches must name every code.
    pub enum ErrorCode {
        /// Another user already has this username (compared case-insensitively).
        DuplicateUsername = "duplicate_username",
        /// Another user already has this e-mail address.
        DuplicateEmail = "duplicate_email",
        /// The record changed since the editor read it (an edit form drawn before someone
        /// else's change, an `If-Match` naming an older version); nothing was written.
        ChangedSince = "changed_since",
        /// A group with this name already exists.
        DuplicateGroup = "duplicate_group",
        /// An application with this entity ID is already registered.
        DuplicateEntityId = "duplicate_entity_id",
        /// No user has this ID, username or e-mail address.
        UnknownUser = "unknown_user",
        /// No group has this name or ID.
        UnknownGroup = "unknown_group",
        /// No application has this entity ID or ID.
        UnknownApp = "unknown_app",
        /// No live admin API token has this ID or name.
        UnknownToken = "unknown_token",
        /// The user is already a member of the group.
        AlreadyMember = "already_member",
        /// The user is not a member of the group.
        NotMember = "not_member",
        /// The console role is already granted to this user or group.
        AlreadyGranted = "already_granted",
        /// The console role is not granted to this user or group.
        NotGranted = "not_granted",
        /// The change would leave no active user holding the admin role; nothing was
        /// written.
        LastAdmin = "last_admin",
        /// The group is already assigned to the application.
        AlreadyAssigned = "already_assigned",
        /// The group is not assigned to the application.
        NotAssigned = "not_assigned",
        /// A field's value breaks a validation rule; `field` names it.
        InvalidField = "invalid_field",
        /// The encryption certificate's key cannot carry assertions (XML Encryption needs RSA).
        EncryptionKeyUnsupported = "encryption_key_unsupported",
        /// A row of an import file was refused; nothing from the file was applied.
        InvalidImportRow = "invalid_import_row",
        /// The import file is not readable as CSV.
        InvalidCsv = "invalid_csv",
        /// A stored value does not decode: the database was edited by hand or is damaged.
        CorruptRow = "corrupt_row",
        /// The configuration cannot be read or parsed, or a setting is out of range.
        ConfigInvalid = "config_invalid",
        /// A new password is shorter than `[password] min_length` (12 by default).
        PasswordTooShort = "password_too_short",
        /// A new password is longer than 1024 bytes.
        PasswordTooLong = "password_too_long",
        /// A new password is one of the 10,000 most common passwords.
        PasswordTooCommon = "password_too_common",
        /// An invitation or reset link is unknown (mistyped, or never issued).
        LinkUnknown = "link_unknown",
        /// An invitation or reset link is past its expiry time.
        LinkExpired = "link_expired",
        /// An invitation or reset link was used already, or a newer one replaced it.
        LinkUsed = "link_used",
        /// Too many requests of this kind (password resets, wrong bearer tokens) for the
        /// account or client network.
        Throttled = "throttled",
        /// Hashing a password failed (Argon2 parameters the library refuses).
        PasswordHashFailed = "password_hash_failed",
        /// A bounded resource (password hashing, the database's connections) is full, or the
        /// database turned the write away for another one in its way; nothing was changed.
        /// Try again after Retry-After.
        Busy = "busy",
        /// The database URL names a backend this build does not support.
        UnsupportedDatabase = "unsupported_database",
        /// A SQLite database URL names no file.
        NoDatabaseFile = "no_database_file",
        /// Applying the schema migrations failed.
        MigrationFailed = "migration_failed",
        /// The database refused or failed a query.
        DatabaseFailed = "database_failed",
        /// The database does not take writes (read-only, locked, no permission).
        DatabaseUnwritable = "database_unwritable",
        /// The data folder or the SQLite file cannot be created or written.
        DataDirUnwritable = "data_dir_unwritable",
        /// A sign-in's audit line could not be stored, so the sign-in was not answered.
        AuditUnavailable = "audit_unavailable",
        /// A file could not be read.
        IoFailed = "io_failed",
        /// The application has no SCIM connection (`latchkey app scim set` makes one).
        ScimNotConnected = "scim_not_connected",
        /// The application's SCIM server failed or refused a request (the detail names it).
        ScimUnavailable = "scim_unavailable",
        /// Disconnecting would drop removals not yet delivered to the application (users
        /// who keep access there); nothing was written. Force it to drop them (audited).
        ScimRemovalsPending = "scim_removals_pending",
        /// API: no valid admin API token (missing, malformed, unknown or revoked: one answer).
        Unauthorized = "unauthorized",
        /// The token may only read (scope `api_read`): only GET and HEAD are answered.
        TokenReadOnly = "token_read_only",
        /// API: the body is not JSON.
        InvalidJson = "invalid_json",
        /// API: the body is JSON of the wrong shape.
        InvalidBody = "invalid_body",
        /// API: the body is not sent as application/json.
        UnsupportedMediaType = "unsupported_media_type",
        /// API: the query string does not parse.
        InvalidQuery = "invalid_query",
        /// API: a path parameter does not parse.
        InvalidPath = "invalid_path",
        /// API: no endpoint has this path.
        NotFound = "not_found",
        /// API: the endpoint does not accept this method.
        MethodNotAllowed = "method_not_allowed",
        /// API: no connector template has this name.
        UnknownTemplate = "unknown_template",
        /// API: the SAML metadata sent cannot be read.
        InvalidMetadata = "invalid_metadata",
        /// API: the SAML metadata sent is past its validUntil.
        MetadataExpired = "metadata_expired",
        /// API: the metadata holds several SPs and none was chosen.
        AmbiguousEntity = "ambiguous_entity",
        /// API: the metadata holds no SP with the chosen entity ID.
        UnknownEntity = "unknown_entity",
        /// API: the chosen entity has no SAML 2.0 SP role.
        NoSpRole = "no_sp_role",
        /// API: the SP offers no ACS endpoint with a binding we answer with.
        NoSupportedAcs = "no_supported_acs",
        /// API: a fault of the server; the details are logged under the operation ID the
        /// answer carries.
        Internal = "internal",
    }
}

impl ErrorCode {
    /// Who is to act on it; decides the CLI's exit code.
    pub fn class(self) -> Class {
        use ErrorCode as C;
        match self {
            C::DuplicateUsername
            | C::DuplicateEmail
            | C::ChangedSince
            | C::DuplicateGroup
            | C::DuplicateEntityId
            | C::UnknownUser
            | C::UnknownGroup
            | C::UnknownApp
            | C::UnknownToken
            | C::AlreadyMember
            | C::NotMember
            | C::AlreadyGranted
            | C::NotGranted
            | C::LastAdmin
            | C::AlreadyAssigned
            | C::NotAssigned
            | C::Unauthorized
            | C::TokenReadOnly
            | C::NotFound
            | C::MethodNotAllowed
            | C::UnknownTemplate
            | C::MetadataExpired
            | C::AmbiguousEntity
            | C::UnknownEntity
            | C::NoSpRole
            | C::NoSupportedAcs
            | C::LinkUnknown
            | C::LinkExpired
            | C::LinkUsed
            | C::ScimNotConnected
            | C::ScimRemovalsPending
            | C::Throttled => Class::Refused,
            C::InvalidField
            | C::PasswordTooShort
            | C::PasswordTooLong
            | C::PasswordTooCommon
            | C::EncryptionKeyUnsupported
            | C::InvalidImportRow
            | C::InvalidCsv
            | C::ConfigInvalid
            | C::UnsupportedDatabase
            | C::NoDatabaseFile
            | C::InvalidJson
            | C::InvalidBody
            | C::UnsupportedMediaType
            | C::InvalidQuery
            | C::InvalidPath
            | C::InvalidMetadata => Class::BadInput,
            C::CorruptRow
            | C::PasswordHashFailed
            | C::Busy
            | C::MigrationFailed
            | C::DatabaseFailed
            | C::DatabaseUnwritable
            | C::DataDirUnwritable
            | C::AuditUnavailable
            | C::IoFailed
            | C::ScimUnavailable
            | C::Internal => Class::Unavailable,
        }
    }
}

latchkey_saml::stable_codes! {
    /// The IdP's browser-facing vocabulary: the code every error page shows beside its
    /// operation ID, that its log line carries, and that `latchkey_failures_total` counts by
    /// (together with the refusals answered to an application with a SAML status).
    /// `AREA-WORD`, so a code says where it came from: `WEB` (any page), `LOGIN`, `SSO`,
    /// `SLO`, `ACCOUNT`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    // Exhaustive on purpose: the web crate's matches must name every code.
    pub enum PageCode {
        /// No page at this address.
        WebNotFound = "WEB-NOT-FOUND",
        /// The page exists but not for this method.
        WebMethod = "WEB-METHOD",
        /// A form or query could not be read.
        WebForm = "WEB-FORM",
        /// A request body past the page's limit (an uploaded file, say); nothing was read.
        WebTooLarge = "WEB-TOO-LARGE",
        /// The anti-forgery token was missing or did not match its cookie.
        WebCsrf = "WEB-CSRF",
        /// Signed in, but no console role of this user allows the page or change.
        WebForbidden = "WEB-FORBIDDEN",
        /// A bounded resource (password hashing, sign-ins waiting in all, the database's
        /// connections) is full, or the database turned a write away for another one in its
        /// way; try again after Retry-After.
        WebBusy = "WEB-BUSY",
        /// This client's network has too many requests of a kind under way (sign-ins waiting
        /// for the user); nothing was stored. Try again after Retry-After.
        WebThrottled = "WEB-THROTTLED",
        /// A fault of the server (store, keys); the detail is only in the log.
        WebInternal = "WEB-INTERNAL",
        /// Too many sign-in attempts for this account, address or browser; counted before
        /// the password is checked.
        LoginThrottled = "LOGIN-THROTTLED",
        /// The password hash pool is full; the sign-in was not tried.
        LoginBusy = "LOGIN-BUSY",
        /// The password was right but the account is suspended (the page says only that the
        /// sign-in failed).
        LoginSuspended = "LOGIN-SUSPENDED",
        /// An unknown user or a wrong password (one answer for both).
        LoginFailed = "LOGIN-FAILED",
        /// The SAMLRequest could not be decoded (size caps, base64, DEFLATE, URL coding).
        SsoDecode = "SSO-DECODE",
        /// RelayState is over the binding's 80-byte cap.
        SsoRelaystate = "SSO-RELAYSTATE",
        /// The message is not a well-formed AuthnRequest.
        SsoMalformed = "SSO-MALFORMED",
        /// The AuthnRequest names no issuer.
        SsoNoIssuer = "SSO-NO-ISSUER",
        /// No application is registered with the request's issuer.
        SsoUnknownSp = "SSO-UNKNOWN-SP",
        /// The requested ACS URL or index is not registered for the application.
        SsoAcs = "SSO-ACS",
        /// The application has no HTTP-POST ACS endpoint.
        SsoNoAcs = "SSO-NO-ACS",
        /// The request asks for a response binding other than HTTP-POST.
        SsoBinding = "SSO-BINDING",
        /// The request is unsigned and the application or the IdP requires signatures.
        SsoUnsigned = "SSO-UNSIGNED",
        /// The request's signature does not verify with the application's certificates.
        SsoBadSignature = "SSO-BAD-SIGNATURE",
        /// The request is addressed to another endpoint.
        SsoDestination = "SSO-DESTINATION",
        /// The request was issued too long ago or in the future.
        SsoStale = "SSO-STALE",
        /// An AuthnRequest ID was presented a second time within its validity window (or its
        /// window closed between the check and the commit that would have recorded it).
        SsoReplayed = "SSO-REPLAYED",
        /// Assertions are to be encrypted but there is no usable (RSA) encryption
        /// certificate.
        SsoEncryption = "SSO-ENCRYPTION",
        /// The application's NameID cannot be made for this user.
        SsoNameid = "SSO-NAMEID",
        /// Building or signing the response failed (a server fault).
        SsoBuild = "SSO-BUILD",
        /// The signing key is unavailable (a server fault).
        SsoKeys = "SSO-KEYS",
        /// The store failed during SSO (a server fault).
        SsoStore = "SSO-STORE",
        /// A parked sign-in request expired or was already answered.
        SsoExpired = "SSO-EXPIRED",
        /// The user is not in any group the application is assigned to (a page, or a
        /// RequestDenied status for a passive request).
        SsoDenied = "SSO-DENIED",
        /// Answered with InvalidNameIDPolicy: the NameID format asked for is not issued.
        SsoNameidPolicy = "SSO-NAMEID-POLICY",
        /// Answered with NoAuthnContext: the authentication context asked for is not offered.
        SsoAuthnContext = "SSO-AUTHN-CONTEXT",
        /// The application (or its request) needs a second factor this session has not
        /// shown: the sign-in is parked and the browser sent to `/login/mfa` for a step-up
        /// in the same session (logged, not a refusal).
        MfaStepUp = "MFA-STEP-UP",
        /// A second factor is required and the user has none yet: the sign-in is parked
        /// while they enrol one at `/mfa/totp` (logged, not a refusal).
        MfaEnrol = "MFA-ENROL",
        /// A second factor was refused: a wrong or already used code (TOTP or recovery
        /// code), one answer for both.
        MfaFailed = "MFA-FAILED",
        /// Too many wrong second-factor codes for this user or address; counted before the
        /// code is checked.
        MfaThrottled = "MFA-THROTTLED",
        /// What was typed cannot be a code (a TOTP code is 6 digits, a recovery code 16
        /// letters and digits); not counted as a guess.
        MfaMalformed = "MFA-MALFORMED",
        /// The TOTP enrolment being confirmed expired (15 minutes) or was replaced by a
        /// newer one; a new QR code is shown.
        MfaEnrolExpired = "MFA-ENROL-EXPIRED",
        /// The user has as many TOTP apps as allowed (5): one must go before another is
        /// added.
        MfaTooMany = "MFA-TOO-MANY",
        /// Answered with another SAML error status.
        SsoRefused = "SSO-REFUSED",
        /// Answered with NoPassive: IsPassive was asked and the user is not signed in.
        SsoNoPassive = "SSO-NO-PASSIVE",
        /// A parked sign-out request expired or was already acted on.
        SloExpired = "SLO-EXPIRED",
        /// A LogoutRequest arrived a second time; the replay ended nothing.
        SloReplayed = "SLO-REPLAYED",
        /// Too many unsigned LogoutRequests (accepted under an application's legacy opt-in)
        /// from this client's network; nothing was recorded or signed out. Try again after
        /// Retry-After.
        SloThrottled = "SLO-THROTTLED",
        /// An invitation or reset link that was never issued (or whose user is gone).
        LinkUnknown = "LINK-UNKNOWN",
        /// An invitation or reset link past its expiry: ask for a new one.
        LinkExpired = "LINK-EXPIRED",
        /// An invitation or reset link already used, or replaced by a newer one.
        LinkUsed = "LINK-USED",
        /// Too many reset requests for this name or from this address (counted for names
        /// that exist and names that do not alike, so the refusal reveals nothing).
        ResetThrottled = "RESET-THROTTLED",
        /// A reset of an account with a second factor came without a right code.
        ResetFactor = "RESET-FACTOR",
        /// A new password broke the policy, or its two copies differed.
        PasswordRefused = "PASSWORD-REFUSED",
        /// An application's LogoutResponse was not trusted during single logout.
        SloResponseRefused = "SLO-RESPONSE-REFUSED",
        /// The account page: the current password given to change it was wrong (counted
        /// like a sign-in guess; nothing changed).
        AccountPasswordWrong = "ACCOUNT-PASSWORD-WRONG",
        /// The account page: a field could not be accepted (the page names it); nothing
        /// changed.
        AccountInput = "ACCOUNT-INPUT",
        /// The account page: none of the user's factors or sessions has this ID (it may be
        /// someone else's, or already gone); nothing changed.
        AccountUnknown = "ACCOUNT-UNKNOWN",
    }
}

/// What [`Error::Busy`] names when the database turned a write away because of another
/// writer (see [`transient`]).
pub const DATABASE_CONTENDED: &str = "the database, locked by another write";

/// What [`Error::Busy`] names when every pooled database connection stayed in use for the
/// pool's whole wait (or none could be opened): the node is overloaded, or the database is
/// unreachable, and the request is turned away rather than failed as a fault.
pub const DATABASE_POOL_EXHAUSTED: &str = "the database's connections, all in use";

/// Whether a database failure says only that concurrent writers were in each other's way,
/// so the same request may well succeed a moment later: PostgreSQL chose this transaction
/// as a deadlock's victim (40P01) or could not serialize it (40001), or SQLite's busy
/// timeout ran out while another connection held the write lock (SQLITE_BUSY and its
/// extended codes). Each ends the transaction, which the caller then rolls back whole.
pub fn transient(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    matches!(
        db.code().as_deref(),
        Some("40P01" | "40001" | "5" | "261" | "517" | "773")
    )
}

impl From<sqlx::Error> for Error {
    /// A transient failure ([`transient`]) becomes [`Error::Busy`], answered 503 with
    /// `Retry-After` on every surface rather than as a server fault; its cause is logged here.
    fn from(err: sqlx::Error) -> Self {
        if transient(&err) {
            tracing::warn!(error = %err, "database write turned away by a concurrent writer");
            return Error::Busy {
                what: DATABASE_CONTENDED,
                retry_after_seconds: 1,
            };
        }
        if matches!(err, sqlx::Error::PoolTimedOut) {
            tracing::warn!("no database connection came free within the pool's wait");
            return Error::Busy {
                what: DATABASE_POOL_EXHAUSTED,
                retry_after_seconds: 5,
            };
        }
        Error::Database(err)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable code of this failure (see the module docs for how the API uses it).
    pub fn code(&self) -> ErrorCode {
        use ErrorCode as C;
        match self {
            Error::DuplicateUsername { .. } => C::DuplicateUsername,
            Error::DuplicateEmail { .. } => C::DuplicateEmail,
            Error::ChangedSince { .. } => C::ChangedSince,
            Error::DuplicateGroup { .. } => C::DuplicateGroup,
            Error::DuplicateEntityId { .. } => C::DuplicateEntityId,
            Error::UnknownUser { .. } => C::UnknownUser,
            Error::UnknownGroup { .. } => C::UnknownGroup,
            Error::UnknownApplication { .. } => C::UnknownApp,
            Error::UnknownToken { .. } => C::UnknownToken,
            Error::AlreadyMember { .. } => C::AlreadyMember,
            Error::NotMember { .. } => C::NotMember,
            Error::AlreadyGranted { .. } => C::AlreadyGranted,
            Error::NotGranted { .. } => C::NotGranted,
            Error::LastAdmin => C::LastAdmin,
            Error::AlreadyAssigned { .. } => C::AlreadyAssigned,
            Error::NotAssigned { .. } => C::NotAssigned,
            Error::InvalidField { .. } => C::InvalidField,
            Error::EncryptionKeyUnsupported { .. } => C::EncryptionKeyUnsupported,
            Error::ImportRow { .. } => C::InvalidImportRow,
            Error::Csv(_) => C::InvalidCsv,
            Error::CorruptRow { .. } => C::CorruptRow,
            Error::Config { .. } => C::ConfigInvalid,
            Error::PasswordRefused { rule } => match rule {
                crate::password::PasswordRule::TooShort { .. } => C::PasswordTooShort,
                crate::password::PasswordRule::TooLong { .. } => C::PasswordTooLong,
                crate::password::PasswordRule::Common => C::PasswordTooCommon,
            },
            Error::LinkUnusable { state, .. } => match state {
                crate::enrollment::LinkState::Unknown => C::LinkUnknown,
                crate::enrollment::LinkState::Expired => C::LinkExpired,
                crate::enrollment::LinkState::Used => C::LinkUsed,
            },
            Error::Throttled { .. } => C::Throttled,
            Error::PasswordHash(_) => C::PasswordHashFailed,
            Error::Busy { .. } => C::Busy,
            Error::UnsupportedDatabase { .. } => C::UnsupportedDatabase,
            Error::NoDatabaseFile { .. } => C::NoDatabaseFile,
            Error::Migration(_) => C::MigrationFailed,
            Error::Database(_) => C::DatabaseFailed,
            Error::DatabaseUnwritable { .. } => C::DatabaseUnwritable,
            Error::DataDirUnwritable { .. } => C::DataDirUnwritable,
            Error::AuditUnavailable(_) => C::AuditUnavailable,
            Error::Io { .. } => C::IoFailed,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::{DATABASE_POOL_EXHAUSTED, Error, ErrorCode};

    /// Every surface answers `Busy` with 503 and Retry-After; a pool that stayed full for its
    /// whole wait is load (or an unreachable database), not a fault of this request.
    #[test]
    fn a_pool_that_stays_full_is_busy_not_a_fault() {
        let err = Error::from(sqlx::Error::PoolTimedOut);
        assert!(
            matches!(
                err,
                Error::Busy {
                    what: DATABASE_POOL_EXHAUSTED,
                    retry_after_seconds: 5
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.code(), ErrorCode::Busy);
        assert!(matches!(
            Error::from(sqlx::Error::RowNotFound),
            Error::Database(_)
        ));
    }
}
