//! PostgreSQL connections in the store's pool (moved from `store/files.rs`).

/// PostgreSQL connections are not pinged before every statement, only after sitting idle:
/// one the server cut while it sat in the pool (a restart, a firewall) is found by that
/// ping and replaced, so the next request still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_cut_while_idle_are_replaced_on_checkout() {
    use sqlx::Connection;
    let t = crate::support::postgres().await;
    let store = &t.store;
    assert!(store.schema_version().await.unwrap() > 0);
    let database = t.url.rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&t.url).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&database)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!cut.is_empty() && cut.iter().all(|&c| c), "{cut:?}");
    // Past the idle threshold, so checkout pings, finds the connection dead, opens another.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    for _ in 0..3 {
        assert!(store.schema_version().await.unwrap() > 0);
    }
}
