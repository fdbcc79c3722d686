//! Hardened XML reading, exclusive canonicalization, XML-DSig and XML-Enc, in pure Rust.
//!
//! This crate knows nothing of SAML. Its layers, each built on the one before:
//! [`reader`] (the only way in) -> `c14n` -> `dsig` (sign, and verify into a `Verified`
//! handle) -> `xmlenc`.
#![forbid(unsafe_code)]

// Lets `reader/differential.rs` name this crate as the fuzz target that includes it does.
#[cfg(test)]
extern crate self as latchkey_xmlsec;

mod b64;
pub mod c14n;
pub mod crypto;
pub mod dsig;
pub mod error;
pub mod fuzzing;
pub mod reader;
mod scan;
pub mod tree;
pub mod xmlenc;

pub use error::Error;
