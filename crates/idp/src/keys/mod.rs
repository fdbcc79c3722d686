//! The IdP's signing keys: one `active` key that signs, an optional `next` key that is
//! already published in metadata so SPs can trust it before it signs anything, and
//! `retired` keys kept for audit.
//!
//! Rollover is two steps on purpose: `rotate` creates `next`, the admin waits until
//! every SP has refreshed the IdP metadata (which lists both certificates), then
//! `activate` swaps. Swapping in one step would break every SP that pinned the old
//! certificate. `retire_next` abandons a rollover before activation.
//!
//! "Wait until every SP has refreshed" is enforced, not left to the admin's patience: the
//! metadata tells SPs how long they may keep a copy (`cacheDuration`, `[keys]
//! metadata_cache_seconds`), so [`Activation::for_config`] refuses to promote a next key
//! that has been published for less than that. A next key is published from the moment it
//! is created (its `created_at`), or, with the database store, at the latest one `[keys]
//! refresh_seconds` later, when every node has looked. [`Activation::Forced`] skips the wait
//! for an emergency (a leaked active key), knowing that SPs with an older copy will refuse
//! the new signatures until they fetch again.
//!
//! Every change (rotate, activate, retire-next, import, rewrap) is an audit event with its
//! actor: written in the change's own transaction by the database store, and by
//! [`Keyring`] around the file write for the file store.
//!
//! # Two stores, one interface
//! [`Keyring`] is what the CLI talks to and [`crate::sso::IdpKeys`] what the server signs
//! with; neither cares where the keys live (`[keys] store` in the configuration):
//!
//! * `files` ([`KeyStore`], the default): PEM files under `<data_dir>/keys`. Enough for one
//!   node, and the keys can be read and backed up with ordinary tools.
//! * `database` ([`DatabaseKeyStore`]): rows of the `signing_keys` table, so N nodes on one
//!   PostgreSQL need nothing else in common: no shared directory to mount and keep in
//!   step. A rollover done on any node reaches the others at their next refresh.
//!
//! File layout under the key directory (mode 0700):
//! ```text
//! state.json          which key is active / next / retired, written atomically
//! <id>.key.pem        PKCS#8 private key, mode 0600, created with O_EXCL
//! <id>.crt.pem        self-signed certificate, mode 0644
//! ```
//! `<id>` is the first 16 hex digits of the certificate's SHA-256 fingerprint, in both
//! stores, so `latchkey key import-files` keeps the ids an admin already knows.
//!
//! # Security
//! Private key files are refused on load when readable by group or others, as OpenSSH
//! does: a key another account could read is no longer a secret. Key PEM text is held in
//! [`zeroize::Zeroizing`] and never appears in `Debug` output.
//!
//! In the database a private key is sealed with AES-256-GCM under a key-encryption key
//! that is kept out of the database ([`Kek`]): whoever can read the database (a dump, a
//! backup, a read-only injection) cannot sign. Whoever can *write* it still cannot make the
//! IdP publish or sign with a key of their choosing: every key the server loads, the next
//! one included, must open under the KEK and match its certificate, and a sealed key does
//! not open in another row.

mod database;
mod files;
mod kek;
mod keyring;
mod state;

use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
    PublicKeyData, SerialNumber,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

pub use database::DatabaseKeyStore;
pub use files::KeyStore;
pub use kek::{KEK_ENV, Kek, KekSource};
pub use keyring::Keyring;
use state::KeyRecord;

use crate::audit::{self, Change};

/// How long a generated certificate is valid. SAML SPs mostly ignore certificate
/// validity (the key is what is pinned), but some refuse expired ones, so it is long.
const CERT_VALIDITY: Duration = Duration::days(10 * 365);

/// The subject of generated certificates.
const CERT_COMMON_NAME: &str = "Latchkey IdP signing key";

