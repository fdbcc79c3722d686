//! `state.json`: which key is active, next and retired.
//!
//! Written to a temporary file, synced, then renamed over the old one, so a crash
//! leaves either the old or the new state and never half a file.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{KeyAlgorithm, KeyError, KeyInfo, KeyStatus, io_err};

const FILE: &str = "state.json";
const TMP: &str = "state.json.tmp";
const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct State {
    version: u32,
    pub(super) keys: Vec<KeyRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyRecord {
    pub(super) id: String,
    pub(super) algorithm: KeyAlgorithm,
    pub(super) status: KeyStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub(super) created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub(super) activated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub(super) retired_at: Option<OffsetDateTime>,
    pub(super) fingerprint_sha256: String,
}

impl KeyRecord {
    pub(super) fn info(&self) -> KeyInfo {
        KeyInfo {
            id: self.id.clone(),
            algorithm: self.algorithm,
            status: self.status,
            created_at: self.created_at,
            activated_at: self.activated_at,
            retired_at: self.retired_at,
            fingerprint_sha256: self.fingerprint_sha256.clone(),
        }
    }
}

impl State {
    pub(super) fn active(&self) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.status == KeyStatus::Active)
    }

    pub(super) fn next(&self) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.status == KeyStatus::Next)
    }

    /// Reads the state, or an empty one if the file does not exist yet.
    pub(super) fn load(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    version: VERSION,
                    keys: Vec::new(),
                });
            }
            Err(source) => return Err(io_err(&path, source)),
        };
        let corrupt = |reason: String| KeyError::Corrupt {
            path: path.clone(),
            reason,
        };
        let state: Self = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if state.version != VERSION {
            return Err(corrupt(format!("unsupported version {}", state.version)));
        }
        let count = |s: KeyStatus| state.keys.iter().filter(|k| k.status == s).count();
        if count(KeyStatus::Active) > 1 || count(KeyStatus::Next) > 1 {
            return Err(corrupt("more than one active or next key".into()));
        }
        if count(KeyStatus::Next) == 1 && count(KeyStatus::Active) == 0 {
            return Err(corrupt("a next key without an active key".into()));
        }
        for k in &state.keys {
            if !super::valid_id(&k.id, &k.fingerprint_sha256) {
                return Err(corrupt(format!("bad key id {:?}", k.id)));
            }
        }
        Ok(state)
    }

    pub(super) fn save(&self, dir: &Path) -> Result<(), KeyError> {
        let tmp = dir.join(TMP);
        let path = dir.join(FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| KeyError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        // A leftover temporary file from a crash is overwritten.
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|source| io_err(&tmp, source))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|source| io_err(&tmp, source))?;
        fs::rename(&tmp, &path).map_err(|source| io_err(&path, source))?;
        // Make the rename itself durable.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}
