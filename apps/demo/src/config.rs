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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use latchkey_sp::settings::SpConfig;
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

    /// Whether the session cookie is `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
            .unwrap_or_else(|| self.sp.acs_url.starts_with("https://"))
    }
}
