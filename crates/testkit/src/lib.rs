//! Test-only support shared by several crates' test suites, so each harness is written once.
//! [`oracle`] finds the external programs the `oracles` test targets need; [`pg`] (feature
//! `pg`) runs a throwaway PostgreSQL cluster; [`smtp`] is a mail sink on loopback; [`migrations`]
//! reads migration pairs for the tests that hold them to saying the same.
//! Never a dependency of product code (only `[dev-dependencies]` name it).
#![forbid(unsafe_code)]
// Test support: a broken environment should stop the test run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod migrations;
pub mod oracle;
#[cfg(feature = "pg")]
pub mod pg;
pub mod smtp;