/// What can go wrong with a key store or the key-encryption key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A file or the directory could not be read or written.
    #[error("key store {path}: {source}", path = path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A private key file can be read by group or others.
    #[error(
        "private key {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)",
        path = path.display()
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// `state.json` or a key/certificate file does not decode, or they disagree.
    #[error("key store {path}: {reason}", path = path.display())]
    Corrupt {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Key or certificate generation failed in the crypto library.
    #[error("cannot generate a signing key: {0}")]
    Generate(String),
    /// The store has no active key yet (call `load_or_generate` first).
    #[error("the key store has no active key")]
    NoActiveKey,
    /// `activate` was called with no `next` key to promote.
    #[error("there is no next key to activate; run `latchkey key rotate` first")]
    NoNextKey,
    /// `rotate` was called while a `next` key already waits.
    #[error("next key {0} already exists; activate it before rotating again")]
    NextKeyExists(String),
    /// The XML-security layer refused a stored key or certificate.
    #[error("signing key {id} is unusable: {source}")]
    Unusable {
        /// The key's id.
        id: String,
        /// Why latchkey-xmlsec refused it.
        source: latchkey_xmlsec::crypto::KeyError,
    },
    /// `[keys] store = "database"` without a key-encryption key to seal the keys with.
    #[error(
        "the database key store needs a key-encryption key: set [keys] kek_file or ${KEK_ENV} \
         (32 random bytes, base64; `latchkey key new-kek FILE` makes one)"
    )]
    KekMissing,
    /// The key-encryption key does not decode to 32 bytes.
    #[error("key-encryption key from {kek}: {reason}")]
    KekInvalid {
        /// Where it came from.
        kek: KekSource,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored key was sealed under another key-encryption key than the one configured:
    /// this node was given the wrong KEK (or a writer used one the other nodes lack).
    #[error(
        "signing key {key_id} was sealed with key-encryption key {sealed_with}, but the KEK \
         from {kek} is {kek_id}; give this node the KEK the other nodes use"
    )]
    WrongKek {
        /// The key that could not be opened.
        key_id: String,
        /// Where the configured KEK came from.
        kek: KekSource,
        /// The configured KEK's id.
        kek_id: String,
        /// The id of the KEK the row was sealed with.
        sealed_with: String,
    },
    /// A sealed key did not open under the right KEK: its row was altered, or its sealed
    /// key was copied from another row.
    #[error(
        "signing key {id}: the sealed private key fails authentication (tampered or swapped row)"
    )]
    Tampered {
        /// The row's key id.
        id: String,
    },
    /// A `signing_keys` row does not decode, or its key and certificate disagree.
    #[error("signing key {id} in the database: {reason}")]
    StoredCorrupt {
        /// The row's key id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `import-files` into a database key store that already holds keys: merging two key
    /// histories could leave two active keys, so only an empty store is filled.
    #[error(
        "the database key store already holds {count} key(s); import-files only fills an empty one"
    )]
    ImportTargetNotEmpty {
        /// How many keys it holds.
        count: usize,
    },
    /// `activate` before the next key has been published for the metadata's cacheDuration:
    /// an SP holding an older copy of the metadata would refuse every response it signs.
    #[error(
        "next key {id} has been in the published metadata for {published} only, but SPs may \
         keep a copy of the metadata for {wait} ([keys] metadata_cache_seconds): activating \
         now can break their logins. Wait {remaining} more, or run `latchkey key activate \
         --force` to activate anyway",
        published = human(*published),
        wait = human(*wait),
        remaining = human(*remaining),
    )]
    TooSoon {
        /// The next key's id.
        id: String,
        /// How long it has been published, in whole seconds.
        published: Duration,
        /// How long it must be.
        wait: Duration,
        /// What is left of the wait.
        remaining: Duration,
    },
    /// The database refused or failed a query.
    #[error("key store database: {0}")]
    Store(#[source] Box<crate::Error>),
}

