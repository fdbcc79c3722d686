//! The key-encryption key (KEK) that seals private keys kept in the database.
//!
//! The KEK is deliberately *not* in the database: a database dump, a backup or a read-only
//! SQL injection must not be enough to sign assertions as the IdP. Each node gets it from a
//! file (`[keys] kek_file`, checked for mode 0600 as private key files are) or from the
//! environment (`LATCHKEY_KEK`, for secret managers that inject variables). Both hold 32
//! random bytes in base64.
//!
//! Sealing is AES-256-GCM with a random 96-bit nonce. The additional authenticated data
//! binds the ciphertext to the key's id, algorithm and certificate fingerprint, so a row
//! whose sealed key was copied from another row (a swap to make the IdP sign with a key
//! the attacker chose) fails to open instead of decrypting to the wrong key.
//!
//! Every row records the KEK's id (a hash of the KEK under a fixed label, which tells
//! nothing about the KEK itself), so a node started with the wrong KEK says so by name
//! instead of reporting the rows as tampered, and writers refuse to add a key sealed
//! under a KEK the other rows do not use.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{KeyAlgorithm, KeyError, io_err};
use crate::config::{Environment, KeysConfig};

/// The environment variable that carries the KEK itself (base64).
pub const KEK_ENV: &str = "LATCHKEY_KEK";

/// The KEK's length: AES-256.
const KEK_LEN: usize = 32;
/// The GCM tag appended to the ciphertext.
const TAG_LEN: usize = 16;
/// Domain separation for the KEK id, so it is not a plain hash of the key.
const ID_LABEL: &[u8] = b"latchkey key-encryption key id v1\0";
/// Domain separation for the AAD; the version lets the format change later.
const AAD_LABEL: &str = "latchkey signing key v1";

/// Where the KEK came from, to name it in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    /// A file (`[keys] kek_file` or `LATCHKEY_KEK_FILE`).
    File(PathBuf),
    /// The `LATCHKEY_KEK` environment variable.
    Env,
}

impl std::fmt::Display for KekSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env => write!(f, "${KEK_ENV}"),
        }
    }
}

