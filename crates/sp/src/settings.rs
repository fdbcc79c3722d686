//! SP settings as an operator writes them (TOML), resolved into checked values.
//!
//! ```toml
//! entity_id = "https://wiki.example.com/saml/metadata"
//! acs_url = "https://wiki.example.com/saml/acs"
//! # slo_url = "https://wiki.example.com/saml/slo"   # single logout (needs [key] to sign)
//! clock_skew_seconds = 60            # at most 300
//! allow_idp_initiated = false
//! request_lifetime_seconds = 600     # how long a started login may take at the IdP
//! # signature_algorithms = ["rsa-sha256", "ecdsa-sha256"]   # default: SHA-2 RSA and ECDSA
//! # digest_algorithms = ["sha256"]                          # default: SHA-256/384/512
//! # name_id_format = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
//!
//! [audit]
//! retain_days = 0                             # 0: keep every event; else purge older ones
//!                                             # (`SqlAccountStore::purge_audit`)
//! # unchanged_logins = "record"               # or "log_only": no event for a login that
//!                                             # changed nothing (`UnchangedLogins`)
//!
//! [idp]
//! metadata_file = "idp-metadata.xml"          # or metadata_url = "https://idp.example.org/saml/metadata"
//! # entity_id = "https://idp.example.org"     # needed when the metadata holds several IdPs
//! # refresh_seconds = 3600                    # when the metadata sets no cacheDuration
//! # refetch_seconds = 60                      # fewest seconds between re-fetches forced by a
//! #                                           # failed signature (metadata_url only)
//!
//! [key]                                       # optional: sign AuthnRequests
//! private_key_file = "sp-key.pem"
//! certificate_file = "sp-cert.pem"
//! sign_requests = true
//!
//! [encryption]                                # optional: accept encrypted assertions
//! private_key_file = "sp-enc-key.pem"         # RSA, 2048 bits or more
//! certificate_file = "sp-enc-cert.pem"        # published in our metadata, use="encryption"
//! # previous_private_key_files = ["sp-enc-key-2025.pem"]   # still decrypt during a rollover
//! # allow_cbc = false                         # true: also accept AES-CBC (a timing-oracle risk)
//!
//! [provisioning]                              # the JIT contract (see `jit::Contract`)
//!
//! [scim]                                      # optional: the SCIM 2.0 server (see `scim::service`)
//! tokens = [{ name = "latchkey-idp", sha256 = "<hex SHA-256 of the bearer token>" }]
//! # base_url = "https://wiki.example.com/scim/v2"   # default: beside the ACS URL
//! # idp_entity_id = "https://idp.example.org"       # whose identities SCIM writes; default: [idp]'s
//! # name_id = "userName"                            # the SCIM attribute holding the NameID value
//! # [scim.attributes]                               # SAML attribute name = SCIM path (adds to the defaults)
//! # department = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
//! ```
//! Relative paths are resolved against the directory of the settings file.

use std::path::{Path, PathBuf};

use latchkey_saml::encryption::{DecryptOptions, DecryptionKey};
use latchkey_xmlsec::crypto::{
    Certificate, DigestAlgorithm, KeyKind, SignatureAlgorithm, SigningKey,
};
use serde::Deserialize;
use time::Duration;

use crate::error::SettingsError;
use crate::jit::Contract;

/// The settings of one SP, as read from TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpConfig {
    /// Our entity ID (the audience assertions must name).
    pub entity_id: String,
    /// Our AssertionConsumerService URL (HTTP-POST binding).
    pub acs_url: String,
    /// Our SingleLogoutService URL (HTTP-Redirect and HTTP-POST), published in our metadata.
    /// None: no single logout.
    #[serde(default)]
    pub slo_url: Option<String>,
    /// Where the IdP's metadata comes from, and which IdP in it we trust.
    pub idp: IdpConfig,
    /// Allowed clock difference with the IdP, in seconds (clamped to 300 by the profile).
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u32,
    /// Signature algorithms accepted, by short name (`rsa-sha256`) or URI. `rsa-sha1` opts in
    /// to SHA-1. Default: RSA and ECDSA with SHA-256/384/512.
    #[serde(default)]
    pub signature_algorithms: Option<Vec<String>>,
    /// Digest algorithms accepted, by short name (`sha256`) or URI. Default: SHA-256/384/512.
    #[serde(default)]
    pub digest_algorithms: Option<Vec<String>>,
    /// Accept IdP-initiated logins (responses answering no request of ours).
    #[serde(default)]
    pub allow_idp_initiated: bool,
    /// How long a started login stays valid, in seconds.
    #[serde(default = "default_request_lifetime")]
    pub request_lifetime_seconds: u32,
    /// The NameID format asked for in AuthnRequests (none: the IdP decides).
    #[serde(default)]
    pub name_id_format: Option<String>,
    /// The SP's own key, to sign AuthnRequests.
    #[serde(default)]
    pub key: Option<KeyConfig>,
    /// The SP's decryption key, to accept encrypted assertions (none: an
    /// EncryptedAssertion is refused).
    #[serde(default)]
    pub encryption: Option<EncryptionConfig>,
    /// The JIT provisioning contract; an application may bring its own instead.
    #[serde(default)]
    pub provisioning: Option<Contract>,
    /// The SCIM server's settings (`[scim]`); without them the application has no SCIM
    /// endpoint.
    #[serde(default)]
    pub scim: Option<crate::scim::service::ScimSettings>,
    /// How long the audit log keeps events (`[audit]`).
    #[serde(default)]
    pub audit: AuditSettings,
}

