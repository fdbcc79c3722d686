//! What `Store::open` does on disk with the default (SQLite) configuration.

use latchkey_idp::config::{Config, PasswordConfig};
use latchkey_idp::store::Backend;

#[tokio::test]
async fn default_store_is_a_private_sqlite_file_in_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: tmp.path().join("state/data"),
        password: PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            ..PasswordConfig::default()
        },
        ..Config::default()
    };
    let store = latchkey_idp::Store::open(&config).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store
        .users()
        .create(
            &crate::storage::admin(),
            latchkey_idp::directory::NewUser::new("alice", "alice@example.org"),
        )
        .await
        .unwrap();
    let file = config.data_dir.join("latchkey.db");
    assert!(file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&config.data_dir), 0o700);
        assert_eq!(mode(&file), 0o600);
    }
    store.close().await;
    // Reopening finds the same data.
    let again = latchkey_idp::Store::open(&config).await.unwrap();
    assert_eq!(again.users().list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn unsupported_url_is_a_typed_error() {
    let err = latchkey_idp::Store::open_url("mysql://u:pw@h/d", 1, PasswordConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, latchkey_idp::Error::UnsupportedDatabase { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("pw"), "{err}");
}

/// A SQLite URL naming no file is refused, saying so: SQLite would give each of the pool's
/// connections a private temporary database, so a user written through one connection would
/// be missing from the next. A database in memory says `:memory:`.
#[tokio::test]
async fn a_sqlite_url_without_a_file_is_refused() {
    for url in ["sqlite://", "sqlite://?mode=rwc", "sqlite:"] {
        let err = latchkey_idp::Store::open_url(url, 2, cheap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, latchkey_idp::Error::NoDatabaseFile { .. }),
            "{url}: {err:?}"
        );
        assert_eq!(err.code().as_str(), "no_database_file");
        assert!(err.to_string().contains("names no file"), "{err}");
    }
}

/// A database in memory lives in one SQLite connection, so the store keeps one whatever
/// pool size it is given: a user written is found by every later read, however many run at
/// once (with a pool of four, three connections would each have had an empty database of
/// their own, without even the tables).
#[tokio::test]
async fn a_database_in_memory_is_one_connection() {
    let store = latchkey_idp::Store::open_url("sqlite::memory:", 4, cheap())
        .await
        .unwrap();
    store
        .users()
        .create(
            &latchkey_idp::audit::Actor::cli("test"),
            latchkey_idp::directory::NewUser::new("alice", "alice@example.org"),
        )
        .await
        .unwrap();
    let reads = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.users().list().await.map(|users| users.len()) })
    });
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap(), 1);
    }
}

fn cheap() -> PasswordConfig {
    PasswordConfig {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        ..PasswordConfig::default()
    }
}

/// A data folder that cannot be created is named with the OS's reason at once, not after
/// the pool's 30 s as "pool timed out". (Permission bits cannot be tested here: the suite
/// runs as root, which ignores them; a path under a regular file fails for root too.)
#[tokio::test]
async fn an_uncreatable_data_dir_is_named_with_its_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let config = Config {
        data_dir: blocker.join("data"),
        password: cheap(),
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let err = latchkey_idp::Store::open(&config).await.unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        matches!(err, latchkey_idp::Error::DataDirUnwritable { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&config.data_dir.display().to_string()),
        "{text}"
    );
    assert!(text.contains("Not a directory"), "{text}");
    assert!(!text.contains("pool timed out"), "{text}");
}

/// SQLite opens a file it may not write read-only, without a word; the write probe (run
/// by `latchkey serve` at start) says so. `mode=ro` stands in for a write-protected file,
/// which root could write anyway.
#[tokio::test]
async fn a_read_only_database_fails_the_write_probe_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let url = latchkey_idp::config::sqlite_url(&tmp.path().join("latchkey.db"));
    let store = latchkey_idp::Store::open_url(&url, 1, cheap())
        .await
        .unwrap();
    store
        .probe_write(std::time::Duration::from_secs(2))
        .await
        .unwrap();
    store.close().await;

    let read_only = latchkey_idp::Store::open_url(&format!("{url}?mode=ro"), 1, cheap())
        .await
        .unwrap();
    // Reads still work, which is why a read was no readiness check.
    assert!(read_only.schema_version().await.unwrap() >= 290);
    let err = read_only
        .probe_write(std::time::Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            latchkey_idp::Error::DatabaseUnwritable { locked: false, .. }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("latchkey.db"), "{text}");
    assert!(text.contains("read-only"), "{text}");
}

/// The write probe (`/readyz`) while another connection holds SQLite's write lock gives up
/// within its bound, says it timed out, and leaves the pool's connection free: a read
/// through the store's one connection answers at once. (A probe run on a pool connection
/// left it waiting for the lock, out of the pool, for SQLite's 5 s busy timeout.) Once the
/// lock is let go the probe passes again.
#[tokio::test]
async fn a_write_probe_against_a_held_lock_gives_up_and_keeps_the_pool_free() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let url = latchkey_idp::config::sqlite_url(&tmp.path().join("latchkey.db"));
    let store = latchkey_idp::Store::open_url(&url, 1, cheap())
        .await
        .unwrap();
    store.probe_write(Duration::from_secs(1)).await.unwrap();
    let mut other = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let err = store
            .probe_write(Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(
            matches!(
                err,
                latchkey_idp::Error::DatabaseUnwritable { locked: true, .. }
            ),
            "{err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    assert!(store.schema_version().await.unwrap() >= 290);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a read waited {:?} for the pool's connection",
        started.elapsed()
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    store.probe_write(Duration::from_secs(1)).await.unwrap();
}
