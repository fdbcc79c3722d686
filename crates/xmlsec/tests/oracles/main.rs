//! latchkey-xmlsec against external oracles: libxml2's C14N through Python lxml, xmlsec1,
//! and pyca/cryptography. Needs what `./scripts/test` installs (the Debian package xmlsec1
//! and the venv target/oracle-venv, found through LATCHKEY_PYTHON); a missing oracle fails
//! its tests with what to install, never a silent skip.

mod c14n_lxml;
mod dsig_interop;
mod xmlenc_interop;
