//! Configuration shared by the server and the admin CLI. Operators read every key in
//! `docs/configuration.md`, which a test in the CLI holds to these types.
//!
//! Resolution order: an explicit file (`--config FILE`), else `$LATCHKEY_CONFIG`, else
//! `./latchkey.toml` when it exists, else built-in defaults with data under `./latchkey-data/`.
//! Environment variables then override the file: `LATCHKEY_DATABASE_URL` (or, failing that,
//! `DATABASE_URL`), `LATCHKEY_DATA_DIR`, `LATCHKEY_KEY_STORE` and `LATCHKEY_KEK_FILE` (the
//! key-encryption key itself may come from `LATCHKEY_KEK`, read only where it is used, see
//! [`crate::keys::Kek`]). Relative paths in a file are resolved against the
//! file's directory, so a config works the same from any working directory.
//!
//! Unknown keys are refused: a misspelt `[databse]` section must not silently point the admin
//! CLI at a fresh, empty store.
//!
//! ```toml
//! data_dir = "/var/lib/latchkey"          # default: ./latchkey-data
//!
//! [database]
//! url = "postgres://latchkey@db/latchkey"  # default: sqlite file <data_dir>/latchkey.db
//! max_connections = 10                    # default: 10 for PostgreSQL, 4 for SQLite
//!
//! [password]                               # Argon2id, OWASP defaults
//! memory_kib = 19456
//! iterations = 2
//! parallelism = 1
//! max_concurrent = 0                       # hashes at once on this node; 0: one per core
//! max_queued = 0                           # waiting for a slot, else 503; 0: four per slot
//! min_length = 12                          # new passwords; also refused: the 10k most common
//!
//! [audit]
//! retain_days = 0                          # 0: keep every event; else delete older ones daily
//!
//! [enrollment]
//! invitation_hours = 72                    # life of a `user invite` link
//! reset_minutes = 30                       # life of a password-reset link
//!
//! [keys]                                   # where the IdP's signing keys live
//! store = "database"                       # files (default: <data_dir>/keys) | database
//! kek_file = "/etc/latchkey/kek"           # database only; or $LATCHKEY_KEK
//! refresh_seconds = 30                     # database only: how soon other nodes' rollovers show
//! metadata_cache_seconds = 86400           # the metadata's cacheDuration; `key activate` waits this long
//! ```

pub mod metrics_access;
pub mod server;
pub mod smtp;

pub use metrics_access::{MetricsAccess, Network};
pub use server::{ServerConfig, ServerSettings};
pub use smtp::{SmtpConfig, SmtpSecurity};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The file looked for in the working directory when no config is named.
pub const DEFAULT_CONFIG_FILE: &str = "latchkey.toml";
/// The data directory used when none is configured.
pub const DEFAULT_DATA_DIR: &str = "latchkey-data";
/// The SQLite file name inside the data directory.
pub const SQLITE_FILE: &str = "latchkey.db";

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where local state (the SQLite file, keys) lives.
    pub data_dir: PathBuf,
    /// Which database holds the shared state.
    pub database: DatabaseConfig,
    /// Argon2id cost parameters for new password hashes.
    pub password: PasswordConfig,
    /// The SSO server (`latchkey serve`): see [`server`].
    pub server: server::ServerConfig,
    /// Where the signing keys live: see [`crate::keys`].
    pub keys: KeysConfig,
    /// Second factors: see [`crate::mfa`].
    pub mfa: MfaConfig,
    /// The admin console under `/admin`: see [`crate::console`].
    pub console: ConsoleConfig,
    /// How long invitation and password-reset links live: see [`crate::enrollment`].
    pub enrollment: EnrollmentConfig,
    /// Where invitation and reset mail goes: see [`smtp`].
    pub smtp: SmtpConfig,
    /// Passkeys and security keys: see [`crate::webauthn`].
    pub webauthn: crate::webauthn::WebauthnConfig,
    /// The SCIM client's delivery and reconciliation: see [`crate::provisioning`].
    pub provisioning: ProvisioningConfig,
    /// How long the audit log keeps events.
    pub audit: AuditConfig,
}

