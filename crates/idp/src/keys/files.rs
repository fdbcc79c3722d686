//! The file store: keys as PEM files beside `state.json` in one directory per node.
//!
//! Kept because a single node needs nothing more, and an admin can read, back up and
//! restore the keys with ordinary tools; see the module docs of [`super`] for the layout.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::state::{KeyRecord, State};
use super::{
    Activation, KeyAlgorithm, KeyError, KeyInfo, KeyMaterial, KeyStatus, Mismatch, io_err,
};

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

    /// Any key of the store by id, retired ones included (`latchkey key import-files`
    /// copies them all).
    pub fn material(&self, id: &str) -> Result<Option<KeyMaterial>, KeyError> {
        self.state
            .keys
            .iter()
            .find(|k| k.id == id)
            .map(|r| self.read(r))
            .transpose()
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
        super::sort_for_listing(&mut out);
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

    /// Promotes `next` to `active` and retires the old active key, if `rule` allows.
    pub fn activate(&mut self, now: OffsetDateTime, rule: Activation) -> Result<KeyInfo, KeyError> {
        let next = self.state.next().ok_or(KeyError::NoNextKey)?;
        rule.check(&next.info(), now)?;
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

    /// Abandons a rollover: the `next` key is retired without ever signing, and leaves
    /// the metadata.
    pub fn retire_next(&mut self, now: OffsetDateTime) -> Result<KeyInfo, KeyError> {
        let mut state = self.state.clone();
        let record = state
            .keys
            .iter_mut()
            .find(|k| k.status == KeyStatus::Next)
            .ok_or(KeyError::NoNextKey)?;
        record.status = KeyStatus::Retired;
        record.retired_at = Some(now);
        let info = record.info();
        state.save(&self.dir)?;
        self.state = state;
        Ok(info)
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
        let new = super::generate(algorithm, now)?;
        let id = &new.record.id;
        let key_path = self.dir.join(format!("{id}.key.pem"));
        let cert_path = self.dir.join(format!("{id}.crt.pem"));
        write_new_file(&key_path, new.key_pem.as_bytes(), 0o600)?;
        write_new_file(&cert_path, new.cert_pem.as_bytes(), 0o644)?;
        Ok(new.record)
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
        super::check_pair(record, &key_pem, &cert_pem).map_err(|m| {
            let (path, reason) = match m {
                Mismatch::Key(reason) => (key_path, reason),
                Mismatch::Cert(reason) => (cert_path, reason),
            };
            KeyError::Corrupt { path, reason }
        })?;
        Ok(KeyMaterial {
            info: record.info(),
            key_pem,
            cert_pem,
        })
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
pub(crate) fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
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
