//! SCIM 2.0 in the SP toolkit: [`service::ScimService`] provisions through the JIT engine and
//! `server` (feature `axum`) serves it. The protocol parts that hold no state (schemas,
//! filters, PATCH, listing, errors) live in `latchkey-scim` and are re-exported here, so an
//! application needs one import path.

#[cfg(feature = "axum")]
pub mod server;
pub mod service;

pub use latchkey_scim::*;