/// The `[audit]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Events older than this many days are deleted by `latchkey serve` (a sweep every ten
    /// minutes, itself an audit event); 0 keeps every event. Anyone can make the IdP write a line
    /// (a failed sign-in, a refused request), so without a bound the log grows as long as
    /// the IdP runs; most organisations keep one to seven years.
    pub retain_days: u32,
}

impl AuditConfig {
    /// The age past which events go, if any.
    pub fn retention(&self) -> Option<time::Duration> {
        (self.retain_days > 0).then(|| time::Duration::days(i64::from(self.retain_days)))
    }
}

/// The `[provisioning]` section: how `latchkey serve` delivers the SCIM outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// How often the worker looks for rows nobody woke it for (written by another node or
    /// a CLI command), in seconds. 1 to 300.
    pub poll_seconds: u32,
    /// Rows taken, and requests in flight, at once. 1 to 500.
    pub batch: u32,
    /// The limit of one SCIM request, in seconds. 1 to 120.
    pub request_timeout_seconds: u32,
    /// The longest wait between retries of a failing delivery, in seconds. 10 to 86400.
    pub max_backoff_seconds: u32,
    /// Every connected application is reconciled this often, in minutes; 0 (the default)
    /// turns the schedule off (`latchkey app sync` runs it by hand).
    pub sync_interval_minutes: u32,
    /// `/readyz` reports the outbox stuck when its oldest row is older than this, in
    /// seconds; 0 turns the check off.
    pub stuck_after_seconds: u32,
    /// `/readyz` says the node is degraded (still ready) when a removal (someone's access
    /// taken away in the directory) has waited longer than this to reach its application,
    /// in seconds; 0 turns the check off. `$LATCHKEY_SCIM_REMOVAL_OVERDUE_SECONDS`.
    pub removal_overdue_seconds: u32,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            poll_seconds: 2,
            batch: 32,
            request_timeout_seconds: 10,
            max_backoff_seconds: 600,
            sync_interval_minutes: 0,
            stuck_after_seconds: 900,
            removal_overdue_seconds: 3600,
        }
    }
}

impl ProvisioningConfig {
    fn check(&self) -> Result<(), String> {
        let ranges = [
            ("poll_seconds", self.poll_seconds, 1, 300),
            ("batch", self.batch, 1, 500),
            (
                "request_timeout_seconds",
                self.request_timeout_seconds,
                1,
                120,
            ),
            ("max_backoff_seconds", self.max_backoff_seconds, 10, 86_400),
        ];
        for (name, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                return Err(format!("[provisioning] {name} must be {low}-{high}"));
            }
        }
        Ok(())
    }

    /// How long a removal may wait before `/readyz` says so (`None`: not checked).
    pub fn removal_overdue(&self) -> Option<time::Duration> {
        (self.removal_overdue_seconds > 0)
            .then(|| time::Duration::seconds(i64::from(self.removal_overdue_seconds)))
    }

    /// The delivery worker's settings.
    pub fn worker(&self) -> crate::provisioning::worker::WorkerSettings {
        let timeout = std::time::Duration::from_secs(u64::from(self.request_timeout_seconds));
        crate::provisioning::worker::WorkerSettings {
            batch: self.batch,
            poll: std::time::Duration::from_secs(u64::from(self.poll_seconds)),
            // Longer than the three requests a delivery may make.
            lease: time::Duration::seconds(i64::from(self.request_timeout_seconds) * 3 + 30),
            backoff_base: time::Duration::seconds(2),
            backoff_max: time::Duration::seconds(i64::from(self.max_backoff_seconds)),
            client: crate::provisioning::client::ClientSettings {
                timeout,
                ..Default::default()
            },
        }
    }
}

/// The `[mfa]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// Every sign-in, to every application and the portal, needs a second factor (on top of
    /// what applications, groups and users require: see [`crate::mfa::policy`]).
    pub required: bool,
}

/// The `[console]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// The console asks for a second factor in the session, whatever `[mfa]` says: a
    /// console session can change everyone's access, so a stolen password alone must not
    /// open it. Off only where the console sits behind another strong sign-in.
    pub require_mfa: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig { require_mfa: true }
    }
}

