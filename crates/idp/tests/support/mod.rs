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

/// A database of the same kind as `like`'s, migrated only up to `version`: an install from
/// before a migration, for the tests that hold the migration to keeping its data. The pool
/// has one connection; the temp dir (SQLite) must outlive it.
pub async fn migrated_to(
    like: &TestStore,
    version: i64,
) -> (sqlx::AnyPool, String, Option<tempfile::TempDir>) {
    let (backend, url, dir) = if like.url.starts_with("sqlite") {
        let dir = tempfile::tempdir().unwrap();
        let url = latchkey_idp::config::sqlite_url(&dir.path().join("old.db"));
        ("sqlite", url, Some(dir))
    } else {
        ("postgres", pg::fresh_database_url().await, None)
    };
    sqlx::any::install_default_drivers();
    let migrator = sqlx::migrate::Migrator::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend),
    )
    .await
    .unwrap();
    let create = match backend {
        "sqlite" => format!("{url}?mode=rwc"),
        _ => url.clone(),
    };
    let options: sqlx::any::AnyConnectOptions = create.parse().unwrap();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    migrator.run_to(version, &pool).await.unwrap();
    (pool, url, dir)
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
