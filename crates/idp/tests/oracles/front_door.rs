//! A measurement, not a check (BENCHMARKS.md, "the front door's total kept in step"): what
//! one anonymous start's admission costs on PostgreSQL with the table filled to the default
//! cap, before migration 0655 (the total an index-only count of every anonymous row) and
//! after (one row kept in step). Run with
//! `cargo test -p latchkey-idp --test oracles -- --ignored --nocapture front_door`.

use std::time::{Duration, Instant};

use sqlx::Connection;

/// The parked requests a flood leaves (the default `parked_max`) and ceremonies under way.
const PARKED: i64 = 50_000;
const CEREMONIES: i64 = 10_000;
/// Admissions measured per statement (each rolled back, so the table stays as filled).
const RUNS: usize = 41;

/// Before 0655: the park's and the passwordless start's conditional inserts as main had them.
const PARK_BEFORE: &str = "INSERT INTO sso_parked_requests (key_hash, payload, created_at, expires_at, owner) \
     SELECT $1, $2, $3, $4, $5 \
     WHERE (SELECT COUNT(*) FROM sso_parked_requests WHERE owner COLLATE \"C\" = $5) < $6 \
     AND ($8 = '' OR (SELECT COUNT(*) FROM sso_parked_requests \
         WHERE owner COLLATE \"C\" >= $8 AND owner COLLATE \"C\" < $9) < $10) \
     AND ($11 = '' OR (SELECT COUNT(*) FROM sso_parked_requests \
         WHERE owner COLLATE \"C\" >= $11 AND owner COLLATE \"C\" < $12) < $7)";
/// After: the total is the kept row (`FrontDoor::Parked`); `$12` stays bound, unused, so
/// both take the same values.
const PARK_AFTER: &str = "INSERT INTO sso_parked_requests (key_hash, payload, created_at, expires_at, owner) \
     SELECT $1, $2, $3, $4, $5 \
     WHERE (SELECT COUNT(*) FROM sso_parked_requests WHERE owner COLLATE \"C\" = $5) < $6 \
     AND ($11 = '' OR (SELECT live FROM front_door_counts \
         WHERE counted = 'sso_parked_requests') < $7) \
     AND ($8 = '' OR (SELECT COUNT(*) FROM sso_parked_requests \
         WHERE owner COLLATE \"C\" >= $8 AND owner COLLATE \"C\" < $9) < $10) AND $12 <> ''";
const START_BEFORE: &str = "INSERT INTO webauthn_challenges \
     (handle_hash, kind, owner, user_id, state, expires_at) \
     SELECT $1, $2, $3, $4, $5, $6 \
     WHERE (SELECT COUNT(*) FROM webauthn_challenges WHERE owner COLLATE \"C\" = $3) < $7 \
     AND ($9 = '' OR (SELECT COUNT(*) FROM webauthn_challenges \
         WHERE owner COLLATE \"C\" >= $9 AND owner COLLATE \"C\" < $10) < $11) \
     AND ($4 IS NOT NULL OR (SELECT COUNT(*) FROM webauthn_challenges \
         WHERE user_id IS NULL) < $8)";
const START_AFTER: &str = "INSERT INTO webauthn_challenges \
     (handle_hash, kind, owner, user_id, state, expires_at) \
     SELECT $1, $2, $3, $4, $5, $6 \
     WHERE (SELECT COUNT(*) FROM webauthn_challenges WHERE owner COLLATE \"C\" = $3) < $7 \
     AND ($4 IS NOT NULL OR (SELECT live FROM front_door_counts \
         WHERE counted = 'webauthn_challenges') < $8) \
     AND ($9 = '' OR (SELECT COUNT(*) FROM webauthn_challenges \
         WHERE owner COLLATE \"C\" >= $9 AND owner COLLATE \"C\" < $10) < $11)";

