//! Test support shared by the IdP's integration tests: a store on each backend.

#![allow(dead_code)]

pub use latchkey_testkit::pg;

pub mod fake_scim;

use latchkey_idp::Store;
use latchkey_idp::config::PasswordConfig;

/// A store for one test, with whatever keeps its database alive.
pub struct TestStore {
    /// The store under test.
    pub store: Store,
    /// The temp dir of a SQLite store (deleted on drop).
    pub dir: Option<tempfile::TempDir>,
    /// The database URL (to open a second handle on the same store).
    pub url: String,
}

/// Cheap Argon2 parameters: hashing cost is not what these tests are about.
pub fn cheap_passwords() -> PasswordConfig {
    PasswordConfig {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        ..PasswordConfig::default()
    }
}

/// A fresh SQLite store in a temp dir.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = latchkey_idp::config::sqlite_url(&dir.path().join("latchkey.db"));
    let store = Store::open_url(&url, 5, cheap_passwords()).await.unwrap();
    TestStore {
        store,
        dir: Some(dir),
        url,
    }
}

/// A fresh database in the shared throwaway PostgreSQL cluster.
pub async fn postgres() -> TestStore {
    let url = pg::fresh_database_url().await;
    let store = Store::open_url(&url, 5, cheap_passwords()).await.unwrap();
    TestStore {
        store,
        dir: None,
        url,
    }
}

/// Registers each listed `async fn(TestStore)` as the module `<name>` holding one test per
/// backend this binary runs, made by the binary's `backend_variant!`: `<name>::sqlite` in the
/// crate's main test binary, `<name>::postgres` in its `oracles` target (PostgreSQL is an
/// external server).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                backend_variant!($name);
            }
        )*
    };
}

/// Defines `backend_variant!` for `on_both_backends!`, given the backends this binary runs:
/// `sqlite` and/or `postgres` (the names of the generated tests and of the store functions
/// above). Called once at a binary's root, before the modules holding cases.
#[macro_export]
macro_rules! store_backend {
    ($($backend:ident),+ $(,)?) => {
        macro_rules! backend_variant {
            ($name:ident) => {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $backend() {
                        super::$name($crate::support::$backend().await).await;
                    }
                )+
            };
        }
    };
}
