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
    cache
        .check_and_store("_a1", t0(), expiry, t0())
        .await
        .unwrap();
    assert_eq!(
        replay_err(
            cache
                .check_and_store("_a1", t0(), expiry, t0() + Duration::minutes(4))
                .await
        ),
        ReplayError::Replayed("_a1".to_owned())
    );
    // Another ID is independent.
    cache
        .check_and_store("_a2", t0(), expiry, t0())
        .await
        .unwrap();
    // An assertion already past NotOnOrAfter is refused outright.
    assert_eq!(
        replay_err(cache.check_and_store("_old", t0(), t0(), t0()).await),
        ReplayError::Expired("_old".to_owned())
    );
    // After expiry the entry is gone, so the ID is accepted again (the SAML layer's
    // NotOnOrAfter check is what refuses such an old assertion).
    let later = expiry + Duration::seconds(1);
    cache
        .check_and_store("_a1", t0(), later + Duration::minutes(5), later)
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
    node_a
        .check_and_store("_x", t0(), expiry, t0())
        .await
        .unwrap();
    assert_eq!(
        replay_err(node_b.check_and_store("_x", t0(), expiry, t0()).await),
        ReplayError::Replayed("_x".to_owned())
    );

    // Sixteen concurrent presentations of one assertion across both nodes: one wins.
    let nodes = [Arc::new(node_a), Arc::new(node_b)];
    let mut tasks = Vec::new();
    for i in 0..16 {
        let node = Arc::clone(&nodes[i % 2]);
        tasks.push(tokio::spawn(async move {
            node.check_and_store("_race", t0(), expiry, t0()).await
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
    let (issued, expired, live) = (
        ms(t0()),
        ms(t0() + Duration::minutes(1)),
        ms(t0() + Duration::hours(1)),
    );
    for chunk in 0..5 {
        let rows: Vec<String> = (0..500)
            .map(|i| format!("({issued}, '_old{chunk}-{i}', {expired})"))
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO sp_replay_cache (issued_at, assertion_id, not_on_or_after) VALUES {}",
            rows.join(", ")
        )))
        .execute(database.pool())
        .await
        .unwrap();
    }
    for i in 0..7 {
        cache
            .check_and_store(&format!("_live{i}"), t0(), t0() + Duration::hours(1), t0())
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
                    t0(),
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
        replay_err(cache.check_and_store("_live", t0(), expiry, t0()).await),
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

/// An assertion is its ID and its IssueInstant, both under the IdP's signature: the same ID
/// issued at another instant is another assertion (only the IdP can sign one), and the SQL
/// cache keeps its entries in the order of that instant, so that they are inserted at the end
/// of its b-tree rather than at a random place.
async fn sql_cache_keys_an_assertion_by_its_instant_and_id(db: Db) {
    let fx = fixture(db).await;
    let cache = SqlReplayCache::new(fx.store.database().clone());
    let expiry = t0() + Duration::minutes(5);
    let issued = |s: i64| t0() - Duration::seconds(s);
    for (id, ago) in [("_c", 10), ("_a", 30), ("_b", 20)] {
        cache
            .check_and_store(id, issued(ago), expiry, t0())
            .await
            .unwrap();
    }
    assert_eq!(
        replay_err(cache.check_and_store("_b", issued(20), expiry, t0()).await),
        ReplayError::Replayed("_b".to_owned())
    );
    cache
        .check_and_store("_b", issued(5), expiry, t0())
        .await
        .unwrap();
    let order: Vec<String> = sqlx::query_scalar(if db == Db::Sqlite {
        // A WITHOUT ROWID table is read in its key's order.
        "SELECT assertion_id FROM sp_replay_cache"
    } else {
        "SELECT assertion_id FROM sp_replay_cache ORDER BY issued_at, assertion_id"
    })
    .fetch_all(fx.store.database().pool())
    .await
    .unwrap();
    assert_eq!(order, ["_a", "_b", "_c", "_b"]);
}

/// Entries recorded before the cache was keyed by the IssueInstant too
/// (`20261207000200_replay_by_issue`) have no instant: each still refuses its ID, whatever
/// instant a second use says it was issued at, until it expires; then the ID is accepted as
/// any expired one is, and the entry is pruned.
async fn entries_recorded_before_the_instant_key_refuse_their_ids(db: Db) {
    let (_dir, url, pool) = crate::support::migrated_to(db, 20261207000100).await;
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
    pool.close().await;

    let database = Database::connect(&url).await.unwrap();
    let cache = SqlReplayCache::new(database.clone());
    assert_eq!(cache.count_entries().await.unwrap(), 2);
    for issued in [
        t0() - Duration::minutes(1),
        t0(),
        time::OffsetDateTime::UNIX_EPOCH,
    ] {
        assert_eq!(
            replay_err(cache.check_and_store("_live", issued, expiry, t0()).await),
            ReplayError::Replayed("_live".to_owned()),
            "issued at {issued}"
        );
    }
    // An expired entry holds nothing.
    cache
        .check_and_store("_gone", t0(), expiry, t0())
        .await
        .unwrap();
    let later = expiry + Duration::seconds(1);
    cache
        .check_and_store("_live", t0(), later + Duration::minutes(5), later)
        .await
        .unwrap();
    cache.prune(later).await.unwrap();
    let left: Vec<(i64, String)> =
        sqlx::query_as("SELECT issued_at, assertion_id FROM sp_replay_cache")
            .fetch_all(database.pool())
            .await
            .unwrap();
    assert_eq!(left, [(millis(t0()), "_live".to_owned())]);
}

crate::on_both_backends!(
    sql_cache_keys_an_assertion_by_its_instant_and_id,
    entries_recorded_before_the_instant_key_refuse_their_ids,
    entries_recorded_before_the_one_tree_migration_are_kept,
    sql_cache_refuses_replays_and_prunes,
    sql_cache_is_shared_between_nodes_and_atomic,
    a_large_prune_takes_every_expired_entry_and_nothing_else,
);
