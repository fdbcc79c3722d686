//! Integration tests for the demo apps, compiled into one binary: in-process router tests
//! (tower::ServiceExt::oneshot, no socket) with Responses signed in-test by a test IdP key,
//! and the pysaml2 interop test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod failures;
mod helpdesk;
mod interop;
mod slo;
mod socket;
mod support;
mod wiki;
