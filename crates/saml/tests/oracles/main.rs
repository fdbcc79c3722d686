//! latchkey-saml against external oracles: pysaml2 and python3-saml (the venv
//! target/oracle-venv, found through LATCHKEY_PYTHON) and xmlsec1 (Debian package). Needs
//! what `./scripts/test` installs; a missing oracle fails its tests with what to install,
//! never a silent skip.

mod encryption;
mod interop;
mod metadata_encryption;
#[path = "../shared/mod.rs"]
mod shared;