impl From<crate::Error> for KeyError {
    fn from(e: crate::Error) -> Self {
        KeyError::Store(Box::new(e))
    }
}

impl From<sqlx::Error> for KeyError {
    fn from(e: sqlx::Error) -> Self {
        KeyError::Store(Box::new(crate::Error::from(e)))
    }
}

/// When `activate` may promote the next key (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Activation {
    /// Only once the next key has been published at least this long.
    AfterPublished(Duration),
    /// At once. SPs holding a copy of the metadata from before the next key was published
    /// refuse its signatures until they fetch the metadata again.
    Forced,
}

impl Activation {
    /// The wait `config` implies: the metadata's cacheDuration, plus, with the database
    /// store, `refresh_seconds` (another node publishes a new key only when it next looks).
    pub fn for_config(config: &crate::config::KeysConfig) -> Self {
        let refresh = (config.store == crate::config::KeyStoreKind::Database)
            .then(|| Duration::seconds(i64::try_from(config.refresh_seconds).unwrap_or(0)));
        Activation::after(config.metadata_cache(), refresh)
    }

    /// The wait for a metadata `cacheDuration` and, for the database store, the nodes'
    /// refresh interval (what [`Activation::for_config`] reads from the configuration; the
    /// running server knows both without it).
    pub fn after(metadata_cache: Duration, refresh: Option<Duration>) -> Self {
        Activation::AfterPublished(metadata_cache + refresh.unwrap_or(Duration::ZERO))
    }

    /// When a key published at `published_at` may be promoted under this rule.
    pub fn earliest(self, published_at: OffsetDateTime) -> OffsetDateTime {
        match self {
            Activation::AfterPublished(wait) => published_at + wait,
            Activation::Forced => published_at,
        }
    }

    /// Whether `next` (published since its creation) may be promoted at `now`.
    fn check(self, next: &KeyInfo, now: OffsetDateTime) -> Result<(), KeyError> {
        let Activation::AfterPublished(wait) = self else {
            return Ok(());
        };
        let published = (now - next.created_at).max(Duration::ZERO);
        if published >= wait {
            return Ok(());
        }
        Err(KeyError::TooSoon {
            id: next.id.clone(),
            // Whole seconds: the message rounds the remaining wait up, so the two never
            // add up to more than the wait.
            published: Duration::seconds(published.whole_seconds()),
            wait,
            remaining: wait - published,
        })
    }
}

/// A duration as an admin reads it, rounded up to the second: `23h 59m 56s`, `4s`.
pub(crate) fn human(d: Duration) -> String {
    let mut secs = d.whole_seconds().max(0);
    if d.subsec_nanoseconds() > 0 {
        secs += 1;
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

/// The key algorithms the IdP generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlgorithm {
    /// RSA 2048 with SHA-256: what every SAML SP accepts.
    #[default]
    Rsa2048,
    /// ECDSA P-256 with SHA-256: smaller and faster, but not every SP supports it.
    EcdsaP256,
}

impl KeyAlgorithm {
    /// The name used in the CLI and the state file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa2048",
            Self::EcdsaP256 => "ecdsa_p256",
        }
    }

    fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::Rsa2048 => &PKCS_RSA_SHA256,
            Self::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
        }
    }

    /// Inverse of [`KeyAlgorithm::as_str`]; also accepts `rsa` and `ecdsa`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rsa2048" | "rsa" => Some(Self::Rsa2048),
            "ecdsa_p256" | "ecdsa-p256" | "ecdsa" | "p256" => Some(Self::EcdsaP256),
            _ => None,
        }
    }
}

/// The role a key currently plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Signs responses and is published in metadata.
    Active,
    /// Published in metadata, signs nothing yet.
    Next,
    /// Neither signs nor is published; kept for audit.
    Retired,
}

impl KeyStatus {
    /// The name stored in the database's `role` column and shown by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Next => "next",
            Self::Retired => "retired",
        }
    }

    /// Inverse of [`KeyStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "next" => Some(Self::Next),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

