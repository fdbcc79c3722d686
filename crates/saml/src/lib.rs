//! SAML 2.0 for Latchkey: messages, bindings, metadata and the Web Browser SSO profile.
//!
//! The crate is pure: no network, no storage, no clock (every check that needs the time
//! takes `now`). XML comes in only through [`latchkey_xmlsec::reader`], and an
//! assertion's content is only ever read from an element whose signature was verified.
//!
//! Where things are:
//! * messages: [`authn_request`], [`response`] (envelope and building), [`assertion`]
//!   (model and building; reading is private), [`logout`], [`status`];
//! * [`binding`]: HTTP-Redirect (DEFLATE, detached query signature) and HTTP-POST
//!   (base64, the auto-submitting page and its CSP hash);
//! * [`metadata`]: our EntityDescriptor out, a peer's (or a federation's) in;
//! * [`profile`]: the rules. [`profile::validate_response`] for an SP,
//!   [`profile::idp`] for an IdP (accepting requests, building responses),
//!   [`profile::logout`] for single logout;
//! * small pieces: [`ids`] (unguessable NCName IDs), [`time`] (`xs:dateTime`,
//!   `xs:duration`), [`ns`] (namespace URIs), [`error`] (with [`Code`], the stable codes, and
//!   [`stable_codes!`], the macro every code enum of Latchkey is declared with).
#![forbid(unsafe_code)]

pub mod assertion;
pub mod authn_context;
pub mod authn_request;
pub mod binding;
pub mod encryption;
pub mod error;
pub mod fuzzing;
pub mod ids;
pub mod inbound;
pub mod logout;
pub mod metadata;
pub mod ns;
pub mod profile;
pub mod response;
pub mod status;
pub mod time;

mod code;
mod header;
mod read;
mod xml_writer;

pub use error::{Code, Error, Result};
