//! Cases, one module per area. Each case is an `async fn(TestStore)` registered with
//! `on_both_backends!`. Built into both test binaries: `tests/store.rs` makes the SQLite
//! variants, `tests/oracles` the PostgreSQL ones (see the binaries' `backend_variant!`).

mod account;
mod app_copies;
mod app_encryption;
mod apps;
mod audit;
mod bulk;
mod enrollment;
mod group_versions;
mod groups;
mod import;
mod last_admin;
pub(crate) mod metadata_import;
mod mfa;
mod offboarding;
mod parked;
mod provisioning;
mod races;
mod removals;
mod replay;
mod roles;
mod scim_groups;
mod sign_in;
mod signing_keys;
mod throttle;
mod tile_login_url;
mod user_words;
mod users;
mod webauthn;

use latchkey_idp::directory::{Group, NewGroup, NewUser, User};
use latchkey_idp::ids::{GroupId, UserId};
use latchkey_idp::{Actor, Store};

/// The actor the tests act as.
pub fn admin() -> Actor {
    Actor::cli("tester")
}

/// A user `name` with the address `name@example.org`, made by [`admin`]: the seeding most
/// cases start from, written once.
pub async fn user(store: &Store, name: &str) -> User {
    let email = format!("{name}@example.org");
    store
        .users()
        .create(&admin(), NewUser::new(name, &email))
        .await
        .unwrap()
}

/// A group made by [`admin`].
pub async fn group(store: &Store, name: &str) -> Group {
    store
        .groups()
        .create(&admin(), NewGroup::new(name))
        .await
        .unwrap()
}

/// Makes a user a member of a group, as [`admin`].
pub async fn join(store: &Store, group: GroupId, user: UserId) {
    store
        .groups()
        .add_member(&admin(), group, user)
        .await
        .unwrap();
}

/// Everything observable in a store (export without its timestamp, plus the audit count), to
/// prove that a refused change left it exactly as it was.
pub async fn snapshot(store: &Store) -> (serde_json::Value, i64) {
    let mut export = serde_json::to_value(store.export().await.unwrap()).unwrap();
    export.as_object_mut().unwrap().remove("exported_at");
    (export, store.audit().count().await.unwrap())
}

/// Fills `table` with `rows` live anonymous rows spread over many IPv6 /48s, by `insert`
/// (a statement taking the row number `n` from a generated range and `$2`, a ~1 KiB
/// filler), then has the database gather its statistics: a table a flood has filled, as the
/// planner sees it.
pub async fn flood(t: &crate::support::TestStore, table: &str, rows: i64, insert: &'static str) {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    let numbers = "WITH RECURSIVE numbers(n) AS \
                   (SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < $1) ";
    let sql = format!("{numbers}{insert}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(rows)
        .bind("x".repeat(1024))
        .execute(&mut conn)
        .await
        .unwrap();
    if t.url.starts_with("sqlite") {
        sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
        return;
    }
    // As autovacuum leaves a table between bursts: its pages marked all-visible, which a
    // count read off an index needs. A vacuum that ran while another connection (the
    // store's own) held a snapshot marks none, so it goes again until they all are.
    sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
    for _ in 0..50 {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM {table}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let (pages, visible): (i32, i32) =
            sqlx::query_as("SELECT relpages, relallvisible FROM pg_class WHERE relname = $1")
                .bind(table)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        if pages == visible {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{table}: vacuum never marked every page all-visible");
}

/// Every read of `table` in `plan` (PostgreSQL's `EXPLAIN`, SQLite's `EXPLAIN QUERY PLAN`)
/// is a search of an index's range for its conditions, never a scan of the table or of a
/// whole index filtered row by row (an index in another collation than the comparison's is
/// read that way), and `index` is one of them.
pub fn reads_only_indexes(plan: &str, table: &str, index: &str) {
    for line in plan.lines() {
        assert!(
            !line.contains(&format!("Seq Scan on {table}"))
                && !line.contains(&format!("SCAN {table}"))
                && !line.trim_start().starts_with("Filter:"),
            "{table} is read without searching an index:\n{plan}"
        );
    }
    assert!(plan.contains(index), "{index} unused:\n{plan}");
}

/// The anonymous total `door` keeps (read as the admission reads it) and the anonymous rows
/// its table holds, counted over the table (expired ones not yet deleted included: the kept
/// total counts a row until it is deleted).
pub async fn kept_and_counted(
    t: &crate::support::TestStore,
    door: latchkey_idp::store::front_door::FrontDoor,
) -> (i64, i64) {
    use latchkey_idp::store::front_door::FrontDoor;
    use sqlx::Connection;
    let kept = door.total(&t.store).await.unwrap();
    let sql = match door {
        FrontDoor::Parked => {
            "SELECT COUNT(*) FROM sso_parked_requests WHERE substr(owner, 1, 5) = 'addr:'"
        }
        FrontDoor::Ceremonies => "SELECT COUNT(*) FROM webauthn_challenges WHERE user_id IS NULL",
    };
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    let counted: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    (kept, counted)
}

/// How many times `plan` reads `table` (each a step of its own).
pub fn reads_of(plan: &str, table: &str) -> usize {
    plan.lines()
        .filter(|line| !line.trim_start().starts_with("Insert on"))
        .filter(|line| {
            line.contains(&format!(" on {table} ")) || line.contains(&format!(" {table} USING"))
        })
        .count()
}

/// `plan` without its steps that read `front_door_counts`: a table of one row per front-door
/// table, read whole or by its key as the planner likes (two rows: the same either way).
/// What is left is how the statement reads the table it admits into, for
/// [`reads_only_indexes`].
pub fn without_kept_totals(plan: &str) -> String {
    let mut kept = Vec::new();
    let mut skipping: Option<usize> = None;
    for line in plan.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(at) = skipping {
            if indent > at && !line.trim_start().starts_with("->") {
                continue;
            }
            skipping = None;
        }
        if line.contains("front_door_counts") {
            skipping = Some(indent);
            continue;
        }
        kept.push(line);
    }
    kept.join("\n")
}
