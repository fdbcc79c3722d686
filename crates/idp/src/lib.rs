#![forbid(unsafe_code)]
//! The Latchkey identity provider: store, directory, applications and audit log.
//!
//! Start with [`Store::open`]; everything else hangs off the [`Store`] handle:
//! [`Store::users`], [`Store::groups`], [`Store::apps`], [`Store::audit`].

pub mod api;
pub mod apps;
pub mod audit;
pub mod catalog;
pub mod config;
pub mod directory;
pub mod error;
pub mod export;
pub mod ids;
pub mod keys;
pub mod password;
pub mod session;
pub mod sso;
pub mod store;
pub mod web;

pub use audit::Actor;
pub use config::Config;
pub use error::{Class, Error, ErrorCode, PageCode, Result};
pub use store::Store;
