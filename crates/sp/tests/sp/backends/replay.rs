//! The SQL replay cache on each backend, and the behaviour every replay cache shares (the
//! memory cache's tests in `replay.rs` use it too).

use std::sync::Arc;

use latchkey_sp::login::{PendingStore, SqlPendingRequests};
use latchkey_sp::replay::{ReplayCache, SqlReplayCache};
use latchkey_sp::store::Database;
use latchkey_sp::{Error, ReplayError};
use time::Duration;

use crate::support::{Db, fixture, t0};

pub(crate) fn replay_err(result: Result<(), Error>) -> ReplayError {
    match result {
        Err(Error::Replay(e)) => e,
        other => panic!("expected a replay error, got {other:?}"),
    }
}

/// The behaviour both implementations share.
pub(crate) async fn common(cache: &impl ReplayCache) {
    let expiry = t0() + Duration::minutes(5);
    cache.check_and_store("_a1", expiry, t0()).await.unwrap();
    assert_eq!(
        replay_err(
            cache
                .check_and_store("_a1", expiry, t0() + Duration::minutes(4))
                .await
        ),
        ReplayError::Replayed("_a1".to_owned())
    );
    // Another ID is independent.
    cache.check_and_store("_a2", expiry, t0()).await.unwrap();
    // An assertion already past NotOnOrAfter is refused outright.
    assert_eq!(
        replay_err(cache.check_and_store("_old", t0(), t0()).await),
        ReplayError::Expired("_old".to_owned())
    );
    // After expiry the entry is gone, so the ID is accepted again (the SAML layer's
    // NotOnOrAfter check is what refuses such an old assertion).
    let later = expiry + Duration::seconds(1);
    cache
        .check_and_store("_a1", later + Duration::minutes(5), later)
        .await
        .unwrap();
}

async fn sql_cache_refuses_replays_and_prunes(db: Db) {
    let fx = fixture(db).await;
    let cache = SqlReplayCache::new(fx.store.database().clone());
    common(&cache).await;
    // The expired "_a2" and old "_a1" were pruned by the last call; only the new "_a1" is left.
    assert_eq!(cache.count_entries().await.unwrap(), 1);
    assert_eq!(cache.prune(t0() + Duration::days(1)).await.unwrap(), 1);
    assert_eq!(cache.count_entries().await.unwrap(), 0);
}

async fn sql_cache_is_shared_between_nodes_and_atomic(db: Db) {
    let fx = fixture(db).await;
    let node_a = SqlReplayCache::new(fx.store.database().clone());
    let node_b = SqlReplayCache::new(Database::connect(&fx.url).await.unwrap());
    let expiry = t0() + Duration::minutes(5);
    node_a.check_and_store("_x", expiry, t0()).await.unwrap();
    assert_eq!(
        replay_err(node_b.check_and_store("_x", expiry, t0()).await),
        ReplayError::Replayed("_x".to_owned())
    );

    // Sixteen concurrent presentations of one assertion across both nodes: one wins.
    let nodes = [Arc::new(node_a), Arc::new(node_b)];
    let mut tasks = Vec::new();
    for i in 0..16 {
        let node = Arc::clone(&nodes[i % 2]);
        tasks.push(tokio::spawn(async move {
            node.check_and_store("_race", expiry, t0()).await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => accepted += 1,
            Err(e) => assert_eq!(
                replay_err(Err(e)),
                ReplayError::Replayed("_race".to_owned())
            ),
        }
    }
    assert_eq!(accepted, 1);
}

/// A prune deletes every expired entry however many there are (here several of its batches'
/// worth), and only those.
async fn a_large_prune_takes_every_expired_entry_and_nothing_else(db: Db) {
    let fx = fixture(db).await;
    let database = fx.store.database().clone();
    let cache = SqlReplayCache::new(database.clone());
    let ms =
        |at: time::OffsetDateTime| i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap();
    let (expired, live) = (
        ms(t0() + Duration::minutes(1)),
        ms(t0() + Duration::hours(1)),
    );
    for chunk in 0..5 {
        let rows: Vec<String> = (0..500)
            .map(|i| format!("('_old{chunk}-{i}', {expired})"))
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO sp_replay_cache (assertion_id, not_on_or_after) VALUES {}",
            rows.join(", ")
        )))
        .execute(database.pool())
        .await
        .unwrap();
    }
    for i in 0..7 {
        cache
            .check_and_store(&format!("_live{i}"), t0() + Duration::hours(1), t0())
            .await
            .unwrap();
    }
    assert_eq!(cache.count_entries().await.unwrap(), 2_507);
    let pruned = cache.prune(t0() + Duration::minutes(2)).await.unwrap();
    assert_eq!(pruned, 2_500);
    assert_eq!(cache.count_entries().await.unwrap(), 7);
    assert!(live > expired);
    // The live ones are still refused as replays.
    assert_eq!(
        replay_err(
            cache
                .check_and_store(
                    "_live3",
                    t0() + Duration::hours(1),
                    t0() + Duration::minutes(3)
                )
                .await
        ),
        ReplayError::Replayed("_live3".to_owned())
    );
}