/// The `[audit]` section: how long the app's audit log keeps events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Events older than this many days are deleted by
    /// [`SqlAccountStore::purge_audit`](crate::store::SqlAccountStore::purge_audit), which the
    /// application runs now and then (the demo apps every ten minutes); each purge that deletes
    /// anything is itself an audit event (`audit.purged`). 0 (the default) keeps every event.
    /// Anyone can make an SP write a line (a refused response, a login), so without a bound
    /// the log grows as long as the app runs.
    pub retain_days: u32,
    /// Whether a login that changed nothing gets an event of its own (`jit.unchanged`).
    pub unchanged_logins: UnchangedLogins,
}

/// What the audit log keeps of a returning login that changed nothing
/// ([`AuditSettings::unchanged_logins`]).
///
/// Such a login's event is most of an application's audit log and its largest write after
/// the replay entry: an application whose IdP already records each sign-in (Latchkey's
/// `sso.assertion` does) may keep only the log line. Creates, updates, links, refusals and
/// rejected responses are recorded either way, as are SCIM writes (SCIM never records an
/// unchanged write).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnchangedLogins {
    /// Each one is a `jit.unchanged` event (the default).
    #[default]
    Record,
    /// Each one is only the `JIT login` log line (with its operation ID and account); the
    /// login's transaction writes nothing but its replay entry (and, for an SP-initiated
    /// login, takes back its pending request).
    LogOnly,
}

impl UnchangedLogins {
    /// The name the settings use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::LogOnly => "log_only",
        }
    }
}

/// The most [`AuditSettings::retain_days`] may say: a hundred years.
pub const MAX_AUDIT_RETAIN_DAYS: u32 = 36_500;

impl AuditSettings {
    /// The age past which events go, if any.
    pub fn retention(&self) -> Option<Duration> {
        (self.retain_days > 0).then(|| Duration::days(i64::from(self.retain_days)))
    }
}

/// Where the IdP's metadata comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpConfig {
    /// A metadata file the administrator placed.
    #[serde(default)]
    pub metadata_file: Option<PathBuf>,
    /// A metadata URL, fetched at start and refreshed (needs the `fetch` feature).
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// The IdP's entity ID, when the metadata holds more than one IdP.
    #[serde(default)]
    pub entity_id: Option<String>,
    /// Refresh interval in seconds when the metadata gives no cacheDuration.
    #[serde(default = "default_refresh")]
    pub refresh_seconds: u32,
    /// With `metadata_url`: a Response whose signature fails makes the SP fetch the
    /// metadata once more (the IdP may have just activated a key) and verify again; this is
    /// the fewest seconds between two such fetches, so a flood of forged responses cannot
    /// turn into a flood of fetches.
    #[serde(default = "default_refetch")]
    pub refetch_seconds: u32,
}

/// The SP's own key pair.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key_file: PathBuf,
    /// PEM certificate of that key, published in our metadata.
    pub certificate_file: PathBuf,
    /// Sign AuthnRequests (HTTP-Redirect detached signature).
    #[serde(default = "yes")]
    pub sign_requests: bool,
}

/// The SP's decryption key pair, for assertions the IdP encrypts to us.
///
/// Kept apart from [`KeyConfig`] so that the signing key can stay ECDSA (XML Encryption's
/// key transport needs RSA) and each key can be rolled over on its own schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// PEM RSA private key (PKCS#8 or PKCS#1), 2048 bits or more.
    pub private_key_file: PathBuf,
    /// PEM certificate of that key, published in our metadata with `use="encryption"`:
    /// the IdP encrypts to it.
    pub certificate_file: PathBuf,
    /// Older private keys still tried after the current one, while an IdP may still
    /// encrypt to a certificate we have replaced.
    #[serde(default)]
    pub previous_private_key_files: Vec<PathBuf>,
    /// Also accept AES-CBC content encryption, for an IdP that cannot do GCM. Off by
    /// default, and a risk when on: CBC carries no integrity, and a ciphertext that decrypts
    /// to a well-formed assertion takes measurably longer to refuse (its signature is
    /// checked) than one with bad padding, which an attacker who can time the ACS may use
    /// as an oracle on the plaintext.
    #[serde(default)]
    pub allow_cbc: bool,
}

