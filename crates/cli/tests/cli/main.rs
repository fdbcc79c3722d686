//! The `latchkey` binary's integration tests, in one binary that needs nothing but cargo
//! (they start `latchkey` itself). The tests against Chromium, Shibboleth and pysaml2 are in
//! `tests/oracles` (`cargo test -p latchkey --test oracles`, after `./scripts/test`).

mod admin;
mod bench_list;
mod keys;
mod readme;
mod saml_cmd;
mod serve;
#[path = "../shared/mod.rs"]
mod shared;
mod sp_plan;
