//! Signing keys (private) and verifying keys (public).
//!
//! A verifying key is kept as its SubjectPublicKeyInfo DER, whatever it was loaded from,
//! so there is one representation to compare and hand to aws-lc-rs.
//!
//! # Security
//! `SigningKey`'s `Debug` prints only the key type and size. The DER of a private key is
//! zeroized as soon as aws-lc-rs has parsed it; aws-lc-rs clears its own copy on drop.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;
use zeroize::Zeroizing;

use super::KeyError;
use super::algorithm::{LegacyPolicy, SignatureAlgorithm};
use super::certificate::Certificate;

/// Smallest RSA modulus we sign with, and verify with by default.
pub const MIN_RSA_BITS: u32 = 2048;
/// Smallest RSA modulus verified under [`LegacyPolicy::allow_rsa_1024`].
pub const MIN_LEGACY_RSA_BITS: u32 = 1024;
/// Largest RSA modulus aws-lc-rs verifies.
const MAX_RSA_BITS: u32 = 8192;

/// A named elliptic curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1): verification only.
    P521,
}

/// What kind of key, for errors, logs and algorithm selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA with a modulus of this many bits.
    Rsa {
        /// Modulus size.
        bits: u32,
    },
    /// ECDSA on this curve.
    Ec(Curve),
}

impl KeyKind {
    /// The algorithm a key of this kind signs with unless told otherwise.
    pub fn default_algorithm(self) -> SignatureAlgorithm {
        match self {
            KeyKind::Rsa { .. } => SignatureAlgorithm::RsaSha256,
            KeyKind::Ec(Curve::P256) => SignatureAlgorithm::EcdsaSha256,
            KeyKind::Ec(Curve::P384) => SignatureAlgorithm::EcdsaSha384,
            KeyKind::Ec(Curve::P521) => SignatureAlgorithm::EcdsaSha512,
        }
    }

    /// Whether `algorithm` can be used with a key of this kind. ECDSA is tied to one hash
    /// per curve, as the XML-DSig 1.1 interop vectors do.
    pub fn fits(self, algorithm: SignatureAlgorithm) -> bool {
        use SignatureAlgorithm as A;
        match self {
            KeyKind::Rsa { .. } => {
                matches!(
                    algorithm,
                    A::RsaSha1 | A::RsaSha256 | A::RsaSha384 | A::RsaSha512
                )
            }
            KeyKind::Ec(Curve::P256) => algorithm == A::EcdsaSha256,
            KeyKind::Ec(Curve::P384) => algorithm == A::EcdsaSha384,
            KeyKind::Ec(Curve::P521) => algorithm == A::EcdsaSha512,
        }
    }
}

/// A private key that signs: RSA of at least 2048 bits, or ECDSA on P-256 or P-384.
pub struct SigningKey {
    inner: SigningInner,
    public: VerifyingKey,
}