/// The SP's decryption keys, loaded.
#[derive(Debug, Clone)]
pub struct SpDecryption {
    /// The keys to try, the current one first.
    pub keys: Vec<DecryptionKey>,
    /// The current key's certificate, for our metadata.
    pub certificate: Certificate,
    /// The ciphers accepted.
    pub options: DecryptOptions,
}

/// Where to read IdP metadata from, after path resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataSource {
    /// A local file.
    File(PathBuf),
    /// An HTTP(S) URL.
    Url(String),
}

/// Whether the SP may read its IdP's metadata from `url`: `https://`, or `http://` to this
/// machine only (`localhost`, `127.0.0.0/8`, `[::1]`).
///
/// # Security
/// The metadata carries the keys every login is verified with, and it is trusted because of
/// where it comes from: over plain HTTP from another host, anyone on the path could replace
/// them. The fetch holds redirects to the same rule.
pub fn metadata_url_allowed(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, port)) if port.is_empty() || port.starts_with(':') => host,
            _ => return false,
        },
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The SP's key, loaded.
#[derive(Debug)]
pub struct SpKey {
    /// The private key.
    pub key: SigningKey,
    /// Its certificate.
    pub certificate: Certificate,
    /// Whether AuthnRequests are signed with it.
    pub sign_requests: bool,
}

fn default_skew() -> u32 {
    60
}
fn default_request_lifetime() -> u32 {
    600
}
fn default_refresh() -> u32 {
    3600
}
fn default_refetch() -> u32 {
    60
}
fn yes() -> bool {
    true
}