/// Median and worst of `runs`.
fn summary(mut runs: Vec<Duration>) -> String {
    runs.sort();
    format!(
        "median {:.2} ms, worst {:.2} ms",
        runs[runs.len() / 2].as_secs_f64() * 1e3,
        runs[runs.len() - 1].as_secs_f64() * 1e3
    )
}

/// One anonymous park from a fresh IPv6 /48 (every count runs) as a start does it: its own
/// transaction, the shared lock, the expired rows deleted, the conditional insert; rolled
/// back. Returns the insert's time and the whole transaction's.
async fn park(conn: &mut sqlx::PgConnection, sql: &str, n: usize) -> (Duration, Duration) {
    let began = Instant::now();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(7812)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("DELETE FROM sso_parked_requests WHERE expires_at <= $1")
        .bind("2026-12-07T06:00:00Z")
        .execute(&mut *tx)
        .await
        .unwrap();
    let insert = Instant::now();
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(format!("measure{n}"))
        .bind("x".repeat(1536))
        .bind("2026-12-07T06:00:00Z")
        .bind("2026-12-07T06:15:00Z")
        .bind("addr:2001:db8:7777:1::/64")
        .bind(1_000i64)
        .bind(PARKED + 1_000)
        .bind("addr:2001:db8:7777:")
        .bind("addr:2001:db8:7777;")
        .bind(64_000i64)
        .bind("addr:")
        .bind("addr;")
        .execute(&mut *tx)
        .await
        .unwrap();
    let insert = insert.elapsed();
    assert_eq!(done.rows_affected(), 1);
    tx.rollback().await.unwrap();
    (insert, began.elapsed())
}

