//! The crate's one error type. Each part of the crate has its own sub-enum, so a caller
//! can match on the family (`Error::Read(_)`) or on the exact rule that failed.

pub use crate::reader::ReadError;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hardened reader refused the document.
    #[error(transparent)]
    Read(ReadError),
    /// The document (or subset) cannot be canonicalized.
    #[error(transparent)]
    C14n(crate::c14n::C14nError),
    /// A key, certificate or raw signature operation was refused.
    #[error(transparent)]
    Key(crate::crypto::KeyError),
    /// An XML signature was refused, naming the rule it broke.
    #[error(transparent)]
    Signature(crate::dsig::SignatureError),
    /// An element could not be encrypted, or an EncryptedData was refused or could not
    /// be decrypted.
    #[error(transparent)]
    Encryption(crate::xmlenc::EncryptionError),
    /// Placeholder while a part of the crate is being written.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

// The conversions `?` makes from each part's error are written out rather than derived
// (`#[from]`), to mark them `#[cold]`: a block that calls a cold function is laid out
// away from the checks, so the error paths of a verification's many `?`s no longer sit
// between the instructions of one that passes (BENCHMARKS.md, "validation's code
// footprint").
macro_rules! cold_from {
    ($($variant:ident($source:ty)),* $(,)?) => {$(
        impl From<$source> for Error {
            #[cold]
            #[inline(never)]
            fn from(source: $source) -> Self {
                Error::$variant(source)
            }
        }
    )*};
}

cold_from!(
    Read(ReadError),
    C14n(crate::c14n::C14nError),
    Key(crate::crypto::KeyError),
    Signature(crate::dsig::SignatureError),
    Encryption(crate::xmlenc::EncryptionError),
);
