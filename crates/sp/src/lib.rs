//! Latchkey SP toolkit: everything a Rust web application needs to accept SAML logins.
//!
//! - [`settings`]: the SP's TOML settings; [`idp`]: what we trust about the IdP (from its
//!   metadata, refreshed by [`fetch`] when it comes from a URL); [`health`]: whether that
//!   metadata still lets anyone log in (`ServiceProvider::metadata_status`, for `/readyz`).
//! - [`provider::ServiceProvider`]: our metadata, login start (AuthnRequest over
//!   HTTP-Redirect, the outstanding request kept server-side under the RelayState), and the
//!   first ACS step.
//! - [`binding`]: each SP-initiated login bound to the browser that started it (a cookie; no
//!   login CSRF).
//! - [`acs`]: the ACS as states, `VerifiedResponse` -> `AcceptedAssertion` -> provisioning,
//!   and [`acs::run`], which chains them and audits every refusal.
//! - [`logout`]: single logout over the front channel, SP- and IdP-initiated;
//!   [`logout::start`], [`logout::receive`] and [`logout::answer`] also audit each step.
//! - [`replay`]: the assertion replay cache; [`jit`] and [`store`]: just-in-time provisioning
//!   of local accounts under a per-application contract.
//! - [`scim`]: SCIM 2.0. Its protocol parts (schemas, filters, PATCH, listing, errors) hold
//!   no state; [`scim::service::ScimService`] provisions through the JIT engine, and
//!   `scim::server` (feature `axum`) serves it.
//! - `axum` (feature): small helpers for axum handlers.
//!
//! # Using it
//! ```text
//! let config = SpConfig::load(path)?;                        // settings::SpConfig
//! let idp = fetch::load_idp(&config, now).await?;            // or idp::load_from_file
//! let sp = ServiceProvider::new(&config, config.load_key()?, idp)?;
//! fetch::spawn_refresh(sp.clone(), config.clone());          // follow IdP key rollovers
//! let engine = JitEngine::new(contract, SqlAccountStore::new(db.clone()));
//! let replay = SqlReplayCache::new(db);
//!
//! GET  /saml/metadata -> sp.metadata_xml()
//! let browser = BrowserBinding::from_headers(&headers);      // the request's cookies
//! GET  /login         -> web::login_response(&sp, Some(client_ip), &headers, return_to, now)
//!                        (or start_login_from(Some(client_ip), &browser, return_to, now): redirect
//!                        to .url with the Set-Cookie .set_cookie)
//! POST /saml/acs      -> acs::run(&sp, &form, &browser, &replay, &engine, now).await
//! /scim/v2/...        -> scim::server::router(ScimService::new(engine, &settings, ...)?
//!                            .on_deactivate(hook ending the account's sessions), now)
//!                        Ok(SignedIn { login, provisioned, return_to }): start a session
//!                        Err(AcsFailure { error, operation_id }): page with error.code()
//! ```
#![forbid(unsafe_code)]

pub mod acs;
pub mod binding;
pub mod error;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod health;
pub mod idp;
mod ids;
pub mod jit;
pub mod login;
pub mod logout;
pub mod network;
pub mod provider;
pub mod refusals;
pub mod replay;
pub mod scim;
pub mod settings;
pub mod store;
#[cfg(feature = "axum")]
pub mod web;

/// The SAML and XML-security crates this API exposes types of, for applications that need
/// them without depending on the exact versions themselves.
pub use {latchkey_saml, latchkey_xmlsec};

pub use error::{
    BrowserMismatch, Code, ContractError, Error, LogoutError, MetadataError, ReplayError,
    SetFieldError, SettingsError, StoreError, ToolkitCode,
};
pub use provider::{AcsForm, ServiceProvider};
