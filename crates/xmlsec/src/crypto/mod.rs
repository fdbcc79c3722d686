//! Keys, certificates and the allow-listed signature and digest algorithms, all on
//! aws-lc-rs.
//!
//! Algorithms are closed enums mapped from XML-DSig URIs, so an algorithm we have not
//! reviewed cannot be named, let alone used. SHA-1 and 1024-bit RSA are refused unless
//! the caller opts in through [`LegacyPolicy`], because old IdPs and test vectors still
//! use them but nothing new should.

pub mod algorithm;
pub mod certificate;
pub mod key;

pub use algorithm::{DigestAlgorithm, LegacyPolicy, SignatureAlgorithm};
pub use certificate::Certificate;
pub use key::{Curve, KeyKind, SigningKey, VerifyingKey};

/// Why a key, certificate or raw signature operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not PEM, or a PEM block is damaged.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// The PEM text holds no block with a label we can use here.
    #[error("no usable PEM block (found: {found})")]
    NoUsablePemBlock {
        /// The labels that were present, comma separated.
        found: String,
    },
    /// The private key is not PKCS#8, PKCS#1 RSA or SEC1 EC, or aws-lc-rs rejected it.
    #[error("private key rejected: {0}")]
    InvalidPrivateKey(&'static str),
    /// The public key is not a valid SPKI or PKCS#1 RSA key.
    #[error("public key rejected: {0}")]
    InvalidPublicKey(&'static str),
    /// The certificate is not valid X.509 DER.
    #[error("certificate rejected: {0}")]
    InvalidCertificate(String),
    /// A key type other than RSA or ECDSA on P-256/P-384/P-521.
    #[error("unsupported key type")]
    UnsupportedKeyType,
    /// An RSA key shorter than the policy allows: 2048 bits always for signing, and for
    /// verifying unless [`LegacyPolicy::allow_rsa_1024`] is set (1024 is then the floor).
    #[error("RSA key of {bits} bits is below the minimum of {min}")]
    RsaKeyTooSmall {
        /// Size of the key.
        bits: u32,
        /// Minimum in force.
        min: u32,
    },
    /// The signature algorithm does not fit the key (RSA vs ECDSA, or the wrong curve
    /// for the hash: we pair P-256/SHA-256, P-384/SHA-384, P-521/SHA-512 only).
    #[error("algorithm {algorithm:?} cannot be used with a {key:?} key")]
    AlgorithmKeyMismatch {
        /// The algorithm asked for.
        algorithm: SignatureAlgorithm,
        /// The key's type.
        key: KeyKind,
    },
    /// The algorithm is accepted for verification only (RSA-SHA1, ECDSA on P-521).
    #[error("{0:?} is accepted for verification only")]
    VerifyOnly(SignatureAlgorithm),
    /// SHA-1 was needed but [`LegacyPolicy::allow_sha1`] is not set.
    #[error("SHA-1 is refused unless explicitly allowed")]
    Sha1NotAllowed,
    /// The certificate to publish with a signature is not the signing key's.
    #[error("the certificate does not belong to the signing key")]
    CertificateMismatch,
    /// aws-lc-rs failed to produce a signature.
    #[error("signing failed")]
    SigningFailed,
    /// The signature does not verify with this key.
    #[error("signature does not verify")]
    BadSignature,
}
