//! Hardened XML reading, exclusive canonicalization, XML-DSig and XML-Enc, in pure Rust.
//!
//! This crate knows nothing of SAML. Its layers, each built on the one before:
//! [`reader`] (the only way in) -> `c14n` -> `dsig` (sign, and verify into a `Verified`
//! handle) -> `xmlenc`.
#![forbid(unsafe_code)]

pub mod c14n;
pub mod crypto;
pub mod dsig;
pub mod error;
pub mod fuzzing;
pub mod reader;
pub mod xmlenc;

pub use error::Error;
pub use roxmltree;
