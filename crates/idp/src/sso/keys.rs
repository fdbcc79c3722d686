//! The signing key as the running server uses it: loaded from the key store, parsed once,
//! and reloaded when `latchkey key rotate`/`activate` change the store's state file, so a
//! rollover needs no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use time::OffsetDateTime;

use crate::keys::{KeyAlgorithm, KeyError, KeyStore};

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

/// The key directory plus a cache of its parsed contents.
#[derive(Debug)]
pub struct IdpKeys {
    dir: PathBuf,
    cache: RwLock<Option<(Option<SystemTime>, Arc<SigningMaterial>)>>,
}

impl IdpKeys {
    /// Opens the key directory, generating the first key (of `algorithm`) if it is empty.
    pub fn open(
        dir: impl Into<PathBuf>,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<IdpKeys, KeyError> {
        let dir = dir.into();
        let mut store = KeyStore::open(&dir)?;
        store.load_or_generate(algorithm, now)?;
        let keys = IdpKeys {
            dir,
            cache: RwLock::new(None),
        };
        keys.current()?;
        Ok(keys)
    }

    /// The current material, reloaded if the state file changed since the last load.
    pub fn current(&self) -> Result<Arc<SigningMaterial>, KeyError> {
        let stamp = state_mtime(&self.dir);
        if let Ok(guard) = self.cache.read()
            && let Some((seen, material)) = guard.as_ref()
            && *seen == stamp
        {
            return Ok(material.clone());
        }
        let material = Arc::new(load(&self.dir)?);
        if let Ok(mut guard) = self.cache.write() {
            *guard = Some((stamp, material.clone()));
        }
        Ok(material)
    }
}

fn state_mtime(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join("state.json"))
        .and_then(|m| m.modified())
        .ok()
}

fn load(dir: &Path) -> Result<SigningMaterial, KeyError> {
    let store = KeyStore::open(dir)?;
    let active = store.active()?;
    let mut published = vec![active.certificate()?];
    if let Some(next) = store.next()? {
        published.push(next.certificate()?);
    }
    Ok(SigningMaterial {
        key: active.signing_key()?,
        certificate: active.certificate()?,
        published,
    })
}
