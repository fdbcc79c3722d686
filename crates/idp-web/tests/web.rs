//! The SSO server in process: every rule and error page of `latchkey serve`, driven through
//! its router with `tower::ServiceExt::oneshot` on a temporary SQLite store. Responses are
//! checked the way an SP checks them, with latchkey-saml's `validate_response`.

// Test code: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../idp/tests/support/mod.rs"]
#[allow(unused_imports)]
mod store_support;

mod web {
    pub mod support;

    mod audit_lines;
    mod encryption;
    mod encryption_methods;
    mod front_door;
    mod login;
    mod portal;
    mod server;
    mod slo;
    mod slo_chain;
    mod sso;
}