/// The key-encryption key. `Debug` shows where it came from and its id, never the key.
/// A clone is wiped on drop like the original (the console's keyring holds one).
#[derive(Clone)]
pub struct Kek {
    key: Zeroizing<[u8; KEK_LEN]>,
    id: String,
    source: KekSource,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Kek {
    /// Finds the KEK as the configuration says: `LATCHKEY_KEK` first (the environment
    /// overrides files, as for every other setting), else the `kek_file`.
    pub fn resolve(config: &KeysConfig, env: &dyn Environment) -> Result<Kek, KeyError> {
        if let Some(value) = env.var(KEK_ENV) {
            return Self::from_base64(&value, KekSource::Env);
        }
        match &config.kek_file {
            Some(path) => Self::from_file(path),
            None => Err(KeyError::KekMissing),
        }
    }

    /// Reads a KEK file, refusing one that group or others can read.
    pub fn from_file(path: &Path) -> Result<Kek, KeyError> {
        let mode = fs::metadata(path)
            .map_err(|source| io_err(path, source))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions {
                path: path.to_owned(),
                mode: mode & 0o777,
            });
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|source| io_err(path, source))?);
        Self::from_base64(&text, KekSource::File(path.to_owned()))
    }

    /// Decodes 32 bytes of base64 (surrounding whitespace ignored).
    pub fn from_base64(text: &str, source: KekSource) -> Result<Kek, KeyError> {
        let bytes =
            Zeroizing::new(
                STANDARD
                    .decode(text.trim())
                    .map_err(|e| KeyError::KekInvalid {
                        kek: source.clone(),
                        reason: format!("not base64: {e}"),
                    })?,
            );
        let mut key = Zeroizing::new([0u8; KEK_LEN]);
        if bytes.len() != KEK_LEN {
            return Err(KeyError::KekInvalid {
                kek: source,
                reason: format!("{} bytes; a KEK is {KEK_LEN} random bytes", bytes.len()),
            });
        }
        key.copy_from_slice(&bytes);
        Ok(Self::from_bytes(key, source))
    }

    /// A fresh random KEK, in the base64 form files and `LATCHKEY_KEK` hold.
    pub fn generate_base64() -> Zeroizing<String> {
        let mut key = Zeroizing::new([0u8; KEK_LEN]);
        rand::fill(&mut key[..]);
        Zeroizing::new(STANDARD.encode(&key[..]))
    }

    /// Writes a fresh KEK to a new file (mode 0600, refused if the file exists, so an
    /// existing KEK, and with it every key sealed under it, cannot be overwritten).
    pub fn create_file(path: &Path) -> Result<Kek, KeyError> {
        let text = Self::generate_base64();
        let line = Zeroizing::new(format!("{}\n", text.as_str()));
        super::files::write_new_file(path, line.as_bytes(), 0o600)?;
        Self::from_base64(&text, KekSource::File(path.to_owned()))
    }

    fn from_bytes(key: Zeroizing<[u8; KEK_LEN]>, source: KekSource) -> Kek {
        let mut hash = Sha256::new();
        hash.update(ID_LABEL);
        hash.update(&key[..]);
        let digest = hex::encode(hash.finalize());
        let id = digest.get(..16).unwrap_or(&digest).to_owned();
        Kek { key, id, source }
    }

    /// The KEK's id as stored beside every key it sealed.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the KEK came from.
    pub fn source(&self) -> &KekSource {
        &self.source
    }

    /// Seals a private key PEM: base64 of `nonce || ciphertext || tag`.
    pub(super) fn seal(&self, key: &KeyBinding<'_>, plaintext: &[u8]) -> Result<String, KeyError> {
        self.seal_bound(&key.aad(), plaintext)
    }

    /// Opens what [`Kek::seal`] produced for the same key. A KEK other than the one the
    /// row names is [`KeyError::WrongKek`]; anything else that fails is
    /// [`KeyError::Tampered`], never a wrong plaintext.
    pub(super) fn open(
        &self,
        key: &KeyBinding<'_>,
        sealed_with: &str,
        sealed: &str,
    ) -> Result<Zeroizing<String>, KeyError> {
        let plain = self.open_bound(key.id, &key.aad(), sealed_with, sealed)?;
        let text = std::str::from_utf8(&plain).map_err(|_| KeyError::Tampered {
            id: key.id.to_owned(),
        })?;
        Ok(Zeroizing::new(text.to_owned()))
    }

    /// The one AES-256-GCM sealer of the crate (signing keys here, TOTP secrets in
    /// [`crate::mfa`]): base64 of `nonce || ciphertext || tag`, with `aad` (which the
    /// caller builds from the clear columns of the row, under its own versioned label)
    /// authenticated, so a sealed value copied to another row does not open there.
    pub(crate) fn seal_bound(&self, aad: &str, plaintext: &[u8]) -> Result<String, KeyError> {
        let fail = || KeyError::Generate("AES-256-GCM sealing failed".into());
        let sealer =
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.key[..]).map_err(|_| fail())?);
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let mut body = Zeroizing::new(plaintext.to_vec());
        sealer
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut *body,
            )
            .map_err(|_| fail())?;
        let mut out = Vec::with_capacity(NONCE_LEN + body.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(STANDARD.encode(out))
    }

    /// Opens what [`Kek::seal_bound`] sealed under the same `aad`; `id` names the row in
    /// errors. A row sealed under another KEK is [`KeyError::WrongKek`]; anything else that
    /// fails is [`KeyError::Tampered`].
    pub(crate) fn open_bound(
        &self,
        id: &str,
        aad: &str,
        sealed_with: &str,
        sealed: &str,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if sealed_with != self.id {
            return Err(KeyError::WrongKek {
                key_id: id.to_owned(),
                kek: self.source.clone(),
                kek_id: self.id.clone(),
                sealed_with: sealed_with.to_owned(),
            });
        }
        let tampered = || KeyError::Tampered { id: id.to_owned() };
        let data = STANDARD.decode(sealed).map_err(|_| tampered())?;
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(tampered());
        }
        let (nonce, body) = data.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| tampered())?;
        let opener =
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.key[..]).map_err(|_| tampered())?);
        let mut buf = Zeroizing::new(body.to_vec());
        let len = opener
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| tampered())?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// What a sealed key is bound to (its AAD): the clear columns of its row that say which
/// key it is.
pub(super) struct KeyBinding<'a> {
    pub(super) id: &'a str,
    pub(super) algorithm: KeyAlgorithm,
    pub(super) fingerprint_sha256: &'a str,
}

