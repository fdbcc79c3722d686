//! The SSO server in process: every rule and error page of `latchkey serve`, driven through
//! its router with `tower::ServiceExt::oneshot` on a temporary SQLite store. Responses are
//! checked the way an SP checks them, with latchkey-saml's `validate_response`. The admin
//! API too. Needs nothing but cargo: what needs PostgreSQL or Python is in `tests/oracles`.

// Test code: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../idp/tests/support/mod.rs"]
#[allow(unused_imports)]
mod store_support;
use store_support as support;
// The store cases (the admin API's) run on SQLite here, on PostgreSQL in tests/oracles.
store_backend!(sqlite);

mod web {
    // Its PostgreSQL builders serve tests/oracles.
    #[allow(dead_code)]
    pub mod support;

    mod account;
    pub mod api;
    mod api_http;
    pub mod app_copies;
    mod audit_lines;
    pub mod bad_tokens;
    pub mod bursts;
    pub mod console;
    mod console_apps;
    mod console_mfa;
    mod console_people;
    mod console_routes;
    mod encryption;
    mod encryption_methods;
    mod front_door;
    mod invite;
    mod login;
    mod mfa_pages;
    mod mfa_sso;
    mod pages;
    mod portal;
    pub mod readiness;
    mod reset;
    pub mod scim;
    mod server;
    mod slo;
    pub mod slo_cases;
    mod slo_chain;
    pub mod sp_keys;
    mod sso;
    pub mod webauthn;
}
