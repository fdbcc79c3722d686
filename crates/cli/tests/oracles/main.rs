//! `latchkey` against external programs: Chromium through chromedriver (`browser`),
//! Shibboleth SP 3 and mod_auth_mellon behind a private Apache (`shibboleth`, `mellon`,
//! sharing `apache`, `sp_idp` and `client`) and pysaml2 through a running server
//! (`serve`). Needs what `./scripts/test` installs (Debian chromium, chromium-driver,
//! apache2, libapache2-mod-shib, shibboleth-sp-utils, libapache2-mod-auth-mellon; the venv target/oracle-venv found
//! through LATCHKEY_PYTHON); a missing one fails its test with what to install.

mod apache;
mod browser;
mod client;
mod mellon;
mod scim_client;
mod serve;
#[path = "../shared/mod.rs"]
mod shared;
mod shibboleth;
mod sp_idp;
