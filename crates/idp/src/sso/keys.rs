//! The signing key as the running server uses it: loaded from the key store, parsed once,
//! and reloaded when a rollover (`latchkey key rotate`/`activate`) changes the store, so a
//! rollover needs no restart.
//!
//! [`IdpKeys::current`] is on every sign-in, so it never touches the database: it hands out
//! the cached material. How the cache learns of a change depends on the store:
//!
//! * files: `current()` compares the state file's mtime (one `stat`), as the file store is
//!   changed by the CLI on this very node;
//! * database: a background task ([`IdpKeys::spawn_refresh`]) calls [`IdpKeys::refresh`]
//!   every `[keys] refresh_seconds`, which reads one counter row and re-reads and unseals
//!   the keys only when another node changed them. A rollover done anywhere therefore
//!   shows in this node's metadata, and signing switches, within one interval. If the
//!   database is unreachable the node keeps signing with what it has.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use time::OffsetDateTime;

use crate::Store;
use crate::audit::Actor;
use crate::config::{Config, Environment, KeyStoreKind};
use crate::keys::{
    Activation, DatabaseKeyStore, Kek, KeyAlgorithm, KeyError, KeyMaterial, KeyStore, Keyring,
};

/// The active key and the certificates to publish.
#[derive(Debug)]
pub struct SigningMaterial {
    /// The key that signs.
    pub key: SigningKey,
    /// Its certificate (sent in KeyInfo for the SP's information).
    pub certificate: Certificate,
    /// Certificates for metadata: the active one, then the next one during a rollover.
    pub published: Vec<Certificate>,
}

/// The configured key store plus a cache of its parsed contents; cheap to clone (clones
/// share the cache, so the refresh task updates what the handlers read).
#[derive(Debug, Clone)]
pub struct IdpKeys(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    source: Source,
    cache: RwLock<Option<Cached>>,
}

#[derive(Debug)]
enum Source {
    Files(PathBuf),
    Database {
        keys: DatabaseKeyStore,
        every: Duration,
    },
}

#[derive(Debug)]
struct Cached {
    stamp: Stamp,
    material: Arc<SigningMaterial>,
}

/// What the cache was loaded from, to tell whether the store changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    Mtime(Option<SystemTime>),
    Generation(i64),
}

