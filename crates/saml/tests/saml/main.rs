//! latchkey-saml integration tests, in one binary (one link step instead of five).
//! Each module opens with what it covers.

mod encrypted;
mod flow;
mod interop;
mod metadata;
mod metadata_encryption;
mod profile;
mod real_world;
mod robustness;
