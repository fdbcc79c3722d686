#![forbid(unsafe_code)]
//! The Latchkey identity provider's domain: store, directory, applications, keys, sessions,
//! audit log and the SSO decisions. Nothing here speaks HTTP: `latchkey-idp-web` turns it
//! into pages, SAML endpoints and the admin API.
//!
//! Start with [`Store::open`]; everything else hangs off the [`Store`] handle:
//! [`Store::users`], [`Store::groups`], [`Store::apps`], [`Store::audit`].
//!
//! Every time the IdP stores or checks (sessions, throttling, tokens, assertions, audit
//! lines) comes from the store's [`Clock`]: the wall clock unless [`Store::with_clock`] gave
//! it another, such as a test's [`ManualClock`] (see [`clock`]).

pub mod account;
pub mod apps;
pub mod audit;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod console;
pub mod directory;
pub mod enrollment;
pub mod error;
pub mod export;
pub(crate) mod fingerprint;
pub mod ids;
pub mod keys;
pub mod mail;
pub mod mfa;
pub mod password;
pub mod provisioning;
pub mod scim;
pub mod session;
pub mod sso;
pub mod store;
pub mod tokens;
pub mod webauthn;

pub use audit::Actor;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use error::{Class, Error, ErrorCode, PageCode, Result};
pub use store::Store;