impl IdpKeys {
    /// Opens a key directory, generating the first key (of `algorithm`) if it is empty.
    pub fn open(
        dir: impl Into<PathBuf>,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<IdpKeys, KeyError> {
        let dir = dir.into();
        let mut store = KeyStore::open(&dir)?;
        store.load_or_generate(algorithm, now)?;
        let keys = Self::with_source(Source::Files(dir));
        keys.current()?;
        Ok(keys)
    }

    /// Opens the database key store, generating the first key if no node has yet (audited
    /// as the system's), and loads it; `every` is how often [`IdpKeys::spawn_refresh`]
    /// looks for changes.
    pub async fn open_database(
        keys: DatabaseKeyStore,
        every: Duration,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<IdpKeys, KeyError> {
        keys.load_or_generate(&Actor::system(), algorithm, now)
            .await?;
        let idp_keys = Self::with_source(Source::Database { keys, every });
        idp_keys.refresh().await?;
        idp_keys.current()?;
        Ok(idp_keys)
    }

    /// Opens the store `[keys] store` names: the `<data_dir>/keys` directory, or the
    /// database behind `store` with the key-encryption key found through `env`.
    pub async fn from_config(
        config: &Config,
        env: &dyn Environment,
        store: &Store,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<IdpKeys, KeyError> {
        match config.keys.store {
            KeyStoreKind::Files => {
                // The first key of a new directory is generated here, so that it is audited
                // (as the system's) like every other key change.
                let dir = config.data_dir.join("keys");
                let mut ring = Keyring::Files {
                    keys: KeyStore::open(&dir)?,
                    audit: store.clone(),
                };
                ring.load_or_generate(&Actor::system(), algorithm, now)
                    .await?;
                Self::open(dir, algorithm, now)
            }
            KeyStoreKind::Database => {
                let kek = Kek::resolve(&config.keys, env)?;
                let every = Duration::from_secs(config.keys.refresh_seconds.max(1));
                let keys = DatabaseKeyStore::new(store.clone(), kek);
                Self::open_database(keys, every, algorithm, now).await
            }
        }
    }

    /// A [`Keyring`] over the store these keys come from, recording its changes in
    /// `audit`'s log: how the console rotates and activates the keys this server signs
    /// with. After a change, [`IdpKeys::refresh`] makes the database store's change show
    /// here at once (files are followed by [`IdpKeys::current`] by themselves).
    pub fn keyring(&self, audit: &Store) -> Result<Keyring, KeyError> {
        match &self.0.source {
            Source::Files(dir) => Ok(Keyring::Files {
                keys: KeyStore::open(dir)?,
                audit: audit.clone(),
            }),
            Source::Database { keys, .. } => Ok(Keyring::Database(DatabaseKeyStore::new(
                keys.store().clone(),
                keys.kek().clone(),
            ))),
        }
    }

    /// The rollover safety rule for this store (the one `latchkey key activate` applies):
    /// the next key must have been published for the metadata's `cacheDuration`, plus, for
    /// the database store, one refresh interval of the other nodes.
    pub fn activation(&self, metadata_cache: time::Duration) -> Activation {
        let refresh = match &self.0.source {
            Source::Files(_) => None,
            Source::Database { every, .. } => Some(time::Duration::seconds(
                i64::try_from(every.as_secs()).unwrap_or(0),
            )),
        };
        Activation::after(metadata_cache, refresh)
    }

    fn with_source(source: Source) -> IdpKeys {
        IdpKeys(Arc::new(Inner {
            source,
            cache: RwLock::new(None),
        }))
    }

    /// The current material. Never waits on the database: for the database store it is
    /// what the last [`IdpKeys::refresh`] loaded; for files it is reloaded here when the
    /// state file changed.
    pub fn current(&self) -> Result<Arc<SigningMaterial>, KeyError> {
        match &self.0.source {
            Source::Files(dir) => self.current_from_files(dir),
            Source::Database { .. } => self
                .cached()
                .map(|(_, material)| material)
                .ok_or(KeyError::NoActiveKey),
        }
    }

    /// Looks for a change made by any node and reloads the keys if there was one; returns
    /// whether it reloaded. Cheap when nothing changed (one counter row). A no-op for the
    /// file store, which [`IdpKeys::current`] follows by itself.
    pub async fn refresh(&self) -> Result<bool, KeyError> {
        let Source::Database { keys, .. } = &self.0.source else {
            return Ok(false);
        };
        let generation = keys.generation().await?;
        let seen = self.cached().map(|(stamp, _)| stamp);
        if seen == Some(Stamp::Generation(generation)) {
            return Ok(false);
        }
        // The generation was read before the keys: if a change lands in between, the
        // newer keys are cached under the older number and the next refresh loads them
        // again, which costs a reload and never keeps stale keys.
        let (active, next) = keys.published().await?;
        let material = Arc::new(build(&active, next.as_ref())?);
        if let Ok(mut guard) = self.0.cache.write() {
            let newer = match guard.as_ref().map(|c| c.stamp) {
                Some(Stamp::Generation(cached)) => generation > cached,
                _ => true,
            };
            if newer {
                *guard = Some(Cached {
                    stamp: Stamp::Generation(generation),
                    material,
                });
            }
        }
        Ok(true)
    }

    /// Starts the task that calls [`IdpKeys::refresh`] every `[keys] refresh_seconds`, for
    /// the database store (`None` for files). Failures are logged and the node keeps its
    /// keys. Abort the handle on shutdown.
    pub fn spawn_refresh(&self) -> Option<tokio::task::JoinHandle<()>> {
        let Source::Database { every, .. } = &self.0.source else {
            return None;
        };
        let every = *every;
        let keys = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate and the keys were just loaded.
            tick.tick().await;
            loop {
                tick.tick().await;
                match keys.refresh().await {
                    Ok(true) => tracing::info!("signing keys changed in the store; reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(
                        error = %e,
                        "cannot refresh the signing keys; still signing with the loaded ones"
                    ),
                }
            }
        }))
    }

    fn cached(&self) -> Option<(Stamp, Arc<SigningMaterial>)> {
        let guard = self.0.cache.read().ok()?;
        guard.as_ref().map(|c| (c.stamp, c.material.clone()))
    }

    fn current_from_files(&self, dir: &Path) -> Result<Arc<SigningMaterial>, KeyError> {
        let stamp = Stamp::Mtime(state_mtime(dir));
        if let Some((seen, material)) = self.cached()
            && seen == stamp
        {
            return Ok(material);
        }
        let store = KeyStore::open(dir)?;
        let material = Arc::new(build(&store.active()?, store.next()?.as_ref())?);
        if let Ok(mut guard) = self.0.cache.write() {
            *guard = Some(Cached {
                stamp,
                material: material.clone(),
            });
        }
        Ok(material)
    }
}

fn state_mtime(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join("state.json"))
        .and_then(|m| m.modified())
        .ok()
}

fn build(active: &KeyMaterial, next: Option<&KeyMaterial>) -> Result<SigningMaterial, KeyError> {
    let mut published = vec![active.certificate()?];
    if let Some(next) = next {
        published.push(next.certificate()?);
    }
    Ok(SigningMaterial {
        key: active.signing_key()?,
        certificate: active.certificate()?,
        published,
    })
}