enum SigningInner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kind", &self.public.kind)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads the first private key block of a PEM file: `PRIVATE KEY` (PKCS#8),
    /// `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1). Other blocks (such as
    /// OpenSSL's `EC PARAMETERS` or a certificate in the same file) are skipped.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(text).map_err(|e| KeyError::Pem(e.to_string()))?;
        let mut labels = Vec::new();
        for block in blocks {
            match block.tag() {
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
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

    /// Reads a DER private key in any of PKCS#8, PKCS#1 RSA or SEC1 EC.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(pair) = RsaKeyPair::from_pkcs8(der).or_else(|_| RsaKeyPair::from_der(der)) {
            return Self::from_rsa(pair);
        }
        for (alg, curve) in [
            (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, Curve::P256),
            (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, Curve::P384),
        ] {
            if let Ok(pair) = EcdsaKeyPair::from_private_key_der(alg, der) {
                let spki = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| KeyError::InvalidPrivateKey("cannot encode public key"))?;
                let public = VerifyingKey::from_spki_der(spki.as_ref())?;
                debug_assert_eq!(public.kind, KeyKind::Ec(curve));
                return Ok(Self {
                    inner: SigningInner::Ec(pair),
                    public,
                });
            }
        }
        Err(rsa_rejection(der))
    }

    fn from_rsa(pair: RsaKeyPair) -> Result<Self, KeyError> {
        let bits = u32::try_from(pair.public_modulus_len().saturating_mul(8)).unwrap_or(0);
        if bits < MIN_RSA_BITS {
            return Err(KeyError::RsaKeyTooSmall {
                bits,
                min: MIN_RSA_BITS,
            });
        }
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::InvalidPrivateKey("cannot encode public key"))?;
        let public = VerifyingKey::from_spki_der(spki.as_ref())?;
        Ok(Self {
            inner: SigningInner::Rsa(pair),
            public,
        })
    }

    /// The key's type and size.
    pub fn kind(&self) -> KeyKind {
        self.public.kind
    }

    /// RSA-SHA256 for RSA, ECDSA with the curve's hash for EC.
    pub fn default_algorithm(&self) -> SignatureAlgorithm {
        self.public.kind.default_algorithm()
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Signs `message` (XML-DSig encoding: PKCS#1 v1.5 for RSA, raw `r || s` for ECDSA).
    pub fn sign(&self, algorithm: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        if !algorithm.can_sign() {
            return Err(KeyError::VerifyOnly(algorithm));
        }
        if !self.public.kind.fits(algorithm) {
            return Err(KeyError::AlgorithmKeyMismatch {
                algorithm,
                key: self.public.kind,
            });
        }
        let rng = SystemRandom::new();
        match &self.inner {
            SigningInner::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match algorithm {
                    SignatureAlgorithm::RsaSha384 => &signature::RSA_PKCS1_SHA384,
                    SignatureAlgorithm::RsaSha512 => &signature::RSA_PKCS1_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut out)
                    .map_err(|_| KeyError::SigningFailed)?;
                Ok(out)
            }
            SigningInner::Ec(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::SigningFailed),
        }
    }
}

/// Explains why no parser took the key, naming a too-small RSA key precisely (aws-lc-rs
/// only says "TooSmall", so the modulus is read from the DER to report its size).
fn rsa_rejection(der: &[u8]) -> KeyError {
    let too_small = [
        RsaKeyPair::from_pkcs8(der).err(),
        RsaKeyPair::from_der(der).err(),
    ]
    .into_iter()
    .flatten()
    .any(|e| e.description_() == "TooSmall");
    match rsa_private_modulus_bits(der) {
        Some(bits) if too_small || bits < MIN_RSA_BITS => KeyError::RsaKeyTooSmall {
            bits,
            min: MIN_RSA_BITS,
        },
        _ => KeyError::InvalidPrivateKey(
            "not a PKCS#8, PKCS#1 RSA (>= 2048 bits) or SEC1 P-256/P-384 key",
        ),
    }
}

/// Modulus size of a PKCS#8 or PKCS#1 RSA private key, from its DER structure only.
fn rsa_private_modulus_bits(der: &[u8]) -> Option<u32> {
    use x509_parser::der_parser::parse_der;
    let (_, outer) = parse_der(der).ok()?;
    let items = outer.as_sequence().ok()?;
    // PKCS#8: [version, AlgorithmIdentifier, OCTET STRING RSAPrivateKey].
    // PKCS#1 RSAPrivateKey: [version, n, e, d, ...].
    let is_pkcs8 = items.get(1).is_some_and(|a| a.as_sequence().is_ok());
    let inner;
    let key_items = if is_pkcs8 {
        let algorithm = items.get(1)?.as_sequence().ok()?.first()?.as_oid().ok()?;
        if *algorithm != OID_PKCS1_RSAENCRYPTION {
            return None;
        }
        inner = parse_der(items.get(2)?.as_slice().ok()?).ok()?.1;
        inner.as_sequence().ok()?
    } else {
        items
    };
    // RSAPrivateKey has nine fields; anything shorter (a SEC1 EC key) is not RSA.
    if key_items.len() < 9 {
        return None;
    }
    Some(bit_length(key_items.get(1)?.as_slice().ok()?))
}

