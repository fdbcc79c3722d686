//! The SCIM protocol parts: schemas, filters and PATCH, each against RFC 7643/7644.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod filter;
mod patch;
mod schema;
