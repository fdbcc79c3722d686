//! RSA keys for key transport: the recipient's public key (from its certificate) and
//! our private key for unwrapping.
//!
//! These are separate from [`crate::crypto::SigningKey`] on purpose: aws-lc-rs keeps
//! RSA encryption keys apart from signing keys, and a deployment should be able to give
//! its SP a decryption key that cannot sign (and the reverse).
//!
//! # Security
//! `DecryptionKey`'s `Debug` prints only the key size. The DER of the private key is
//! zeroized once aws-lc-rs has parsed it.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair as RsaKeyPair, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey,
};
use zeroize::Zeroizing;

use super::EncryptionError;
use super::algorithm::KeyTransport;
use crate::crypto::key::MIN_RSA_BITS;
use crate::crypto::{Certificate, KeyError, KeyKind};

/// Our RSA private key, for unwrapping content keys (2048 to 8192 bits). Cloning shares
/// the key material (aws-lc-rs counts references), it does not copy it.
#[derive(Clone)]
pub struct DecryptionKey {
    key: PrivateDecryptingKey,
    bits: usize,
}

impl fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionKey")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl DecryptionKey {
    /// Reads the first private key block of a PEM text: `PRIVATE KEY` (PKCS#8) or
    /// `RSA PRIVATE KEY` (PKCS#1). Other blocks, such as a certificate in the same file,
    /// are skipped.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(text).map_err(|e| KeyError::Pem(e.to_string()))?;
        let mut labels = Vec::new();
        for block in blocks {
            match block.tag() {
                "PRIVATE KEY" | "RSA PRIVATE KEY" => {
                    let der = Zeroizing::new(block.into_contents());
                    return Self::from_der(&der);
                }
                other => labels.push(other.to_owned()),
            }
        }
        Err(KeyError::NoUsablePemBlock {
            found: labels.join(", "),
        })
    }

    /// Reads a DER RSA private key, PKCS#8 or PKCS#1.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = match PrivateDecryptingKey::from_pkcs8(der) {
            Ok(key) => key,
            Err(_) => {
                // aws-lc-rs reads PKCS#1 only as a signing key pair; re-encode it as
                // PKCS#8 for the encryption API.
                let pair = RsaKeyPair::from_der(der)
                    .map_err(|_| KeyError::InvalidPrivateKey("not a PKCS#8 or PKCS#1 RSA key"))?;
                let pkcs8 = pair
                    .as_der()
                    .map_err(|_| KeyError::InvalidPrivateKey("cannot re-encode RSA key"))?;
                let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
                PrivateDecryptingKey::from_pkcs8(&pkcs8)
                    .map_err(|_| KeyError::InvalidPrivateKey("RSA key refused"))?
            }
        };
        let bits = key.key_size_bits();
        if bits < usize::try_from(MIN_RSA_BITS).unwrap_or(usize::MAX) {
            return Err(KeyError::RsaKeyTooSmall {
                bits: u32::try_from(bits).unwrap_or(0),
                min: MIN_RSA_BITS,
            });
        }
        Ok(Self { key, bits })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Unwraps a content key. `None` on any failure, with no reason: see the module's
    /// security notes.
    pub(super) fn unwrap_key(
        &self,
        transport: KeyTransport,
        wrapped: &[u8],
        label: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let key = OaepPrivateDecryptingKey::new(self.key.clone()).ok()?;
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let label = (!label.is_empty()).then_some(label);
        let len = key
            .decrypt(transport.oaep(), wrapped, &mut out, label)
            .ok()?
            .len();
        out.truncate(len);
        Some(out)
    }
}

/// Wraps `content_key` for the holder of `certificate`'s private key.
pub(super) fn wrap_key(
    certificate: &Certificate,
    transport: KeyTransport,
    content_key: &[u8],
) -> Result<Vec<u8>, crate::Error> {
    let public = certificate.verifying_key();
    match public.kind() {
        KeyKind::Rsa { bits } if bits >= MIN_RSA_BITS => {}
        KeyKind::Rsa { bits } => {
            return Err(KeyError::RsaKeyTooSmall {
                bits,
                min: MIN_RSA_BITS,
            }
            .into());
        }
        KeyKind::Ec(_) => return Err(EncryptionError::RecipientNotRsa.into()),
    }
    let key = PublicEncryptingKey::from_der(public.spki_der())
        .map_err(|e| KeyError::InvalidPublicKey(e.description_()))?;
    let key = OaepPublicEncryptingKey::new(key)
        .map_err(|_| KeyError::InvalidPublicKey("RSA key refused for OAEP"))?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let len = key
        .encrypt(transport.oaep(), content_key, &mut out, None)
        .map_err(|_| EncryptionError::EncryptionFailed)?
        .len();
    out.truncate(len);
    Ok(out)
}