/// The `[enrollment]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollmentConfig {
    /// How long an invitation link (`latchkey user invite`) can be used, in hours, unless
    /// the command names another time (`--expires`). 1 to 720 (30 days).
    pub invitation_hours: u32,
    /// How long a password-reset link can be used, in minutes. 5 to 1440.
    pub reset_minutes: u32,
}

impl Default for EnrollmentConfig {
    fn default() -> Self {
        EnrollmentConfig {
            invitation_hours: 72,
            reset_minutes: 30,
        }
    }
}

impl EnrollmentConfig {
    /// The default life of an invitation.
    pub fn invitation_ttl(&self) -> time::Duration {
        time::Duration::hours(i64::from(self.invitation_hours))
    }

    /// The life of a reset link.
    pub fn reset_ttl(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.reset_minutes))
    }
}

/// The `[keys]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Files under `<data_dir>/keys` (one node) or the database (nodes sharing PostgreSQL).
    pub store: KeyStoreKind,
    /// The key-encryption key for `store = "database"` (32 random bytes, base64, mode
    /// 0600); `$LATCHKEY_KEK` takes precedence. Not in the database by design.
    pub kek_file: Option<PathBuf>,
    /// How often a node looks for a rollover done by another node (database store only).
    /// The look is one small query; keys are re-read only when something changed.
    pub refresh_seconds: u64,
    /// The `cacheDuration` the IdP metadata carries: how long an SP may keep a copy before
    /// fetching it again. `key activate` refuses until the next key has been published this
    /// long, since an SP holding an older copy would not yet trust it. At most 7 days (the
    /// metadata's `validUntil`).
    pub metadata_cache_seconds: u64,
}

/// The longest `metadata_cache_seconds`: the published metadata is valid for 7 days, and a
/// copy cannot be cached past its `validUntil`.
pub const MAX_METADATA_CACHE_SECONDS: u64 = 7 * 24 * 3600;

impl KeysConfig {
    /// The metadata's `cacheDuration`.
    pub fn metadata_cache(&self) -> time::Duration {
        time::Duration::seconds(i64::try_from(self.metadata_cache_seconds).unwrap_or(i64::MAX))
    }
}

/// Where the signing keys are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStoreKind {
    /// PEM files under `<data_dir>/keys`, per node.
    #[default]
    Files,
    /// The `signing_keys` table, sealed under the key-encryption key, shared by all nodes.
    Database,
}

impl KeyStoreKind {
    /// Inverse of the TOML spelling, for `LATCHKEY_KEY_STORE`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "files" => Some(Self::Files),
            "database" => Some(Self::Database),
            _ => None,
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            store: KeyStoreKind::Files,
            kek_file: None,
            refresh_seconds: 30,
            metadata_cache_seconds: 24 * 3600,
        }
    }
}

/// The `[database]` section. `Debug` hides a password in the URL, so logging the
/// configuration at start-up cannot leak it.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// A `sqlite://` or `postgres://` URL; `None` means the SQLite file in the data directory.
    pub url: Option<String>,
    /// Upper bound on pooled connections per process; `None` picks the backend's default
    /// ([`crate::store::Backend::default_max_connections`]).
    pub max_connections: Option<u32>,
}

/// The `[password]` section: Argon2id parameters (OWASP's recommended minimum by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Degree of parallelism.
    pub parallelism: u32,
    /// Most hashes computed at once on this node; each holds `memory_kib` for its duration,
    /// so this bounds the memory sign-in can take. 0 means one per CPU core.
    pub max_concurrent: u32,
    /// Most requests waiting for a hashing slot; past it a request is answered 503 with
    /// `Retry-After` at once. 0 means four per concurrent slot.
    pub max_queued: u32,
    /// The fewest characters a new password may have (at least 8). Checked when a password
    /// is set (CLI, API, invitation, reset), never at sign-in.
    pub min_length: u32,
}

