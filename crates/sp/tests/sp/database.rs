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

/// A file opened for this process alone (`?vfs=unix-excl`): its connections (the pool's,
/// the login writer's, a second handle's, the readiness probe's) share it, and its
/// write-ahead-log index lives in memory, not in a `-shm` file beside it. (That another
/// process is refused is the oracles' `private_file` test.)
#[tokio::test]
async fn a_file_for_this_process_alone_is_shared_by_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sp.db");
    let url = format!("sqlite://{}?mode=rwc&vfs=unix-excl", file.display());
    let db = Database::connect(&url).await.unwrap();
    let store = SqlAccountStore::new(db.clone());
    let outcome = JitEngine::new(contract(WIKI), store.clone())
        .login(&alice(), t0())
        .await
        .unwrap()
        .outcome;
    assert_eq!(outcome, Outcome::Created);
    assert_eq!(db.writer_stats().unwrap().logins, 1, "through the writer");
    assert_eq!(store.accounts().await.unwrap().len(), 1);
    let again = SqlAccountStore::new(Database::connect(&url).await.unwrap());
    assert_eq!(again.accounts().await.unwrap().len(), 1);
    db.probe(std::time::Duration::from_secs(5)).await.unwrap();
    assert!(dir.path().join("sp.db-wal").exists());
    assert!(!dir.path().join("sp.db-shm").exists());

    // The default VFS keeps the index in a file every process maps.
    let shared = dir.path().join("shared.db");
    let db = Database::connect(&format!("sqlite://{}?mode=rwc", shared.display()))
        .await
        .unwrap();
    JitEngine::new(contract(WIKI), SqlAccountStore::new(db))
        .login(&alice(), t0())
        .await
        .unwrap();
    assert!(dir.path().join("shared.db-shm").exists());
}

#[tokio::test]
async fn other_backends_are_refused() {
    match Database::connect("mysql://localhost/sp").await {
        Err(StoreError::UnsupportedBackend(scheme)) => assert_eq!(scheme, "mysql"),
        other => panic!("expected UnsupportedBackend, got {other:?}"),
    }
}

/// A SQLite URL without a file is refused, saying so: SQLite would give each of the pool's
/// connections (and the readiness probe's) a private temporary database, so a login's rows
/// would not be where the next request looks. A database in memory says `:memory:`.
#[tokio::test]
async fn a_sqlite_url_without_a_file_is_refused() {
    for url in ["sqlite://", "sqlite://?mode=rwc", "sqlite:"] {
        match Database::connect(url).await {
            Err(e @ StoreError::NoDatabaseFile(_)) => {
                assert!(e.to_string().contains("names no file"), "{e}");
            }
            other => panic!("{url}: expected NoDatabaseFile, got {other:?}"),
        }
    }
    Database::connect("sqlite::memory:").await.unwrap();
}

/// A readiness probe while another connection holds SQLite's write lock gives up within its
/// bound, says so ([`StoreError::TimedOut`]), and leaves the pool's connections free: more
/// probes than the pool has connections, and a read through the pool still answers at once.
/// (A probe run on a pool connection left it waiting for the lock, out of the pool, for
/// SQLite's 30 s busy timeout, so two probes took the pool from every login.) Once the lock
/// is let go the probe passes again.
#[tokio::test]
async fn a_probe_against_a_held_write_lock_gives_up_and_keeps_the_pool_free() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sp.db").display());
    let db = Database::connect(&url).await.unwrap();
    db.probe(Duration::from_secs(1)).await.unwrap();
    // Another writer (another process, say) holding the write lock.
    let mut other = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let err = db.probe(Duration::from_millis(500)).await.unwrap_err();
        assert!(matches!(err, StoreError::TimedOut(_)), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let one: i64 = sqlx::query_scalar("SELECT 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(one, 1);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a read waited {:?} for a pool connection",
        started.elapsed()
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    db.probe(Duration::from_secs(1)).await.unwrap();
}

/// A write that SQLite turns away for another connection's lock (here with no wait at all)
/// is contention: `STORE_BUSY`, 503, not a store failure; a write refused for another reason
/// (a constraint) is not.
#[tokio::test]
async fn a_write_turned_away_by_a_lock_is_busy_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sp.db").display());
    let db = Database::connect(&url).await.unwrap();
    let mut holder = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let mut other = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql("PRAGMA busy_timeout = 0")
        .execute(&mut other)
        .await
        .unwrap();
    let locked = sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap_err();
    let locked = latchkey_sp::Error::Store(StoreError::Database(locked));
    assert!(locked.is_busy(), "{locked:?}");
    assert_eq!(locked.code().as_str(), "STORE_BUSY");
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    let taken = sqlx::raw_sql(
        "INSERT INTO sp_replay_cache (issued_at, assertion_id, not_on_or_after) \
         VALUES (1, '_a', 1); INSERT INTO sp_replay_cache (issued_at, assertion_id, \
         not_on_or_after) VALUES (1, '_a', 1)",
    )
    .execute(db.pool())
    .await
    .unwrap_err();
    let taken = latchkey_sp::Error::Store(StoreError::Database(taken));
    assert!(!taken.is_busy(), "{taken:?}");
    assert_eq!(taken.code().as_str(), "STORE_FAILED");
}
