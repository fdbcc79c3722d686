//! Connecting and migrating.

use latchkey_sp::StoreError;
use latchkey_sp::jit::{JitEngine, Outcome};
use latchkey_sp::store::{Backend, Database, SqlAccountStore};

use crate::support::{WIKI, alice, contract, t0};

#[tokio::test]
async fn in_memory_sqlite_works_on_one_connection() {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    let store = SqlAccountStore::new(db);
    let engine = JitEngine::new(contract(WIKI), store.clone());
    assert_eq!(
        engine.login(&alice(), t0()).await.unwrap().outcome,
        Outcome::Created
    );
    // Every later connection must see the same database.
    assert_eq!(store.accounts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn reconnecting_keeps_data_and_does_not_remigrate() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sp.db").display());
    let store = SqlAccountStore::new(Database::connect(&url).await.unwrap());
    JitEngine::new(contract(WIKI), store.clone())
        .login(&alice(), t0())
        .await
        .unwrap();
    let again = SqlAccountStore::new(Database::connect(&url).await.unwrap());
    assert_eq!(again.accounts().await.unwrap().len(), 1);
    // The SP keeps its migrations in its own table, apart from sqlx's default one.
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(again.database().pool())
            .await
            .unwrap();
    assert!(
        tables.contains(&"_latchkey_sp_migrations".to_owned()),
        "{tables:?}"
    );
    assert!(
        !tables.contains(&"_sqlx_migrations".to_owned()),
        "{tables:?}"
    );
}

#[tokio::test]
async fn other_backends_are_refused() {
    match Database::connect("mysql://localhost/sp").await {
        Err(StoreError::UnsupportedBackend(scheme)) => assert_eq!(scheme, "mysql"),
        other => panic!("expected UnsupportedBackend, got {other:?}"),
    }
}
