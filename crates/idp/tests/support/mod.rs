//! Test support shared by the IdP's integration tests: a store on each backend.

#![allow(dead_code)]

pub use latchkey_testkit::pg;

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

/// Runs each listed `async fn(TestStore)` once per backend, as `<name>::sqlite` and
/// `<name>::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::support::sqlite().await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::support::postgres().await).await;
                }
            }
        )*
    };
}
