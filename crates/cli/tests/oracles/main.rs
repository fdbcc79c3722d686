//! `latchkey` against external programs: Chromium through chromedriver (`browser`),
//! Shibboleth SP 3 behind Apache (`shibboleth`) and pysaml2 through a running server
//! (`serve`). Needs what `./scripts/test` installs (Debian chromium, chromium-driver,
//! apache2, libapache2-mod-shib, shibboleth-sp-utils; the venv target/oracle-venv found
//! through LATCHKEY_PYTHON); a missing one fails its test with what to install.

mod browser;
mod serve;
#[path = "../shared/mod.rs"]
mod shared;
mod shibboleth;
