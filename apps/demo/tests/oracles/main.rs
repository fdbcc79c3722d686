//! The demo apps against pysaml2 as the IdP: needs the venv `./scripts/test` makes
//! (target/oracle-venv, found through LATCHKEY_PYTHON); without it the test fails saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns
// Built from `tests/demo`, which uses more of them.
#![allow(dead_code)]

mod interop;
mod scim2_tester;
#[path = "../demo/support.rs"]
mod support;