impl SpConfig {
    /// Parses settings; relative paths are resolved against `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self, SettingsError> {
        let mut config: Self =
            toml::from_str(text).map_err(|e| SettingsError::Parse(e.to_string()))?;
        config.resolve_paths(base_dir);
        config.check()?;
        Ok(config)
    }

    /// Reads settings from a file.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = read_text(path)?;
        Self::from_toml(&text, path.parent().unwrap_or(Path::new(".")))
    }

    /// Makes relative paths absolute against `base_dir`. Called by [`SpConfig::from_toml`];
    /// public for applications that embed these settings in a larger file.
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base_dir.join(&*p);
            }
        };
        if let Some(f) = self.idp.metadata_file.as_mut() {
            fix(f);
        }
        if let Some(k) = self.key.as_mut() {
            fix(&mut k.private_key_file);
            fix(&mut k.certificate_file);
        }
        if let Some(e) = self.encryption.as_mut() {
            fix(&mut e.private_key_file);
            fix(&mut e.certificate_file);
            e.previous_private_key_files.iter_mut().for_each(fix);
        }
    }

    /// Checks what can be checked without reading files.
    pub fn check(&self) -> Result<(), SettingsError> {
        let invalid = |setting, detail: &str| SettingsError::Invalid {
            setting,
            detail: detail.to_owned(),
        };
        if self.entity_id.trim().is_empty() {
            return Err(invalid("entity_id", "empty"));
        }
        if !(self.acs_url.starts_with("https://") || self.acs_url.starts_with("http://")) {
            return Err(invalid("acs_url", "must be an http(s) URL"));
        }
        if let Some(slo) = &self.slo_url
            && !(slo.starts_with("https://") || slo.starts_with("http://"))
        {
            return Err(invalid("slo_url", "must be an http(s) URL"));
        }
        if self.request_lifetime_seconds == 0 {
            return Err(invalid("request_lifetime_seconds", "must be positive"));
        }
        if self.idp.refetch_seconds == 0 {
            return Err(invalid("idp.refetch_seconds", "must be positive"));
        }
        if self.audit.retain_days > MAX_AUDIT_RETAIN_DAYS {
            return Err(invalid(
                "audit.retain_days",
                "must be 0 (keep every event) to 36500",
            ));
        }
        self.metadata_source()?;
        self.signature_algorithms()?;
        self.digest_algorithms()?;
        Ok(())
    }

    /// Where the IdP metadata comes from.
    pub fn metadata_source(&self) -> Result<MetadataSource, SettingsError> {
        match (&self.idp.metadata_file, &self.idp.metadata_url) {
            (Some(f), None) => Ok(MetadataSource::File(f.clone())),
            (None, Some(u)) if metadata_url_allowed(u) => Ok(MetadataSource::Url(u.clone())),
            (None, Some(_)) => Err(SettingsError::Invalid {
                setting: "idp.metadata_url",
                detail: "must be an https URL (http only to this machine: localhost, \
                         127.0.0.0/8 or [::1])"
                    .to_owned(),
            }),
            _ => Err(SettingsError::MetadataSource),
        }
    }

    /// The allowed signature algorithms.
    pub fn signature_algorithms(&self) -> Result<Vec<SignatureAlgorithm>, SettingsError> {
        use SignatureAlgorithm as A;
        let Some(names) = &self.signature_algorithms else {
            return Ok(latchkey_saml::inbound::SIGNATURE_ALGORITHMS.to_vec());
        };
        names
            .iter()
            .map(|n| {
                let short = match n.as_str() {
                    "rsa-sha1" => Some(A::RsaSha1),
                    "rsa-sha256" => Some(A::RsaSha256),
                    "rsa-sha384" => Some(A::RsaSha384),
                    "rsa-sha512" => Some(A::RsaSha512),
                    "ecdsa-sha256" => Some(A::EcdsaSha256),
                    "ecdsa-sha384" => Some(A::EcdsaSha384),
                    "ecdsa-sha512" => Some(A::EcdsaSha512),
                    _ => None,
                };
                short
                    .or_else(|| A::from_uri(n))
                    .ok_or_else(|| SettingsError::UnknownAlgorithm(n.clone()))
            })
            .collect()
    }

    /// The allowed digest algorithms.
    pub fn digest_algorithms(&self) -> Result<Vec<DigestAlgorithm>, SettingsError> {
        use DigestAlgorithm as D;
        let Some(names) = &self.digest_algorithms else {
            return Ok(latchkey_saml::inbound::DIGEST_ALGORITHMS.to_vec());
        };
        names
            .iter()
            .map(|n| {
                let short = match n.as_str() {
                    "sha1" => Some(D::Sha1),
                    "sha256" => Some(D::Sha256),
                    "sha384" => Some(D::Sha384),
                    "sha512" => Some(D::Sha512),
                    _ => None,
                };
                short
                    .or_else(|| D::from_uri(n))
                    .ok_or_else(|| SettingsError::UnknownAlgorithm(n.clone()))
            })
            .collect()
    }

    /// The clock skew.
    pub fn clock_skew(&self) -> Duration {
        Duration::seconds(i64::from(self.clock_skew_seconds))
    }

    /// The lifetime of a started login.
    pub fn request_lifetime(&self) -> Duration {
        Duration::seconds(i64::from(self.request_lifetime_seconds))
    }

    /// Loads the SP key pair, checking the key belongs to the certificate.
    pub fn load_key(&self) -> Result<Option<SpKey>, SettingsError> {
        let Some(k) = &self.key else {
            return Ok(None);
        };
        let key = SigningKey::from_pem(&read_text(&k.private_key_file)?)?;
        let certificate = Certificate::from_pem(&read_text(&k.certificate_file)?)?;
        if certificate.verifying_key().spki_der() != key.verifying_key().spki_der() {
            return Err(SettingsError::KeyCertificateMismatch);
        }
        Ok(Some(SpKey {
            key,
            certificate,
            sign_requests: k.sign_requests,
        }))
    }
}

impl SpConfig {
    /// Loads the decryption keys of `[encryption]`, checking the current key belongs to
    /// the certificate we publish (else every IdP would encrypt to a key we lack) and that
    /// it is RSA.
    pub fn load_decryption(&self) -> Result<Option<SpDecryption>, SettingsError> {
        let Some(e) = &self.encryption else {
            return Ok(None);
        };
        let key_pem = read_text(&e.private_key_file)?;
        let certificate = Certificate::from_pem(&read_text(&e.certificate_file)?)?;
        if !matches!(certificate.verifying_key().kind(), KeyKind::Rsa { .. }) {
            return Err(SettingsError::Invalid {
                setting: "encryption.certificate_file",
                detail: "XML Encryption needs an RSA key".to_owned(),
            });
        }
        // The same PEM read as a signing key exposes its public half for the comparison.
        let public = SigningKey::from_pem(&key_pem)?;
        if certificate.verifying_key().spki_der() != public.verifying_key().spki_der() {
            return Err(SettingsError::KeyCertificateMismatch);
        }
        let mut keys = vec![DecryptionKey::from_pem(&key_pem)?];
        for path in &e.previous_private_key_files {
            let pem = read_text(path)?;
            keys.push(DecryptionKey::from_pem(&pem)?);
        }
        let options = if e.allow_cbc {
            DecryptOptions::default()
        } else {
            DecryptOptions::gcm_only()
        };
        Ok(Some(SpDecryption {
            keys,
            certificate,
            options,
        }))
    }
}

/// Reads a UTF-8 file, naming it in the error.
pub(crate) fn read_text(path: &Path) -> Result<String, SettingsError> {
    std::fs::read_to_string(path).map_err(|e| SettingsError::Read {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}