/// A public key trusted to verify signatures.
///
/// It keeps the key parsed for its usual algorithm (RSA with SHA-256, ECDSA on its own curve),
/// so the common verification does not decode the DER and rebuild the RSA Montgomery context
/// each time; any other algorithm parses the key afresh. Equality and hashing look only at the
/// key itself.
#[derive(Clone)]
pub struct VerifyingKey {
    spki: Vec<u8>,
    kind: KeyKind,
    parsed: Arc<signature::ParsedPublicKey>,
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki && self.kind == other.kind
    }
}

impl Eq for VerifyingKey {}

impl std::hash::Hash for VerifyingKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.spki.hash(state);
        self.kind.hash(state);
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Reads the first usable block of a PEM file: `CERTIFICATE` (the certificate's key;
    /// the certificate itself is not validated, since trust comes from configuration),
    /// `PUBLIC KEY` (SPKI) or `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(text).map_err(|e| KeyError::Pem(e.to_string()))?;
        let mut labels = Vec::new();
        for block in blocks {
            match block.tag() {
                "CERTIFICATE" => {
                    return Ok(Certificate::from_der(block.contents())?
                        .verifying_key()
                        .clone());
                }
                "PUBLIC KEY" => return Self::from_spki_der(block.contents()),
                "RSA PUBLIC KEY" => return Self::from_pkcs1_der(block.contents()),
                other => labels.push(other.to_owned()),
            }
        }
        Err(KeyError::NoUsablePemBlock {
            found: labels.join(", "),
        })
    }

    /// Reads a DER SubjectPublicKeyInfo (RSA or EC on P-256/P-384/P-521).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|_| KeyError::InvalidPublicKey("not a DER SubjectPublicKeyInfo"))?;
        if !rest.is_empty() {
            return Err(KeyError::InvalidPublicKey("trailing bytes after the key"));
        }
        let oid = &spki.algorithm.algorithm;
        let kind = if *oid == OID_PKCS1_RSAENCRYPTION {
            let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err(KeyError::InvalidPublicKey("bad RSA public key"));
            };
            let bits = bit_length(rsa.modulus);
            if bits < MIN_LEGACY_RSA_BITS {
                return Err(KeyError::RsaKeyTooSmall {
                    bits,
                    min: MIN_LEGACY_RSA_BITS,
                });
            }
            if bits > MAX_RSA_BITS {
                return Err(KeyError::InvalidPublicKey("RSA key over 8192 bits"));
            }
            KeyKind::Rsa { bits }
        } else if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .ok_or(KeyError::InvalidPublicKey("EC key without a named curve"))?;
            if curve == OID_EC_P256 {
                KeyKind::Ec(Curve::P256)
            } else if curve == OID_NIST_EC_P384 {
                KeyKind::Ec(Curve::P384)
            } else if curve == OID_NIST_EC_P521 {
                KeyKind::Ec(Curve::P521)
            } else {
                return Err(KeyError::UnsupportedKeyType);
            }
        } else {
            return Err(KeyError::UnsupportedKeyType);
        };
        // Parsing for the usual algorithm is also the check that aws-lc takes the key.
        let usual = kind.default_algorithm();
        let parsed = signature::ParsedPublicKey::new(Self::params(kind, usual), der)
            .map_err(|e| KeyError::InvalidPublicKey(e.description_()))?;
        Ok(Self {
            spki: der.to_vec(),
            kind,
            parsed: Arc::new(parsed),
        })
    }

    /// Reads a DER PKCS#1 `RSAPublicKey` (the body of an `RSA PUBLIC KEY` PEM block).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|e| KeyError::InvalidPublicKey(e.description_()))?;
        let spki = key
            .as_der()
            .map_err(|_| KeyError::InvalidPublicKey("cannot encode RSA key"))?;
        Self::from_spki_der(spki.as_ref())
    }

    /// The key's type and size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key as DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Verifies an XML-DSig signature value (PKCS#1 v1.5 for RSA, raw `r || s` for
    /// ECDSA) over `message`.
    pub fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
        signature_value: &[u8],
        policy: LegacyPolicy,
    ) -> Result<(), KeyError> {
        use SignatureAlgorithm as A;
        if algorithm.uses_sha1() && !policy.allow_sha1 {
            return Err(KeyError::Sha1NotAllowed);
        }
        if !self.kind.fits(algorithm) {
            return Err(KeyError::AlgorithmKeyMismatch {
                algorithm,
                key: self.kind,
            });
        }
        if let KeyKind::Rsa { bits } = self.kind {
            let min = if policy.allow_rsa_1024 {
                MIN_LEGACY_RSA_BITS
            } else {
                MIN_RSA_BITS
            };
            let legacy_size = bits < MIN_RSA_BITS;
            if bits < min || (legacy_size && algorithm == A::RsaSha384) {
                return Err(KeyError::RsaKeyTooSmall {
                    bits,
                    min: if legacy_size { MIN_RSA_BITS } else { min },
                });
            }
        }
        let params = Self::params(self.kind, algorithm);
        if std::ptr::addr_eq(params, self.parsed.algorithm()) {
            return self
                .parsed
                .verify_sig(message, signature_value)
                .map_err(|_| KeyError::BadSignature);
        }
        UnparsedPublicKey::new(params, &self.spki)
            .verify(message, signature_value)
            .map_err(|_| KeyError::BadSignature)
    }

    /// The aws-lc verification parameters for `algorithm` with a key of `kind` (which
    /// `kind.fits(algorithm)` has admitted): RSA keys under 2048 bits get the legacy
    /// parameters, which only a policy that allows them reaches.
    fn params(
        kind: KeyKind,
        algorithm: SignatureAlgorithm,
    ) -> &'static dyn signature::VerificationAlgorithm {
        use SignatureAlgorithm as A;
        match kind {
            KeyKind::Rsa { bits } => match (algorithm, bits < MIN_RSA_BITS) {
                (A::RsaSha1, true) => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
                (A::RsaSha1, false) => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                (A::RsaSha256, true) => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                (A::RsaSha512, true) => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
                (A::RsaSha384, _) => &signature::RSA_PKCS1_2048_8192_SHA384,
                (A::RsaSha512, false) => &signature::RSA_PKCS1_2048_8192_SHA512,
                _ => &signature::RSA_PKCS1_2048_8192_SHA256,
            },
            KeyKind::Ec(Curve::P256) => &signature::ECDSA_P256_SHA256_FIXED,
            KeyKind::Ec(Curve::P384) => &signature::ECDSA_P384_SHA384_FIXED,
            KeyKind::Ec(Curve::P521) => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }
}