impl PasswordConfig {
    /// `min_length` as a count to compare with.
    pub fn min_length(&self) -> usize {
        usize::try_from(self.min_length).unwrap_or(usize::MAX)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database: DatabaseConfig::default(),
            password: PasswordConfig::default(),
            server: server::ServerConfig::default(),
            keys: KeysConfig::default(),
            mfa: MfaConfig::default(),
            console: ConsoleConfig::default(),
            enrollment: EnrollmentConfig::default(),
            smtp: SmtpConfig::default(),
            provisioning: ProvisioningConfig::default(),
            audit: AuditConfig::default(),
            webauthn: crate::webauthn::WebauthnConfig::default(),
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field(
                "url",
                &self.url.as_deref().map(crate::store::backend::redact),
            )
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 0,
            max_queued: 0,
            min_length: crate::password::DEFAULT_MIN_LENGTH,
        }
    }
}

/// Reads the process environment; a trait so tests can resolve a config without touching it.
pub trait Environment {
    /// The value of a variable, if set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;
}

/// A fixed set of variables: how tests (and a caller holding an env file) resolve a config.
impl<S: std::hash::BuildHasher> Environment for std::collections::HashMap<&str, &str, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string())
    }
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Config {
    /// Loads the configuration as the CLI and the server do (see the module docs).
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        Self::load_with(explicit, &ProcessEnv)
    }

    /// [`Config::load`] with an injected environment.
    pub fn load_with(explicit: Option<&Path>, env: &dyn Environment) -> Result<Config> {
        let mut config = match Self::locate(explicit, env) {
            Some(path) => Self::from_file(&path)?,
            None => Config::default(),
        };
        if let Some(dir) = env.var("LATCHKEY_DATA_DIR") {
            config.data_dir = PathBuf::from(dir);
        }
        if let Some(url) = env
            .var("LATCHKEY_DATABASE_URL")
            .or_else(|| env.var("DATABASE_URL"))
        {
            config.database.url = Some(url);
        }
        if let Some(kind) = env.var("LATCHKEY_KEY_STORE") {
            config.keys.store = KeyStoreKind::parse(&kind).ok_or_else(|| Error::Config {
                path: PathBuf::from("$LATCHKEY_KEY_STORE"),
                reason: format!("unknown key store {kind:?}, expected `files` or `database`"),
            })?;
        }
        if let Some(file) = env.var("LATCHKEY_KEK_FILE") {
            config.keys.kek_file = Some(PathBuf::from(file));
        }
        if let Some(password) = env.var("LATCHKEY_SMTP_PASSWORD") {
            config.smtp.password = Some(password);
        }
        if let Some(seconds) = env.var("LATCHKEY_SCIM_REMOVAL_OVERDUE_SECONDS") {
            config.provisioning.removal_overdue_seconds =
                seconds.trim().parse().map_err(|_| Error::Config {
                    path: PathBuf::from("$LATCHKEY_SCIM_REMOVAL_OVERDUE_SECONDS"),
                    reason: format!("{seconds:?} is not a number of seconds"),
                })?;
        }
        Ok(config)
    }

    /// The file [`Config::load_with`] reads, or `None` for the built-in defaults.
    pub fn locate(explicit: Option<&Path>, env: &dyn Environment) -> Option<PathBuf> {
        match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => match env.var("LATCHKEY_CONFIG") {
                Some(path) => Some(PathBuf::from(path)),
                None => {
                    let local = PathBuf::from(DEFAULT_CONFIG_FILE);
                    local.is_file().then_some(local)
                }
            },
        }
    }

    /// Parses one TOML file, resolving its relative paths against the file's directory.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::from_toml(&text).map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        if config.data_dir.is_relative()
            && let Some(base) = path.parent()
        {
            config.data_dir = base.join(&config.data_dir);
        }
        if let Some(kek) = &config.keys.kek_file
            && kek.is_relative()
            && let Some(base) = path.parent()
        {
            config.keys.kek_file = Some(base.join(kek));
        }
        Ok(config)
    }

    /// Parses TOML text; the error is a single line naming the bad key, and for an unknown
    /// key the line it is on and the nearest valid one (a typo should cost one look).
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| explain(&e, text))?;
        let floor = crate::password::MIN_LENGTH_FLOOR;
        let ceiling = u32::try_from(crate::password::MAX_LENGTH).unwrap_or(u32::MAX);
        if !(floor..=ceiling).contains(&config.password.min_length) {
            return Err(format!("[password] min_length must be {floor}-{ceiling}"));
        }
        if !(1..=720).contains(&config.enrollment.invitation_hours) {
            return Err("[enrollment] invitation_hours must be 1-720 (30 days)".into());
        }
        if !(5..=1440).contains(&config.enrollment.reset_minutes) {
            return Err("[enrollment] reset_minutes must be 5-1440 (a day)".into());
        }
        if config.audit.retain_days > 36_500 {
            return Err("[audit] retain_days must be 0 (keep every event) to 36500".into());
        }
        config.smtp.check()?;
        config.provisioning.check()?;
        if config.keys.refresh_seconds == 0 {
            return Err("[keys] refresh_seconds must be at least 1".into());
        }
        if !(1..=MAX_METADATA_CACHE_SECONDS).contains(&config.keys.metadata_cache_seconds) {
            return Err(format!(
                "[keys] metadata_cache_seconds must be 1-{MAX_METADATA_CACHE_SECONDS} (7 days, \
                 the metadata's validity)"
            ));
        }
        Ok(config)
    }

    /// A copy safe to print: the database password and the metrics token become `***`.
    /// (`LATCHKEY_KEK` is never part of the configuration, only its file's path is.)
    pub fn redacted(&self) -> Config {
        let mut shown = self.clone();
        shown.database.url = shown
            .database
            .url
            .as_deref()
            .map(crate::store::backend::redact);
        if shown.server.metrics_token.is_some() {
            shown.server.metrics_token = Some("***".into());
        }
        if shown.smtp.password.is_some() {
            shown.smtp.password = Some("***".into());
        }
        shown
    }

    /// The configuration as a `latchkey.toml` would spell it (unset optional keys omitted).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| e.to_string())
    }

    /// The database URL to connect to: the configured one, or the SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => sqlite_url(&self.data_dir.join(SQLITE_FILE)),
        }
    }
}

