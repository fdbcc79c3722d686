//! The store test suite, in one binary that needs nothing but cargo: every store case
//! (`storage`) runs here on SQLite; `tests/oracles` runs the same cases on a throwaway
//! PostgreSQL.

// Test code: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
store_backend!(sqlite);

mod storage;

#[path = "store/checkpoints.rs"]
mod checkpoints;
#[path = "store/files.rs"]
mod files;
#[path = "store/mail.rs"]
mod mail;
#[path = "store/metadata_parsing.rs"]
mod metadata_parsing;
#[path = "store/migration_pairs.rs"]
mod migration_pairs;
