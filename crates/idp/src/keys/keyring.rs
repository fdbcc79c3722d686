//! One interface over both key stores, so the CLI (and anything else that manages keys)
//! is written once and `[keys] store` alone decides where the keys are.

use time::OffsetDateTime;

use super::{DatabaseKeyStore, Kek, KeyAlgorithm, KeyError, KeyInfo, KeyMaterial, KeyStore};
use crate::Store;
use crate::config::{Config, Environment, KeyStoreKind};

/// The configured key store.
#[derive(Debug)]
#[non_exhaustive]
pub enum Keyring {
    /// `store = "files"`: the key directory of this node.
    Files(KeyStore),
    /// `store = "database"`: the keys every node on the database shares.
    Database(DatabaseKeyStore),
}

impl Keyring {
    /// Opens the store `config` names. The database store needs the key-encryption key
    /// (from `env` or `[keys] kek_file`) and opens the database, applying migrations.
    pub async fn open(config: &Config, env: &dyn Environment) -> Result<Keyring, KeyError> {
        match config.keys.store {
            KeyStoreKind::Files => Ok(Keyring::Files(KeyStore::open(
                config.data_dir.join("keys"),
            )?)),
            KeyStoreKind::Database => {
                let kek = Kek::resolve(&config.keys, env)?;
                let store = Store::open(config).await?;
                Ok(Keyring::Database(DatabaseKeyStore::new(store, kek)))
            }
        }
    }

    /// Where the keys are, for messages: the directory or the database backend.
    pub fn describe(&self) -> String {
        match self {
            Keyring::Files(s) => format!("files in {}", s.dir().display()),
            Keyring::Database(s) => format!(
                "the {} database (key-encryption key {} from {})",
                s.store().backend().name(),
                s.kek().id(),
                s.kek().source()
            ),
        }
    }

    /// Every key, active first, then next, then retired from newest to oldest.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        match self {
            Keyring::Files(s) => Ok(s.list()),
            Keyring::Database(s) => s.list().await,
        }
    }

    /// Makes sure an active key exists, generating one on first use.
    pub async fn load_or_generate(
        &mut self,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<KeyInfo, KeyError> {
        match self {
            Keyring::Files(s) => s.load_or_generate(algorithm, now),
            Keyring::Database(s) => s.load_or_generate(algorithm, now).await,
        }
    }

    /// Generates the `next` key (published, not signing).
    pub async fn rotate(
        &mut self,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<KeyInfo, KeyError> {
        match self {
            Keyring::Files(s) => s.rotate(algorithm, now),
            Keyring::Database(s) => s.rotate(algorithm, now).await,
        }
    }

    /// Promotes `next` to `active`; the old active key is retired.
    pub async fn activate(&mut self, now: OffsetDateTime) -> Result<KeyInfo, KeyError> {
        match self {
            Keyring::Files(s) => s.activate(now),
            Keyring::Database(s) => s.activate(now).await,
        }
    }

    /// Retires the `next` key without activating it.
    pub async fn retire_next(&mut self, now: OffsetDateTime) -> Result<KeyInfo, KeyError> {
        match self {
            Keyring::Files(s) => s.retire_next(now),
            Keyring::Database(s) => s.retire_next(now).await,
        }
    }

    /// The key that signs now.
    pub async fn active(&self) -> Result<KeyMaterial, KeyError> {
        match self {
            Keyring::Files(s) => s.active(),
            Keyring::Database(s) => s.active().await,
        }
    }

    /// The key published ahead of activation, if any.
    pub async fn next(&self) -> Result<Option<KeyMaterial>, KeyError> {
        match self {
            Keyring::Files(s) => s.next(),
            Keyring::Database(s) => s.next().await,
        }
    }

    /// Closes the database pool, if there is one.
    pub async fn close(self) {
        if let Keyring::Database(s) = self {
            s.store().close().await;
        }
    }
}