/// One line for a TOML or schema error; an unknown key gets its line number and a suggestion.
fn explain(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().replace('\n', " ");
    let Some((unknown, expected)) = unknown_key(&message) else {
        return message;
    };
    let line = error
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let at = line.map(|n| format!("line {n}: ")).unwrap_or_default();
    match nearest(unknown, &expected) {
        Some(near) => format!("{at}unknown key `{unknown}`, did you mean `{near}`? ({message})"),
        None => format!("{at}{message}"),
    }
}

/// Reads serde's unknown-field message (``unknown field `x`, expected one of `a`, `b` ``):
/// the unknown key and the keys valid at that place. Serde names no other way to get them.
pub fn unknown_key(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((unknown, expected))
}

/// The candidate closest to `key` by edit distance, if close enough to be a typo rather
/// than another word (at most a third of the key's length, and at least 1).
fn nearest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (key.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(key, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters, one row at a time.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Builds a `sqlite://` URL for a file path, percent-encoding what a URL cannot carry raw.
pub fn sqlite_url(path: &Path) -> String {
    let raw = path.to_string_lossy();
    let mut out = String::from("sqlite://");
    for byte in raw.bytes() {
        match byte {
            b'%' | b'?' | b'#' | b' ' => out.push_str(&format!("%{byte:02X}")),
            _ => out.push(char::from(byte)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn defaults_use_sqlite_in_data_dir() {
        let config = Config::default();
        assert_eq!(config.database_url(), "sqlite://latchkey-data/latchkey.db");
        assert_eq!(config.password.memory_kib, 19_456);
        assert_eq!(config.password.iterations, 2);
        assert_eq!(config.password.parallelism, 1);
    }

    #[test]
    fn file_paths_are_relative_to_the_file_and_env_overrides_url() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latchkey.toml");
        std::fs::write(
            &file,
            "data_dir = \"state\"\n[database]\nurl = \"sqlite://x.db\"\n",
        )
        .unwrap();
        let env = HashMap::new();
        let config = Config::load_with(Some(&file), &env).unwrap();
        assert_eq!(config.data_dir, dir.path().join("state"));
        assert_eq!(config.database_url(), "sqlite://x.db");

        let env = HashMap::from([
            ("DATABASE_URL", "postgres://a@b/c"),
            ("LATCHKEY_DATABASE_URL", "postgres://d@e/f"),
        ]);
        let config = Config::load_with(Some(&file), &env).unwrap();
        assert_eq!(config.database_url(), "postgres://d@e/f");
    }

    #[test]
    fn latchkey_config_env_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("other.toml");
        std::fs::write(&file, "[password]\niterations = 3\n").unwrap();
        let path: &'static str = Box::leak(file.to_string_lossy().into_owned().into_boxed_str());
        let env = HashMap::from([("LATCHKEY_CONFIG", path)]);
        let config = Config::load_with(None, &env).unwrap();
        assert_eq!(config.password.iterations, 3);
        assert_eq!(config.password.memory_kib, 19_456);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("[databse]\nurl = \"x\"\n").unwrap_err();
        assert!(err.contains("databse"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn a_misspelt_key_is_named_with_its_line_and_the_nearest_valid_key() {
        let err = Config::from_toml("[server]\nlisten = \"127.0.0.1:1\"\nmetrics_alow = []\n")
            .unwrap_err();
        assert!(
            err.starts_with("line 3: unknown key `metrics_alow`"),
            "{err}"
        );
        assert!(err.contains("did you mean `metrics_allow`?"), "{err}");
        let err = Config::from_toml("[databse]\n").unwrap_err();
        assert!(err.contains("did you mean `database`?"), "{err}");
        // Nothing close: no guess, but the valid keys are still listed.
        let err = Config::from_toml("[password]\ncolour = 1\n").unwrap_err();
        assert!(!err.contains("did you mean"), "{err}");
        assert!(err.contains("memory_kib"), "{err}");
    }

    #[test]
    fn unknown_key_reads_every_spelling_of_serdes_message() {
        assert_eq!(
            unknown_key("unknown field `x`, expected one of `a`, `b`, `c`"),
            Some(("x", vec!["a", "b", "c"]))
        );
        assert_eq!(
            unknown_key("unknown field `x`, expected `a` or `b`"),
            Some(("x", vec!["a", "b"]))
        );
        assert_eq!(
            unknown_key("unknown field `x`, there are no fields"),
            Some(("x", vec![]))
        );
        assert_eq!(unknown_key("invalid type: integer"), None);
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("listen", "listen"), 0);
        assert_eq!(edit_distance("lsiten", "listen"), 2);
        assert_eq!(edit_distance("metrics_alow", "metrics_allow"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn redacted_masks_the_database_password_and_the_metrics_token() {
        let mut config = Config::default();
        config.database.url = Some("postgres://latchkey:s3cret@db.internal/idp".into());
        config.server.metrics_token = Some("t0ken".into());
        config.smtp.password = Some("m4il-secret".into());
        let shown = config.redacted().to_toml().unwrap();
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken") && !shown.contains("m4il"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://latchkey:***@db.internal/idp"),
            "{shown}"
        );
        assert!(shown.contains("metrics_token = \"***\""), "{shown}");
        // What is printed is a configuration file that loads again.
        let again = Config::from_toml(&Config::default().to_toml().unwrap()).unwrap();
        assert_eq!(again.server, Config::default().server);
        assert_eq!(again.password, Config::default().password);
    }

    #[test]
    fn debug_hides_the_database_password() {
        let mut config = Config::default();
        config.database.url = Some("postgres://latchkey:s3cret@db.internal/idp".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://latchkey:***@db.internal/idp"),
            "{shown}"
        );
    }

    #[test]
    fn keys_section_defaults_to_files_and_takes_env_overrides() {
        let config = Config::default();
        assert_eq!(config.keys.store, KeyStoreKind::Files);
        assert_eq!(config.keys.refresh_seconds, 30);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latchkey.toml");
        std::fs::write(
            &file,
            "[keys]\nstore = \"database\"\nkek_file = \"secrets/kek\"\nrefresh_seconds = 5\n",
        )
        .unwrap();
        let config = Config::load_with(Some(&file), &HashMap::new()).unwrap();
        assert_eq!(config.keys.store, KeyStoreKind::Database);
        assert_eq!(config.keys.kek_file, Some(dir.path().join("secrets/kek")));
        assert_eq!(config.keys.refresh_seconds, 5);

        let env = HashMap::from([
            ("LATCHKEY_KEY_STORE", "files"),
            ("LATCHKEY_KEK_FILE", "/run/secrets/kek"),
        ]);
        let config = Config::load_with(Some(&file), &env).unwrap();
        assert_eq!(config.keys.store, KeyStoreKind::Files);
        assert_eq!(
            config.keys.kek_file,
            Some(PathBuf::from("/run/secrets/kek"))
        );

        let env = HashMap::from([("LATCHKEY_KEY_STORE", "vault")]);
        let err = Config::load_with(Some(&file), &env).unwrap_err();
        assert!(err.to_string().contains("LATCHKEY_KEY_STORE"), "{err}");
    }

    #[test]
    fn removal_overdue_is_an_hour_set_in_the_file_or_the_environment() {
        let config = Config::default();
        assert_eq!(
            config.provisioning.removal_overdue(),
            Some(time::Duration::hours(1))
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latchkey.toml");
        std::fs::write(&file, "[provisioning]\nremoval_overdue_seconds = 0\n").unwrap();
        let config = Config::load_with(Some(&file), &HashMap::new()).unwrap();
        assert_eq!(
            config.provisioning.removal_overdue(),
            None,
            "0 turns it off"
        );
        let env = HashMap::from([("LATCHKEY_SCIM_REMOVAL_OVERDUE_SECONDS", "600")]);
        let config = Config::load_with(Some(&file), &env).unwrap();
        assert_eq!(
            config.provisioning.removal_overdue(),
            Some(time::Duration::minutes(10))
        );
        let env = HashMap::from([("LATCHKEY_SCIM_REMOVAL_OVERDUE_SECONDS", "an hour")]);
        let err = Config::load_with(Some(&file), &env).unwrap_err();
        assert!(
            err.to_string()
                .contains("LATCHKEY_SCIM_REMOVAL_OVERDUE_SECONDS"),
            "{err}"
        );
    }

    #[test]
    fn bad_keys_settings_are_refused() {
        let err = Config::from_toml("[keys]\nstore = \"vault\"\n").unwrap_err();
        assert!(err.contains("vault"), "{err}");
        let err = Config::from_toml("[keys]\nkek = \"x\"\n").unwrap_err();
        assert!(err.contains("kek"), "{err}");
        let err = Config::from_toml("[keys]\nrefresh_seconds = 0\n").unwrap_err();
        assert!(err.contains("refresh_seconds"), "{err}");
        for bad in ["0", "604801"] {
            let err = Config::from_toml(&format!("[keys]\nmetadata_cache_seconds = {bad}\n"))
                .unwrap_err();
            assert!(err.contains("metadata_cache_seconds"), "{err}");
        }
        let config = Config::from_toml("[keys]\nmetadata_cache_seconds = 600\n").unwrap();
        assert_eq!(config.keys.metadata_cache(), time::Duration::minutes(10));
        assert_eq!(
            Config::default().keys.metadata_cache(),
            time::Duration::hours(24)
        );
    }

    #[test]
    fn audit_retention_is_off_by_default_and_bounded() {
        assert_eq!(Config::default().audit.retention(), None);
        let config = Config::from_toml("[audit]\nretain_days = 400\n").unwrap();
        assert_eq!(config.audit.retention(), Some(time::Duration::days(400)));
        let err = Config::from_toml("[audit]\nretain_days = 36501\n").unwrap_err();
        assert!(err.contains("retain_days"), "{err}");
    }

    #[test]
    fn sqlite_url_escapes_url_syntax() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/a b?#%.db")),
            "sqlite:///tmp/a%20b%3F%23%25.db"
        );
    }
}
