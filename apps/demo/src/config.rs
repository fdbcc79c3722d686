//! A demo app's configuration file.
//!
//! ```toml
//! listen = "127.0.0.1:7101"
//! database = "wiki.sqlite"          # created (empty) if missing; relative to this file
//!
//! [sp]                              # latchkey_sp::settings::SpConfig
//! entity_id = "http://127.0.0.1:7101/saml/metadata"
//! acs_url = "http://127.0.0.1:7101/saml/acs"
//! allow_idp_initiated = true
//!
//! [sp.idp]
//! metadata_url = "http://127.0.0.1:7000/saml/metadata"   # or metadata_file = "idp.xml"
//! ```
//! `[sp.provisioning]` replaces the app's built-in JIT contract when present.
//!
//! SCIM works without more settings too: without `[sp.scim]`, the app makes itself a bearer
//! token on first start ([`DemoConfig::ensure_scim`]), kept in `<database>-scim-token`, and
//! serves SCIM 2.0 at `/scim/v2` under it.
//!
//! Single logout works without more settings: `sp.slo_url` defaults to `/saml/slo` beside the
//! ACS, and without `[sp.key]` the app makes itself a signing key on first start
//! ([`DemoConfig::ensure_signing_key`]), because logout messages must be signed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use latchkey_sp::scim::service::{ScimSettings, TokenSettings, token_sha256};
use latchkey_sp::settings::{KeyConfig, SpConfig};
use serde::Deserialize;

use crate::DemoError;

/// One demo app's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The SQLite database file (created if missing).
    pub database: PathBuf,
    /// Mark the session cookie `Secure`. Default: when the ACS URL is https.
    #[serde(default)]
    pub secure_cookies: Option<bool>,
    /// Count logins started per the last `X-Forwarded-For` hop, not the socket peer: only
    /// behind a reverse proxy that sets it (otherwise a client names its own address).
    #[serde(default)]
    pub trust_forwarded_for: bool,
    /// The SP settings.
    pub sp: SpConfig,
}

impl DemoConfig {
    /// Parses a configuration; relative paths are resolved against `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self, DemoError> {
        let mut config: Self =
            toml::from_str(text).map_err(|e| DemoError::Config(e.to_string()))?;
        if config.database.is_relative() {
            config.database = base_dir.join(&config.database);
        }
        config.sp.resolve_paths(base_dir);
        if config.sp.slo_url.is_none() {
            config.sp.slo_url = config
                .sp
                .acs_url
                .strip_suffix("/saml/acs")
                .map(|base| format!("{base}/saml/slo"));
        }
        config
            .sp
            .check()
            .map_err(|e| DemoError::Sp(latchkey_sp::Error::Settings(e)))?;
        Ok(config)
    }

    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Self, DemoError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DemoError::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text, path.parent().unwrap_or(Path::new(".")))
    }

    /// The sqlx URL of the database file.
    pub fn database_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.database.display())
    }

    /// Without `[sp.key]`, uses (making it on first start) a P-256 key and self-signed
    /// certificate beside the database, `<database>-sp-key.pem` (mode 0600) and
    /// `<database>-sp-cert.pem`. It signs AuthnRequests and logout messages and is published
    /// in the metadata, so an IdP that registers the app from its metadata checks both.
    pub fn ensure_signing_key(&mut self) -> Result<(), DemoError> {
        if self.sp.key.is_some() {
            return Ok(());
        }
        let stem = self.database.with_extension("");
        let key_file = PathBuf::from(format!("{}-sp-key.pem", stem.display()));
        let cert_file = PathBuf::from(format!("{}-sp-cert.pem", stem.display()));
        if !key_file.exists() || !cert_file.exists() {
            write_key_pair(&key_file, &cert_file, &self.sp.entity_id)?;
        }
        self.sp.key = Some(KeyConfig {
            private_key_file: key_file,
            certificate_file: cert_file,
            sign_requests: true,
        });
        Ok(())
    }

    /// The file holding the SCIM bearer token the app made itself (see
    /// [`DemoConfig::ensure_scim`]).
    pub fn scim_token_file(&self) -> PathBuf {
        let stem = self.database.with_extension("");
        PathBuf::from(format!("{}-scim-token", stem.display()))
    }

    /// Without `[sp.scim]`, serves SCIM under a token made on first start and kept in
    /// [`DemoConfig::scim_token_file`] (mode 0600), so a SCIM client (the IdP, a test) can be
    /// pointed at the app with nothing to configure. The settings hold only its SHA-256.
    /// `name_id` is the SCIM attribute holding what the app's contract keys accounts on.
    pub fn ensure_scim(&mut self, name_id: &str) -> Result<(), DemoError> {
        if self.sp.scim.is_some() {
            return Ok(());
        }
        let file = self.scim_token_file();
        let fail = |e: &dyn std::fmt::Display| {
            DemoError::Config(format!("SCIM token {}: {e}", file.display()))
        };
        let token = match std::fs::read_to_string(&file) {
            Ok(text) if !text.trim().is_empty() => text.trim().to_owned(),
            _ => {
                let token = format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                );
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut f = options.open(&file).map_err(|e| fail(&e))?;
                std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes())
                    .map_err(|e| fail(&e))?;
                token
            }
        };
        self.sp.scim = Some(ScimSettings {
            tokens: vec![TokenSettings {
                name: "demo".to_owned(),
                sha256: token_sha256(&token),
            }],
            base_url: None,
            idp_entity_id: None,
            name_id: name_id.to_owned(),
            attributes: Default::default(),
        });
        Ok(())
    }

    /// Whether the session cookie is `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
            .unwrap_or_else(|| self.sp.acs_url.starts_with("https://"))
    }
}

/// Generates the demo's signing key pair and writes it, the key readable by its owner only.
fn write_key_pair(key_file: &Path, cert_file: &Path, entity_id: &str) -> Result<(), DemoError> {
    let fail = |e: &dyn std::fmt::Display| DemoError::Config(format!("signing key: {e}"));
    let pair =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| fail(&e))?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, entity_id);
    let now = crate::Clock::System.now();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&pair).map_err(|e| fail(&e))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(key_file).map_err(|e| fail(&e))?;
    std::io::Write::write_all(&mut file, pair.serialize_pem().as_bytes()).map_err(|e| fail(&e))?;
    std::fs::write(cert_file, cert.pem()).map_err(|e| fail(&e))?;
    Ok(())
}
