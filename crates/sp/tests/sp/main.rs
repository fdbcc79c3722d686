//! Integration tests for latchkey-sp, compiled into one binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod contract;
mod database;
mod decryption;
mod engine;
mod logout;
mod plan_json;
mod race;
mod replay;
mod rollover;
mod support;
mod toolkit;