impl KeyBinding<'_> {
    fn aad(&self) -> String {
        format!(
            "{AAD_LABEL}\0{}\0{}\0{}",
            self.id,
            self.algorithm.as_str(),
            self.fingerprint_sha256
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap()
    }

    fn binding(id: &str) -> KeyBinding<'_> {
        KeyBinding {
            id,
            algorithm: KeyAlgorithm::Rsa2048,
            fingerprint_sha256: "00",
        }
    }

    #[test]
    fn seal_open_roundtrip_and_fresh_nonces() {
        let kek = kek();
        let a = kek.seal(&binding("a"), b"secret pem").unwrap();
        let b = kek.seal(&binding("a"), b"secret pem").unwrap();
        assert_ne!(a, b, "a nonce was reused");
        assert!(!a.contains("secret"));
        let opened = kek.open(&binding("a"), kek.id(), &a).unwrap();
        assert_eq!(opened.as_str(), "secret pem");
    }

    #[test]
    fn another_binding_or_a_flipped_bit_is_tampering() {
        let kek = kek();
        let sealed = kek.seal(&binding("a"), b"secret pem").unwrap();
        let err = kek.open(&binding("b"), kek.id(), &sealed).unwrap_err();
        assert!(
            matches!(err, KeyError::Tampered { ref id } if id == "b"),
            "{err:?}"
        );
        let mut bytes = STANDARD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = kek
            .open(&binding("a"), kek.id(), &STANDARD.encode(&bytes))
            .unwrap_err();
        assert!(matches!(err, KeyError::Tampered { .. }), "{err:?}");
        let err = kek.open(&binding("a"), kek.id(), "AAAA").unwrap_err();
        assert!(matches!(err, KeyError::Tampered { .. }), "{err:?}");
    }

    #[test]
    fn a_different_kek_is_named() {
        let (one, two) = (kek(), kek());
        assert_ne!(one.id(), two.id());
        let sealed = one.seal(&binding("a"), b"pem").unwrap();
        let err = two.open(&binding("a"), one.id(), &sealed).unwrap_err();
        assert!(matches!(err, KeyError::WrongKek { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(KEK_ENV) && text.contains(one.id()), "{text}");
    }

    #[test]
    fn bad_kek_text_is_refused() {
        assert!(matches!(
            Kek::from_base64("not base64!", KekSource::Env),
            Err(KeyError::KekInvalid { .. })
        ));
        assert!(matches!(
            Kek::from_base64(&STANDARD.encode([0u8; 16]), KekSource::Env),
            Err(KeyError::KekInvalid { .. })
        ));
    }

    #[test]
    fn create_file_writes_a_private_kek_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let made = Kek::create_file(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Kek::from_file(&path).unwrap().id(), made.id());
        assert!(matches!(Kek::create_file(&path), Err(KeyError::Io { .. })));
        assert_eq!(Kek::from_file(&path).unwrap().id(), made.id());
    }

    #[test]
    fn kek_file_must_be_private_and_debug_hides_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let text = Kek::generate_base64();
        fs::write(&path, format!("{}\n", text.as_str())).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            Kek::from_file(&path),
            Err(KeyError::InsecurePermissions { mode: 0o640, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let kek = Kek::from_file(&path).unwrap();
        assert_eq!(kek.source(), &KekSource::File(path.clone()));
        let shown = format!("{kek:?}");
        assert!(!shown.contains(text.as_str()), "{shown}");
        assert!(shown.contains(kek.id()), "{shown}");
    }
}
