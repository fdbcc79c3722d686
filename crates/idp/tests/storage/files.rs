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
        },
        ..Config::default()
    };
    let store = latchkey_idp::Store::open(&config).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store
        .users()
        .create(
            &super::admin(),
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
