//! The store test suite: every case runs against SQLite and against a throwaway PostgreSQL.
//! All integration tests of the crate live in this one binary (one link step).

// Test code: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod storage;
