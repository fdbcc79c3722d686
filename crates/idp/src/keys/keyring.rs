//! One interface over both key stores, so the CLI (and anything else that manages keys)
//! is written once and `[keys] store` alone decides where the keys are.
//!
//! The file store keeps no audit log of its own, so the keyring opens the database for it
//! too and records each file change there (see [`audited`]).

use time::OffsetDateTime;

use super::{
    Activation, DatabaseKeyStore, Kek, KeyAlgorithm, KeyError, KeyInfo, KeyMaterial, KeyStatus,
    KeyStore,
};
use crate::Store;
use crate::audit::{self, Actor, Change};
use crate::config::{Config, Environment, KeyStoreKind};

/// The configured key store.
#[derive(Debug)]
#[non_exhaustive]
pub enum Keyring {
    /// `store = "files"`: the key directory of this node, and the database its changes are
    /// audited in.
    Files {
        /// The key directory.
        keys: KeyStore,
        /// The store holding the audit log.
        audit: Store,
    },
    /// `store = "database"`: the keys every node on the database shares.
    Database(DatabaseKeyStore),
}

impl Keyring {
    /// Opens the store `config` names. The database store needs the key-encryption key
    /// (from `env` or `[keys] kek_file`) and opens the database, applying migrations.
    pub async fn open(config: &Config, env: &dyn Environment) -> Result<Keyring, KeyError> {
        match config.keys.store {
            KeyStoreKind::Files => Ok(Keyring::Files {
                keys: KeyStore::open(config.data_dir.join("keys"))?,
                audit: Store::open(config).await?,
            }),
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
            Keyring::Files { keys: s, .. } => format!("files in {}", s.dir().display()),
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
            Keyring::Files { keys: s, .. } => Ok(s.list()),
            Keyring::Database(s) => s.list().await,
        }
    }

    /// Makes sure an active key exists, generating one on first use, audited as `actor`'s
    /// (finding one records nothing: nothing changed).
    pub async fn load_or_generate(
        &mut self,
        actor: &Actor,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<KeyInfo, KeyError> {
        match self {
            Keyring::Files { keys, audit } => {
                if let Some(active) = keys
                    .list()
                    .into_iter()
                    .find(|k| k.status == KeyStatus::Active)
                {
                    return Ok(active);
                }
                audited(audit, actor, now, || {
                    let info = keys.load_or_generate(algorithm, now)?;
                    Ok((super::generated(&info), info))
                })
                .await
            }
            Keyring::Database(s) => s.load_or_generate(actor, algorithm, now).await,
        }
    }

    /// Generates the `next` key (published, not signing), audited as `actor`'s.
    pub async fn rotate(
        &mut self,
        actor: &Actor,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<KeyInfo, KeyError> {
        match self {
            Keyring::Files { keys, audit } => {
                audited(audit, actor, now, || {
                    let info = keys.rotate(algorithm, now)?;
                    Ok((super::rotated(&info), info))
                })
                .await
            }
            Keyring::Database(s) => s.rotate(actor, algorithm, now).await,
        }
    }

    /// Promotes `next` to `active` if `rule` allows; the old active key is retired.
    pub async fn activate(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        rule: Activation,
    ) -> Result<KeyInfo, KeyError> {
        match self {
            Keyring::Files { keys, audit } => {
                let old = keys
                    .list()
                    .into_iter()
                    .find(|k| k.status == KeyStatus::Active)
                    .map(|k| k.id);
                audited(audit, actor, now, || {
                    let info = keys.activate(now, rule)?;
                    Ok((super::activated(&info, old.as_deref(), rule), info))
                })
                .await
            }
            Keyring::Database(s) => s.activate(actor, now, rule).await,
        }
    }

    /// Retires the `next` key without activating it.
    pub async fn retire_next(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<KeyInfo, KeyError> {
        match self {
            Keyring::Files { keys, audit } => {
                audited(audit, actor, now, || {
                    let info = keys.retire_next(now)?;
                    Ok((super::retired_next(&info), info))
                })
                .await
            }
            Keyring::Database(s) => s.retire_next(actor, now).await,
        }
    }

    /// The key that signs now.
    pub async fn active(&self) -> Result<KeyMaterial, KeyError> {
        match self {
            Keyring::Files { keys: s, .. } => s.active(),
            Keyring::Database(s) => s.active().await,
        }
    }

    /// The key published ahead of activation, if any.
    pub async fn next(&self) -> Result<Option<KeyMaterial>, KeyError> {
        match self {
            Keyring::Files { keys: s, .. } => s.next(),
            Keyring::Database(s) => s.next().await,
        }
    }

    /// Closes the database pool.
    pub async fn close(self) {
        match self {
            Keyring::Files { audit, .. } => audit.close().await,
            Keyring::Database(s) => s.store().close().await,
        }
    }
}

/// Makes a file-store change inside an open database transaction and records its event
/// there. The transaction is opened first, so a database that cannot take the record stops
/// the change before a file is touched; a refused change rolls it back with nothing
/// recorded. Only a commit failing after the files changed can leave a change unrecorded,
/// and it is then reported as this call's error.
async fn audited(
    store: &Store,
    actor: &Actor,
    now: OffsetDateTime,
    change: impl FnOnce() -> Result<(Change, KeyInfo), KeyError>,
) -> Result<KeyInfo, KeyError> {
    let mut tx = store.begin().await?;
    let (event, info) = change()?;
    audit::record(&mut tx, actor, now, event).await?;
    tx.commit().await?;
    Ok(info)
}
