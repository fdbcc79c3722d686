//! The SSO server and admin API against software and servers this crate does not ship: the
//! store cases and the flows that must hold on PostgreSQL (a throwaway cluster), and the
//! Python oracles (python3-saml, openapi-spec-validator). Needs what `./scripts/test`
//! installs; `tests/web.rs` needs nothing but cargo.

// Test code: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../idp/tests/support/mod.rs"]
#[allow(unused_imports)]
mod store_support;
use store_support as support;
store_backend!(postgres);

mod web {
    // The whole harness, of which this binary uses a part.
    #[path = "../../web/support.rs"]
    #[allow(dead_code)]
    pub mod support;

    #[path = "../../web/api.rs"]
    pub mod api;
    #[path = "../../web/app_copies.rs"]
    pub mod app_copies;
    #[path = "../../web/bad_tokens.rs"]
    pub mod bad_tokens;
    #[path = "../../web/bursts.rs"]
    pub mod bursts;
    #[path = "../../web/readiness.rs"]
    pub mod readiness;
    #[path = "../../web/scim.rs"]
    pub mod scim;
    #[path = "../../web/slo_cases.rs"]
    pub mod slo_cases;
    #[path = "../../web/sp_keys.rs"]
    pub mod sp_keys;

    mod postgres;
    mod python;
}
