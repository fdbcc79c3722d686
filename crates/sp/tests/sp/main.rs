//! Integration tests for latchkey-sp, compiled into one binary that needs nothing but cargo:
//! the store cases (`backends`) run here on SQLite; `tests/oracles` runs the same cases on a
//! throwaway PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

/// The SQLite variant of an `on_both_backends!` case.
#[macro_export]
macro_rules! backend_variant {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn sqlite() {
            super::$name($crate::support::Db::Sqlite).await;
        }
    };
}

mod backends;
mod contract;
mod database;
mod decryption;
mod logout;
mod migration_pairs;
mod plan_json;
mod replay;
mod rollover;
mod support;
mod toolkit;
