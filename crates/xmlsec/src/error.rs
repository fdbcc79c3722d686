//! The crate's one error type. Each part of the crate has its own sub-enum, so a caller
//! can match on the family (`Error::Read(_)`) or on the exact rule that failed.

pub use crate::reader::ReadError;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hardened reader refused the document.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The document (or subset) cannot be canonicalized.
    #[error(transparent)]
    C14n(#[from] crate::c14n::C14nError),
    /// A key, certificate or raw signature operation was refused.
    #[error(transparent)]
    Key(#[from] crate::crypto::KeyError),
    /// An XML signature was refused, naming the rule it broke.
    #[error(transparent)]
    Signature(#[from] crate::dsig::SignatureError),
    /// An element could not be encrypted, or an EncryptedData was refused or could not
    /// be decrypted.
    #[error(transparent)]
    Encryption(#[from] crate::xmlenc::EncryptionError),
    /// Placeholder while a part of the crate is being written.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}