/// An install from before the replay cache and pending requests became one b-tree each
/// (`20261206000020`, `…30`) keeps its rows through the migrations: a live replay entry still
/// refuses its assertion, an expired one is still pruned, and a login started before is still
/// answered once.
async fn entries_recorded_before_the_one_tree_migration_are_kept(db: Db) {
    let (_dir, url, pool) = crate::support::migrated_to(db, 20261206000010).await;
    let expiry = t0() + Duration::minutes(5);
    let millis =
        |t: time::OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap();
    for (id, until) in [("_live", expiry), ("_gone", t0())] {
        sqlx::query("INSERT INTO sp_replay_cache (assertion_id, not_on_or_after) VALUES ($1, $2)")
            .bind(id)
            .bind(millis(until))
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO sp_pending_requests (relay_state, request_id, return_to, expires_at, \
         client) VALUES ('rs-before', '_req-before', '/back', $1, '192.0.2.0/24')",
    )
    .bind(millis(expiry))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let database = Database::connect(&url).await.unwrap();
    let cache = SqlReplayCache::new(database.clone());
    assert_eq!(cache.count_entries().await.unwrap(), 2);
    assert_eq!(
        replay_err(cache.check_and_store("_live", expiry, t0()).await),
        ReplayError::Replayed("_live".to_owned())
    );
    // That call pruned the expired entry; the live one goes once it expires.
    assert_eq!(cache.count_entries().await.unwrap(), 1);
    assert_eq!(cache.prune(expiry).await.unwrap(), 1);
    assert_eq!(cache.count_entries().await.unwrap(), 0);
    let pending = PendingStore::Sql(SqlPendingRequests::new(database.clone(), 8));
    let started = pending.take("rs-before", t0()).await.unwrap().unwrap();
    assert_eq!(
        (started.request_id.as_str(), started.return_to.as_deref()),
        ("_req-before", Some("/back"))
    );
    assert!(pending.take("rs-before", t0()).await.unwrap().is_none());
    if db == Db::Sqlite {
        for table in ["sp_replay_cache", "sp_pending_requests"] {
            let sql: String = sqlx::query_scalar(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = $1",
            )
            .bind(table)
            .fetch_one(database.pool())
            .await
            .unwrap();
            assert!(sql.contains("WITHOUT ROWID"), "{sql}");
        }
    }
}

crate::on_both_backends!(
    entries_recorded_before_the_one_tree_migration_are_kept,
    sql_cache_refuses_replays_and_prunes,
    sql_cache_is_shared_between_nodes_and_atomic,
    a_large_prune_takes_every_expired_entry_and_nothing_else,
);
