//! Fixtures shared by the two test binaries (`tests/saml` and `tests/oracles`), so neither
//! copies them; no tests here. Each binary uses only some of them.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::panic)]

pub mod encryption_keys;
pub mod metadata_encryption;
