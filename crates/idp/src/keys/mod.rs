//! The IdP's signing keys: one `active` key that signs, an optional `next` key that is
//! already published in metadata so SPs can trust it before it signs anything, and
//! `retired` keys kept on disk for audit.
//!
//! Rollover is two steps on purpose: `rotate` creates `next`, the admin waits until
//! every SP has refreshed the IdP metadata (which lists both certificates), then
//! `activate` swaps. Swapping in one step would break every SP that pinned the old
//! certificate.
//!
//! Layout under the key directory (mode 0700):
//! ```text
//! state.json          which key is active / next / retired, written atomically
//! <id>.key.pem        PKCS#8 private key, mode 0600, created with O_EXCL
//! <id>.crt.pem        self-signed certificate, mode 0644
//! ```
//! `<id>` is the first 16 hex digits of the certificate's SHA-256 fingerprint.
//!
//! # Security
//! Private keys are refused on load when their file is readable by group or others,
//! as OpenSSH does: a key another account could read is no longer a secret. Key PEM
//! text is held in [`zeroize::Zeroizing`] and never appears in `Debug` output.
//!
//! Files are per node. Several IdP nodes sharing a PostgreSQL store must share this
//! directory (or a future database-backed key store); see the module's follow-ups.

mod state;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
    PublicKeyData, SerialNumber,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use state::{KeyRecord, State};

/// How long a generated certificate is valid. SAML SPs mostly ignore certificate
/// validity (the key is what is pinned), but some refuse expired ones, so it is long.
const CERT_VALIDITY: Duration = Duration::days(10 * 365);

/// The subject of generated certificates.
const CERT_COMMON_NAME: &str = "Latchkey IdP signing key";

/// What can go wrong with the key directory.
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

/// The key directory and its state.
#[derive(Debug)]
pub struct KeyStore {
    dir: PathBuf,
    state: State,
}

