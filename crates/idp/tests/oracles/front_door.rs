//! A measurement, not a check (BENCHMARKS.md, "Front-door counts by expiry"): what one
//! anonymous park's admission costs on PostgreSQL with the table filled to the default cap,
//! before migration 0660 (main after 0655: the /48's a count of its owners' index range, every
//! expired row deleted by the start) and after (every cap a sum over a few kept rows by key,
//! a start deleting at most `EXPIRED_PER_START` expired rows). Run with
//! `cargo test -p latchkey-idp --test oracles -- --ignored --nocapture front_door`.

use std::time::{Duration, Instant};

use sqlx::Connection;

/// The parked requests a flood leaves (the default `parked_max`), in ten IPv6 /48s of 5,000
/// each (the default /48 share: 1,000 per owner, five owners' worth), one per /64.
const PARKED: i64 = 50_000;
/// Admissions measured while the flood is live, and after it expired (each rolled back, so
/// the table stays as filled).
const RUNS: usize = 41;
const EXPIRED_RUNS: usize = 7;

/// When the flood's rows were parked, when they expire, and a time after that.
const PARKED_AT: &str = "2026-12-07T06:00:00.000000Z";
const EXPIRES_AT: &str = "2026-12-07T06:15:00.000000Z";
const LATER: &str = "2026-12-07T06:20:00.000000Z";

/// Before 0660 (main after 0655): the park's statements as main had them.
const DELETE_BEFORE: &str = "DELETE FROM sso_parked_requests WHERE expires_at <= $1";
const PARK_BEFORE: &str = "INSERT INTO sso_parked_requests \
     (key_hash, payload, created_at, expires_at, owner) \
     SELECT $1, $2, $3, $4, $5 \
     WHERE (SELECT COUNT(*) FROM sso_parked_requests WHERE owner COLLATE \"C\" = $5) < $6 \
     AND ($11 = '' OR (SELECT live FROM front_door_counts \
         WHERE counted = 'sso_parked_requests') < $7) \
     AND ($8 = '' OR (SELECT COUNT(*) FROM sso_parked_requests \
         WHERE owner COLLATE \"C\" >= $8 AND owner COLLATE \"C\" < $9) < $10)";
/// After 0660: as `FrontDoor::delete_expired` and `ParkedRequests::park_sql` write them.
const DELETE_AFTER: &str = "DELETE FROM sso_parked_requests WHERE key_hash IN \
     (SELECT key_hash FROM sso_parked_requests WHERE expires_at <= $1 \
     ORDER BY expires_at LIMIT 16)";
const PARK_AFTER: &str = "INSERT INTO sso_parked_requests \
     (key_hash, payload, created_at, expires_at, owner, wide) \
     SELECT $1, $2, $3, $4, $5, $8 \
     WHERE (SELECT CAST(COALESCE(SUM(live), 0) AS BIGINT) FROM front_door_counts_parked \
         WHERE scope = 'owner' AND name = $5 AND expires_at > $3) < $6 \
     AND ($10 = '' OR (SELECT CAST(COALESCE(SUM(live), 0) AS BIGINT) \
         FROM front_door_counts_parked \
         WHERE scope = 'all' AND name = '' AND expires_at > $3) < $7) \
     AND ($8 IS NULL OR (SELECT CAST(COALESCE(SUM(live), 0) AS BIGINT) \
         FROM front_door_counts_parked \
         WHERE scope = 'wide' AND name = $8 AND expires_at > $3) < $9)";

/// The park measured: a new /64 in the /48 `2001:db8:3::`, which holds its 5,000 (about as
/// many after the churn), under the largest /48 share a configuration allows (64,000).
const OWNER: &str = "addr:2001:db8:3:ffff::/64";
const WIDE: &str = "addr:2001:db8:3:";

/// Median and worst of `runs`.
fn summary(mut runs: Vec<Duration>) -> String {
    runs.sort();
    format!(
        "median {:.2} ms, worst {:.2} ms",
        runs[runs.len() / 2].as_secs_f64() * 1e3,
        runs[runs.len() - 1].as_secs_f64() * 1e3
    )
}

/// One park at `now` as a start does it: its own transaction, the shared lock, the expired
/// rows' delete, the conditional insert; rolled back. Returns the insert's time, the whole
/// transaction's and the rows the delete removed.
async fn park(
    conn: &mut sqlx::PgConnection,
    after: bool,
    now: &str,
    n: usize,
) -> (Duration, Duration, u64) {
    let began = Instant::now();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(7812)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let deleted = sqlx::query(if after { DELETE_AFTER } else { DELETE_BEFORE })
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    let insert = Instant::now();
    let query = sqlx::query(if after { PARK_AFTER } else { PARK_BEFORE })
        .bind(format!("measure{n}"))
        .bind("x".repeat(1536))
        .bind(now)
        .bind("2026-12-07T06:35:00.000000Z")
        .bind(OWNER)
        .bind(1_000i64)
        .bind(PARKED + 1_000);
    let query = if after {
        query.bind(WIDE).bind(64_000i64).bind("addr:")
    } else {
        query
            .bind(WIDE)
            .bind("addr:2001:db8:3;")
            .bind(64_000i64)
            .bind("addr:")
    };
    let done = query.execute(&mut *tx).await.unwrap();
    let insert = insert.elapsed();
    assert_eq!(done.rows_affected(), 1);
    tx.rollback().await.unwrap();
    (insert, began.elapsed(), deleted)
}

