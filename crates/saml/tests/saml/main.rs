//! latchkey-saml integration tests, in one binary that needs nothing but cargo. The checks
//! against pysaml2, python3-saml and xmlsec1 are in `tests/oracles` (`cargo test -p
//! latchkey-saml --test oracles`, after `./scripts/test`). Each module opens with what it
//! covers.

mod encrypted;
mod encryption;
mod flow;
mod fuzz_corpus;
mod metadata;
mod metadata_encryption;
mod profile;
mod real_world;
mod robustness;
#[path = "../shared/mod.rs"]
mod shared;