/// Public facts about one key, safe to print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Short id (fingerprint prefix), used by the CLI.
    pub id: String,
    /// The algorithm.
    pub algorithm: KeyAlgorithm,
    /// Active, next or retired.
    pub status: KeyStatus,
    /// When the key was generated.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it became active, if it ever did.
    #[serde(with = "time::serde::rfc3339::option")]
    pub activated_at: Option<OffsetDateTime>,
    /// When it was retired, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    /// SHA-256 fingerprint of the certificate, lowercase hex.
    pub fingerprint_sha256: String,
}

/// A key with its certificate, loaded from disk.
pub struct KeyMaterial {
    /// Public facts.
    pub info: KeyInfo,
    /// PKCS#8 private key in PEM; wiped from memory on drop.
    pub key_pem: Zeroizing<String>,
    /// The X.509 certificate in PEM.
    pub cert_pem: String,
}

impl KeyMaterial {
    /// The private key in the form the XML-DSig signer takes.
    pub fn signing_key(&self) -> Result<latchkey_xmlsec::crypto::SigningKey, KeyError> {
        latchkey_xmlsec::crypto::SigningKey::from_pem(&self.key_pem).map_err(|source| {
            KeyError::Unusable {
                id: self.info.id.clone(),
                source,
            }
        })
    }

    /// The certificate in the form metadata and `<ds:KeyInfo>` carry it.
    pub fn certificate(&self) -> Result<latchkey_xmlsec::crypto::Certificate, KeyError> {
        latchkey_xmlsec::crypto::Certificate::from_pem(&self.cert_pem).map_err(|source| {
            KeyError::Unusable {
                id: self.info.id.clone(),
                source,
            }
        })
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("info", &self.info)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A key generated in memory, not yet stored.
struct NewKey {
    record: KeyRecord,
    key_pem: Zeroizing<String>,
    cert_pem: String,
}

/// Generates a key pair and its self-signed certificate; the record's status is
/// `Retired` until the caller says otherwise.
fn generate(algorithm: KeyAlgorithm, now: OffsetDateTime) -> Result<NewKey, KeyError> {
    let gen_err = |e: rcgen::Error| KeyError::Generate(e.to_string());
    let key_pair = KeyPair::generate_for(algorithm.rcgen()).map_err(gen_err)?;

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CERT_COMMON_NAME);
    params.distinguished_name = dn;
    // Backdated an hour so an SP with a slightly slow clock accepts it at once.
    params.not_before = now - Duration::hours(1);
    params.not_after = now + CERT_VALIDITY;
    let mut serial = [0u8; 16];
    rand::fill(&mut serial);
    // A positive INTEGER: clear the top bit.
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key_pair).map_err(gen_err)?;

    let fingerprint = hex::encode(Sha256::digest(cert.der()));
    let id = fingerprint.get(..16).unwrap_or(&fingerprint).to_owned();
    Ok(NewKey {
        record: KeyRecord {
            id,
            algorithm,
            status: KeyStatus::Retired,
            created_at: now,
            activated_at: None,
            retired_at: None,
            fingerprint_sha256: fingerprint,
        },
        key_pem: Zeroizing::new(key_pair.serialize_pem()),
        cert_pem: cert.pem(),
    })
}

/// Which half of a stored pair is at fault.
enum Mismatch {
    Key(String),
    Cert(String),
}