/// `runs` parks at `now`; prints the insert's and the transaction's times.
async fn measure(conn: &mut sqlx::PgConnection, label: &str, after: bool, now: &str, runs: usize) {
    let (mut inserts, mut whole, mut deleted) = (Vec::new(), Vec::new(), 0);
    for n in 0..runs {
        let (i, w, d) = park(conn, after, now, n).await;
        inserts.push(i);
        whole.push(w);
        deleted = d;
    }
    println!(
        "{label}: insert {}; transaction {} (deleting {deleted} expired rows)",
        summary(inserts),
        summary(whole)
    );
}

/// The filled table as autovacuum leaves it between bursts: analysed, every page marked
/// all-visible (a vacuum that ran while another connection held a snapshot marks none, so
/// it goes again until they all are).
async fn vacuum(conn: &mut sqlx::PgConnection) {
    for table in ["sso_parked_requests"] {
        for _ in 0..50 {
            sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
                .execute(&mut *conn)
                .await
                .unwrap();
            let (pages, visible): (i32, i32) =
                sqlx::query_as("SELECT relpages, relallvisible FROM pg_class WHERE relname = $1")
                    .bind(table)
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            if pages == visible {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Half the rows replaced by new ones (as a flood's rows are taken and parked again), the
/// statistics gathered but no vacuum yet: the pages are no longer all-visible.
async fn churn(conn: &mut sqlx::PgConnection, after: bool) {
    sqlx::query(
        "DELETE FROM sso_parked_requests WHERE key_hash IN \
         (SELECT key_hash FROM sso_parked_requests ORDER BY key_hash LIMIT 25000)",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let wide = if after {
        "'addr:2001:db8:' || (n % 10) || ':'"
    } else {
        "NULL"
    };
    let column = if after { ", wide" } else { "" };
    let insert = format!(
        "INSERT INTO sso_parked_requests \
         (key_hash, payload, created_at, expires_at, owner{column}) \
         SELECT 'again' || n, repeat('x', 1536), $1, $2, \
         'addr:2001:db8:' || (n % 10) || ':' || (n / 10) || '::/64'{} \
         FROM generate_series(50001, 75000) AS n",
        if after {
            format!(", {wide}")
        } else {
            String::new()
        }
    );
    sqlx::query(sqlx::AssertSqlSafe(insert))
        .bind(PARKED_AT)
        .bind(EXPIRES_AT)
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("ANALYZE").execute(&mut *conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for BENCHMARKS.md, not a check"]
async fn front_door_admission_at_the_default_cap() {
    let like = crate::support::postgres().await;
    let (pool, url, _dir) = crate::support::migrated_to(&like, 655).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO sso_parked_requests (key_hash, payload, created_at, expires_at, owner) \
         SELECT 'flood' || n, repeat('x', 1536), $2, $3, \
         'addr:2001:db8:' || (n % 10) || ':' || (n / 10) || '::/64' \
         FROM generate_series(1, $1) AS n",
    )
    .bind(PARKED)
    .bind(PARKED_AT)
    .bind(EXPIRES_AT)
    .execute(&mut conn)
    .await
    .unwrap();
    vacuum(&mut conn).await;
    measure(&mut conn, "before (0655), live", false, PARKED_AT, RUNS).await;
    measure(
        &mut conn,
        "before (0655), all expired",
        false,
        LATER,
        EXPIRED_RUNS,
    )
    .await;
    churn(&mut conn, false).await;
    measure(
        &mut conn,
        "before (0655), live, churned",
        false,
        PARKED_AT,
        RUNS,
    )
    .await;

    let migrator = sqlx::migrate::Migrator::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres"),
    )
    .await
    .unwrap();
    migrator.run(&pool).await.unwrap();
    vacuum(&mut conn).await;
    sqlx::query("ANALYZE front_door_counts_parked")
        .execute(&mut conn)
        .await
        .unwrap();
    let wide: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(live) AS BIGINT) FROM front_door_counts_parked \
         WHERE scope = 'wide' AND name = $1",
    )
    .bind(WIDE)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let counted: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sso_parked_requests WHERE wide = $1")
            .bind(WIDE)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(wide == counted && wide > 4_000, "{wide} {counted}");
    measure(&mut conn, "after (0660), live", true, PARKED_AT, RUNS).await;
    measure(
        &mut conn,
        "after (0660), all expired",
        true,
        LATER,
        EXPIRED_RUNS,
    )
    .await;
    churn(&mut conn, true).await;
    measure(
        &mut conn,
        "after (0660), live, churned",
        true,
        PARKED_AT,
        RUNS,
    )
    .await;
    // One plan of the admission, with its timings (rolled back).
    let mut tx = conn.begin().await.unwrap();
    let explain = format!("EXPLAIN (ANALYZE, BUFFERS) {PARK_AFTER}");
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
        .bind("explained")
        .bind("x".repeat(1536))
        .bind(PARKED_AT)
        .bind("2026-12-07T06:35:00.000000Z")
        .bind(OWNER)
        .bind(1_000i64)
        .bind(PARKED + 1_000)
        .bind(WIDE)
        .bind(64_000i64)
        .bind("addr:")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    println!("after (0660), park plan:\n{}", rows.join("\n"));
    tx.rollback().await.unwrap();
    // And of the expired rows' batch, once the whole table expired (rolled back).
    let mut tx = conn.begin().await.unwrap();
    let explain = format!("EXPLAIN (ANALYZE, BUFFERS) {DELETE_AFTER}");
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
        .bind(LATER)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    println!("after (0660), expired batch plan:\n{}", rows.join("\n"));
    tx.rollback().await.unwrap();
}
