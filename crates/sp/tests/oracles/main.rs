//! latchkey-sp's store cases (`tests/sp/backends`) on PostgreSQL: a throwaway cluster started
//! from the Debian `postgresql` binaries (latchkey-testkit's `pg`; `./scripts/test` installs
//! them, or set LATCHKEY_PG_BIN). Without them these tests fail saying so. Also a SQLite file
//! opened for one process alone, seen from another (Python's `sqlite3`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns
// Built from `tests/sp`, which uses more of them.
#![allow(dead_code)]

/// The PostgreSQL variant of an `on_both_backends!` case.
#[macro_export]
macro_rules! backend_variant {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn postgres() {
            super::$name($crate::support::Db::Postgres).await;
        }
    };
}

#[path = "../sp/backends/mod.rs"]
mod backends;
mod private_file;
#[path = "../sp/support/mod.rs"]
mod support;
