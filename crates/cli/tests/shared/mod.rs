//! Helpers shared by the two test binaries (`tests/cli` and `tests/oracles`); no tests here.
//! Each binary uses only some of them.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod serve;
