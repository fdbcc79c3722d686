//! The store cases (`tests/storage`) on PostgreSQL, and what only PostgreSQL does: a
//! throwaway cluster started from the Debian `postgresql` binaries (latchkey-testkit's `pg`;
//! `./scripts/test` installs them, or set LATCHKEY_PG_BIN). Without them these tests fail
//! saying so. Also pyotp (`pyotp.rs`), from the oracle Python.

// Test code: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Built from `tests/store.rs`'s modules, which use more of them.
#![allow(dead_code)]

#[path = "../support/mod.rs"]
mod support;
store_backend!(postgres);

#[path = "../storage/mod.rs"]
mod storage;

mod connections;
mod front_door;
mod pyotp;