/// Bit length of a big-endian unsigned integer (leading zero bytes ignored).
fn bit_length(be: &[u8]) -> u32 {
    let Some(start) = be.iter().position(|b| *b != 0) else {
        return 0;
    };
    let significant = be.get(start..).unwrap_or_default();
    let top_bits = significant.first().map_or(0, |b| 8 - b.leading_zeros());
    let rest = u32::try_from(significant.len().saturating_sub(1)).unwrap_or(u32::MAX / 16);
    rest.saturating_mul(8).saturating_add(top_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_pkcs8(bits: aws_lc_rs::rsa::KeySize) -> Vec<u8> {
        let pair = RsaKeyPair::generate(bits).unwrap();
        pair.as_der().unwrap().as_ref().to_vec()
    }

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[]), 0);
    }

    #[test]
    fn rsa_sign_verify_every_hash_and_debug_hides_secret() {
        let der = rsa_pkcs8(aws_lc_rs::rsa::KeySize::Rsa2048);
        let key = SigningKey::from_der(&der).unwrap();
        assert_eq!(key.kind(), KeyKind::Rsa { bits: 2048 });
        assert_eq!(key.default_algorithm(), SignatureAlgorithm::RsaSha256);
        for alg in [
            SignatureAlgorithm::RsaSha256,
            SignatureAlgorithm::RsaSha384,
            SignatureAlgorithm::RsaSha512,
        ] {
            let sig = key.sign(alg, b"msg").unwrap();
            let vk = key.verifying_key();
            vk.verify(alg, b"msg", &sig, LegacyPolicy::default())
                .unwrap();
            assert_eq!(
                vk.verify(alg, b"msG", &sig, LegacyPolicy::default()),
                Err(KeyError::BadSignature)
            );
        }
        let debug = format!("{key:?}");
        assert!(debug.contains("Rsa"), "{debug}");
        assert!(
            debug.len() < 100,
            "Debug must not dump key material: {debug}"
        );
        assert_eq!(
            key.sign(SignatureAlgorithm::RsaSha1, b"m"),
            Err(KeyError::VerifyOnly(SignatureAlgorithm::RsaSha1))
        );
        assert!(matches!(
            key.sign(SignatureAlgorithm::EcdsaSha256, b"m"),
            Err(KeyError::AlgorithmKeyMismatch { .. })
        ));
    }

    #[test]
    fn ec_keys_sign_with_their_curve_hash_in_fixed_encoding() {
        for (alg, curve, len) in [
            (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, Curve::P256, 64),
            (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, Curve::P384, 96),
        ] {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            let key = SigningKey::from_der(pkcs8.as_ref()).unwrap();
            assert_eq!(key.kind(), KeyKind::Ec(curve));
            let sig = key.sign(key.default_algorithm(), b"hello").unwrap();
            assert_eq!(sig.len(), len, "raw r||s, not DER");
            key.verifying_key()
                .verify(
                    key.default_algorithm(),
                    b"hello",
                    &sig,
                    LegacyPolicy::default(),
                )
                .unwrap();
            let reloaded = VerifyingKey::from_spki_der(key.verifying_key().spki_der()).unwrap();
            assert_eq!(&reloaded, key.verifying_key());
        }
    }

    #[test]
    fn pem_reading_picks_the_key_block_and_rejects_garbage() {
        let der = rsa_pkcs8(aws_lc_rs::rsa::KeySize::Rsa2048);
        let text = format!(
            "{}{}",
            pem::encode(&pem::Pem::new("EC PARAMETERS", vec![6, 1, 0])),
            pem::encode(&pem::Pem::new("PRIVATE KEY", der))
        );
        assert!(SigningKey::from_pem(&text).is_ok());
        assert!(matches!(
            SigningKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(KeyError::NoUsablePemBlock { .. })
        ));
        assert!(SigningKey::from_der(b"\x30\x03\x02\x01\x00").is_err());
        assert!(VerifyingKey::from_spki_der(b"\x30\x00").is_err());
        assert!(VerifyingKey::from_pem("not pem").is_err());
    }

    #[test]
    fn sha1_and_short_rsa_need_explicit_opt_in() {
        let der = rsa_pkcs8(aws_lc_rs::rsa::KeySize::Rsa2048);
        let key = SigningKey::from_der(&der).unwrap();
        let vk = key.verifying_key();
        assert_eq!(
            vk.verify(
                SignatureAlgorithm::RsaSha1,
                b"m",
                b"s",
                LegacyPolicy::default()
            ),
            Err(KeyError::Sha1NotAllowed)
        );
        let short = VerifyingKey {
            kind: KeyKind::Rsa { bits: 1024 },
            ..vk.clone()
        };
        assert!(matches!(
            short.verify(
                SignatureAlgorithm::RsaSha256,
                b"m",
                b"s",
                LegacyPolicy::default()
            ),
            Err(KeyError::RsaKeyTooSmall {
                bits: 1024,
                min: 2048
            })
        ));
    }
}