/// Checks that a private key and certificate belong together and to the record: the
/// key is of the record's algorithm, the certificate has the record's fingerprint, and
/// the certificate carries the key's public half.
fn check_pair(record: &KeyRecord, key_pem: &str, cert_pem: &str) -> Result<(), Mismatch> {
    // Loading with the algorithm the record names also checks the key is of that kind.
    let key_pair = KeyPair::from_pkcs8_pem_and_sign_algo(key_pem, record.algorithm.rcgen())
        .map_err(|e| {
            Mismatch::Key(format!(
                "not a {} private key: {e}",
                record.algorithm.as_str()
            ))
        })?;
    let cert = pem::parse(cert_pem).map_err(|e| Mismatch::Cert(format!("not PEM: {e}")))?;
    if cert.tag() != "CERTIFICATE" {
        return Err(Mismatch::Cert(format!("PEM block is {:?}", cert.tag())));
    }
    let fingerprint = hex::encode(Sha256::digest(cert.contents()));
    if fingerprint != record.fingerprint_sha256 {
        return Err(Mismatch::Cert(
            "fingerprint differs from the recorded one".into(),
        ));
    }
    // The certificate's SubjectPublicKeyInfo is embedded verbatim in its DER, so
    // finding the key's SPKI there proves the pair belongs together without an
    // X.509 parser.
    let spki = key_pair.subject_public_key_info();
    if spki.is_empty()
        || !cert
            .contents()
            .windows(spki.len())
            .any(|w| w == spki.as_slice())
    {
        return Err(Mismatch::Key("key does not match its certificate".into()));
    }
    Ok(())
}

/// Whether an id is a fingerprint prefix as generated: ids become file names, so nothing
/// else is acceptable.
fn valid_id(id: &str, fingerprint: &str) -> bool {
    id.len() == 16
        && id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        && fingerprint.starts_with(id)
}

/// Active first, then next, then retired from newest to oldest.
fn sort_for_listing(keys: &mut [KeyInfo]) {
    keys.sort_by_key(|k| {
        let rank = match k.status {
            KeyStatus::Active => 0,
            KeyStatus::Next => 1,
            KeyStatus::Retired => 2,
        };
        (rank, std::cmp::Reverse(k.created_at))
    });
}

/// The audit event of the first key's generation (`key init`, or a server's first start).
fn generated(first: &KeyInfo) -> Change {
    key_change("key.generate", first, None, audit::snapshot(first))
}

/// The audit event of `rotate`.
fn rotated(next: &KeyInfo) -> Change {
    key_change("key.rotate", next, None, audit::snapshot(next))
}

/// The audit event of `activate`: which key replaced which, and whether the wait was
/// skipped.
fn activated(promoted: &KeyInfo, old: Option<&str>, rule: Activation) -> Change {
    key_change(
        "key.activate",
        promoted,
        Some(json!({ "active": old, "next": promoted.id })),
        Some(json!({
            "active": promoted.id,
            "retired": old,
            "forced": rule == Activation::Forced,
        })),
    )
}

/// The audit event of `retire_next`.
fn retired_next(retired: &KeyInfo) -> Change {
    let mut before = retired.clone();
    before.status = KeyStatus::Next;
    before.retired_at = None;
    key_change(
        "key.retire_next",
        retired,
        audit::snapshot(&before),
        audit::snapshot(retired),
    )
}

/// The audit event of `import-files`: one for the whole copy, as it is one transaction.
fn imported(from: &Path, keys: &[KeyInfo]) -> Change {
    Change {
        action: "key.import_files",
        target_kind: "key_store",
        target_id: "database".into(),
        target_name: from.display().to_string(),
        before: None,
        after: audit::snapshot(&keys),
    }
}

/// The audit event of `rewrap`: the KEK ids only, never key material.
fn rewrapped(old_kek: &str, new_kek: &str, count: usize) -> Change {
    Change {
        action: "key.rewrap",
        target_kind: "key_store",
        target_id: "database".into(),
        target_name: "database".into(),
        before: Some(json!({ "kek_id": old_kek })),
        after: Some(json!({ "kek_id": new_kek, "keys": count })),
    }
}

fn key_change(
    action: &'static str,
    key: &KeyInfo,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Change {
    Change {
        action,
        target_kind: "key",
        target_id: key.id.clone(),
        target_name: key.fingerprint_sha256.clone(),
        before,
        after,
    }
}

fn io_err(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests;