/// The same for a passwordless WebAuthn start.
async fn start(conn: &mut sqlx::PgConnection, sql: &str, n: usize) -> (Duration, Duration) {
    let began = Instant::now();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(7813)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("DELETE FROM webauthn_challenges WHERE expires_at <= $1")
        .bind(1_000i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    let insert = Instant::now();
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(format!("measure{n}"))
        .bind("passwordless")
        .bind("addr:2001:db8:7777:1::/64")
        .bind(None::<String>)
        .bind("{}")
        .bind(9_000_000_000_000i64)
        .bind(10i64)
        .bind(CEREMONIES + 1_000)
        .bind("addr:2001:db8:7777:")
        .bind("addr:2001:db8:7777;")
        .bind(640i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    let insert = insert.elapsed();
    assert_eq!(done.rows_affected(), 1);
    tx.rollback().await.unwrap();
    (insert, began.elapsed())
}

/// Each statement `RUNS` times; prints the insert's and the transaction's times, and one
/// `EXPLAIN ANALYZE` of it.
async fn measure(conn: &mut sqlx::PgConnection, label: &str, park_sql: &str, start_sql: &str) {
    for (what, sql) in [("park", park_sql), ("passwordless start", start_sql)] {
        let (mut inserts, mut whole) = (Vec::new(), Vec::new());
        for n in 0..RUNS {
            let (i, w) = if what == "park" {
                park(conn, sql, n).await
            } else {
                start(conn, sql, n).await
            };
            inserts.push(i);
            whole.push(w);
        }
        println!(
            "{label}, {what}: insert {}; transaction {}",
            summary(inserts),
            summary(whole)
        );
    }
    // One plan of each, with its timings (rolled back).
    let mut tx = conn.begin().await.unwrap();
    let explain = format!("EXPLAIN (ANALYZE, BUFFERS) {park_sql}");
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
        .bind("explained")
        .bind("x".repeat(1536))
        .bind("2026-12-07T06:00:00Z")
        .bind("2026-12-07T06:15:00Z")
        .bind("addr:2001:db8:7777:1::/64")
        .bind(1_000i64)
        .bind(PARKED + 1_000)
        .bind("addr:2001:db8:7777:")
        .bind("addr:2001:db8:7777;")
        .bind(64_000i64)
        .bind("addr:")
        .bind("addr;")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    println!("{label}, park plan:\n{}", rows.join("\n"));
    tx.rollback().await.unwrap();
}

/// The filled tables as autovacuum leaves them between bursts: analysed, every page marked
/// all-visible (which a count read off an index needs; a vacuum that ran while another
/// connection held a snapshot marks none, so it goes again until they all are).
async fn vacuum(conn: &mut sqlx::PgConnection) {
    for table in ["sso_parked_requests", "webauthn_challenges"] {
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

/// Half the rows replaced by new ones (as a flood's rows expire and are parked again), the
/// statistics gathered but no vacuum yet: the pages are no longer all-visible.
async fn churn(conn: &mut sqlx::PgConnection) {
    for sql in [
        "DELETE FROM sso_parked_requests WHERE key_hash IN \
         (SELECT key_hash FROM sso_parked_requests ORDER BY key_hash LIMIT 25000)",
        "INSERT INTO sso_parked_requests (key_hash, payload, created_at, expires_at, owner) \
         SELECT 'again' || n, repeat('x', 1536), '2026-12-07T06:00:00Z', \
         '2026-12-07T06:15:00Z', 'addr:2001:db8:' || (n % 50) || ':' || (n / 50) || '::/64' \
         FROM generate_series(1, 25000) AS n",
        "DELETE FROM webauthn_challenges WHERE handle_hash IN \
         (SELECT handle_hash FROM webauthn_challenges ORDER BY handle_hash LIMIT 5000)",
        "INSERT INTO webauthn_challenges (handle_hash, kind, owner, user_id, state, expires_at) \
         SELECT 'again' || n, 'passwordless', \
         'addr:2001:db8:' || (n % 50) || ':' || (n / 50) || '::/64', NULL, repeat('x', 1024), \
         9000000000000 FROM generate_series(1, 5000) AS n",
        "ANALYZE sso_parked_requests",
        "ANALYZE webauthn_challenges",
    ] {
        sqlx::query(sql).execute(&mut *conn).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for BENCHMARKS.md, not a check"]
async fn front_door_admission_at_the_default_cap() {
    let like = crate::support::postgres().await;
    let (pool, url, _dir) = crate::support::migrated_to(&like, 640).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO sso_parked_requests (key_hash, payload, created_at, expires_at, owner) \
         SELECT 'flood' || n, repeat('x', 1536), '2026-12-07T06:00:00Z', \
         '2026-12-07T06:15:00Z', 'addr:2001:db8:' || (n % 50) || ':' || (n / 50) || '::/64' \
         FROM generate_series(1, $1) AS n",
    )
    .bind(PARKED)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO webauthn_challenges (handle_hash, kind, owner, user_id, state, expires_at) \
         SELECT 'flood' || n, 'passwordless', \
         'addr:2001:db8:' || (n % 50) || ':' || (n / 50) || '::/64', NULL, repeat('x', 1024), \
         9000000000000 FROM generate_series(1, $1) AS n",
    )
    .bind(CEREMONIES)
    .execute(&mut conn)
    .await
    .unwrap();
    vacuum(&mut conn).await;
    measure(&mut conn, "before (0640)", PARK_BEFORE, START_BEFORE).await;
    churn(&mut conn).await;
    measure(
        &mut conn,
        "before (0640), churned",
        PARK_BEFORE,
        START_BEFORE,
    )
    .await;

    let migrator = sqlx::migrate::Migrator::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres"),
    )
    .await
    .unwrap();
    migrator.run(&pool).await.unwrap();
    vacuum(&mut conn).await;
    let kept: Vec<i64> = sqlx::query_scalar("SELECT live FROM front_door_counts ORDER BY counted")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, vec![PARKED, CEREMONIES]);
    measure(&mut conn, "after (0655)", PARK_AFTER, START_AFTER).await;
    churn(&mut conn).await;
    measure(&mut conn, "after (0655), churned", PARK_AFTER, START_AFTER).await;
}