impl KeyStore {
    /// Opens (creating if needed) the key directory and reads its state. An empty
    /// directory is a valid store with no keys; call [`KeyStore::load_or_generate`].
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, KeyError> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        let state = State::load(&dir)?;
        let store = Self { dir, state };
        // Check every key the state names now, so a damaged store fails at start-up
        // and not at the first login.
        for record in store.state.keys.iter() {
            store.read(record)?;
        }
        Ok(store)
    }

    /// Makes sure an active key exists, generating one of `algorithm` if the store is
    /// empty (first start). An existing key is kept whatever its algorithm.
    pub fn load_or_generate(
        &mut self,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<KeyInfo, KeyError> {
        if let Some(active) = self.state.active() {
            return Ok(active.info());
        }
        let mut record = self.generate(algorithm, now)?;
        record.status = KeyStatus::Active;
        record.activated_at = Some(now);
        let info = record.info();
        let mut state = self.state.clone();
        state.keys.push(record);
        state.save(&self.dir)?;
        self.state = state;
        Ok(info)
    }

    /// The key that signs now.
    pub fn active(&self) -> Result<KeyMaterial, KeyError> {
        let record = self.state.active().ok_or(KeyError::NoActiveKey)?;
        self.read(record)
    }

    /// The key published ahead of activation, if a rollover is under way.
    pub fn next(&self) -> Result<Option<KeyMaterial>, KeyError> {
        self.state.next().map(|r| self.read(r)).transpose()
    }

    /// Certificates to publish in the IdP metadata: the active one, then the next one.
    pub fn published_certificates(&self) -> Result<Vec<String>, KeyError> {
        let mut out = vec![self.active()?.cert_pem];
        if let Some(next) = self.next()? {
            out.push(next.cert_pem);
        }
        Ok(out)
    }

    /// Every key, active first, then next, then retired from newest to oldest.
    pub fn list(&self) -> Vec<KeyInfo> {
        let mut out: Vec<KeyInfo> = self.state.keys.iter().map(KeyRecord::info).collect();
        out.sort_by_key(|k| {
            let rank = match k.status {
                KeyStatus::Active => 0,
                KeyStatus::Next => 1,
                KeyStatus::Retired => 2,
            };
            (rank, std::cmp::Reverse(k.created_at))
        });
        out
    }

    /// Generates the `next` key. Refused while one already waits, so a second
    /// `rotate` cannot silently discard a key that SPs may already trust.
    pub fn rotate(
        &mut self,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<KeyInfo, KeyError> {
        if self.state.active().is_none() {
            return Err(KeyError::NoActiveKey);
        }
        if let Some(next) = self.state.next() {
            return Err(KeyError::NextKeyExists(next.id.clone()));
        }
        let mut record = self.generate(algorithm, now)?;
        record.status = KeyStatus::Next;
        let info = record.info();
        let mut state = self.state.clone();
        state.keys.push(record);
        state.save(&self.dir)?;
        self.state = state;
        Ok(info)
    }

    /// Promotes `next` to `active` and retires the old active key.
    pub fn activate(&mut self, now: OffsetDateTime) -> Result<KeyInfo, KeyError> {
        let mut state = self.state.clone();
        let mut promoted = None;
        for record in &mut state.keys {
            match record.status {
                KeyStatus::Active => {
                    record.status = KeyStatus::Retired;
                    record.retired_at = Some(now);
                }
                KeyStatus::Next => {
                    record.status = KeyStatus::Active;
                    record.activated_at = Some(now);
                    promoted = Some(record.info());
                }
                KeyStatus::Retired => {}
            }
        }
        let promoted = promoted.ok_or(KeyError::NoNextKey)?;
        state.save(&self.dir)?;
        self.state = state;
        Ok(promoted)
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a key and its certificate on disk; the caller records it in the state.
    fn generate(
        &self,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<KeyRecord, KeyError> {
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
        let key_pem = Zeroizing::new(key_pair.serialize_pem());

        let key_path = self.dir.join(format!("{id}.key.pem"));
        let cert_path = self.dir.join(format!("{id}.crt.pem"));
        write_new_file(&key_path, key_pem.as_bytes(), 0o600)?;
        write_new_file(&cert_path, cert.pem().as_bytes(), 0o644)?;

        Ok(KeyRecord {
            id,
            algorithm,
            status: KeyStatus::Retired,
            created_at: now,
            activated_at: None,
            retired_at: None,
            fingerprint_sha256: fingerprint,
        })
    }

    /// Reads a key's files and checks they belong together and to the record.
    fn read(&self, record: &KeyRecord) -> Result<KeyMaterial, KeyError> {
        let key_path = self.dir.join(format!("{}.key.pem", record.id));
        let cert_path = self.dir.join(format!("{}.crt.pem", record.id));

        let mode = fs::metadata(&key_path)
            .map_err(|source| io_err(&key_path, source))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions {
                path: key_path,
                mode: mode & 0o777,
            });
        }
        let key_pem = Zeroizing::new(
            fs::read_to_string(&key_path).map_err(|source| io_err(&key_path, source))?,
        );
        let cert_pem =
            fs::read_to_string(&cert_path).map_err(|source| io_err(&cert_path, source))?;

        let corrupt = |path: &Path, reason: String| KeyError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        // Loading with the algorithm the state names also checks the key is of that kind.
        let key_pair = KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, record.algorithm.rcgen())
            .map_err(|e| {
                corrupt(
                    &key_path,
                    format!("not a {} private key: {e}", record.algorithm.as_str()),
                )
            })?;
        let cert =
            pem::parse(&cert_pem).map_err(|e| corrupt(&cert_path, format!("not PEM: {e}")))?;
        if cert.tag() != "CERTIFICATE" {
            return Err(corrupt(
                &cert_path,
                format!("PEM block is {:?}", cert.tag()),
            ));
        }
        let fingerprint = hex::encode(Sha256::digest(cert.contents()));
        if fingerprint != record.fingerprint_sha256 {
            return Err(corrupt(
                &cert_path,
                "fingerprint differs from state.json".into(),
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
            return Err(corrupt(
                &key_path,
                "key does not match its certificate".into(),
            ));
        }
        Ok(KeyMaterial {
            info: record.info(),
            key_pem,
            cert_pem,
        })
    }
}

fn io_err(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|source| io_err(dir, source))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|source| io_err(dir, source))?;
    }
    Ok(())
}

/// Writes a file that must not exist yet, with `mode` from the first byte on (no
/// window where a key is world-readable), and syncs it before returning.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| io_err(path, source))?;
    // The process umask may have cleared bits; set the exact mode explicitly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|source| io_err(path, source))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| io_err(path, source))
}

#[cfg(test)]
mod tests;
