//! Integration tests for the demo apps, compiled into one binary: in-process router tests
//! (tower::ServiceExt::oneshot, no socket) with Responses signed in-test by a test IdP key.
//! Needs nothing but cargo; the pysaml2 interop test is in `tests/oracles`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod failures;
mod helpdesk;
mod proxy;
mod scim;
mod slo;
mod socket;
mod support;
mod wiki;
