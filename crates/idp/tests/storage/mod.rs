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
pub async fn flood(t: &crate::support::TestStore, table: &str, rows: i64, insert: &str) {
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

/// The anonymous total `door` keeps (read as the admission reads it, at `now`) and the live
/// anonymous rows its table holds at `now`, counted over the table (expired rows not yet
/// deleted count for neither).
pub async fn kept_and_counted(
    t: &crate::support::TestStore,
    door: latchkey_idp::store::front_door::FrontDoor,
    now: time::OffsetDateTime,
) -> (i64, i64) {
    use latchkey_idp::store::front_door::FrontDoor;
    use sqlx::Connection;
    let kept = door.total(&t.store, now).await.unwrap();
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    let counted: i64 = match door {
        FrontDoor::Parked => sqlx::query_scalar(
            "SELECT COUNT(*) FROM sso_parked_requests \
             WHERE substr(owner, 1, 5) = 'addr:' AND expires_at > $1",
        )
        .bind(
            now.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
            ))
            .unwrap(),
        )
        .fetch_one(&mut conn)
        .await
        .unwrap(),
        FrontDoor::Ceremonies => sqlx::query_scalar(
            "SELECT COUNT(*) FROM webauthn_challenges WHERE user_id IS NULL AND expires_at > $1",
        )
        .bind(i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap())
        .fetch_one(&mut conn)
        .await
        .unwrap(),
    };
    conn.close().await.unwrap();
    (kept, counted)
}

/// Every count row `door` keeps (scope, name, expiry, live) is what its table holds, and
/// nothing else is kept (no row at 0, none for rows that are gone): the rows the table
/// would give grouped by owner, by /48 (`wide`) and for all anonymous ones, per expiry.
pub async fn counts_follow_the_table(
    t: &crate::support::TestStore,
    door: latchkey_idp::store::front_door::FrontDoor,
) {
    use latchkey_idp::store::front_door::FrontDoor;
    use sqlx::Connection;
    let (table, counts) = (door.table(), door.counts());
    let anonymous = match door {
        FrontDoor::Parked => "substr(owner, 1, 5) = 'addr:'",
        FrontDoor::Ceremonies => "user_id IS NULL",
    };
    let kept = format!(
        "SELECT scope, name, CAST(expires_at AS TEXT), CAST(live AS BIGINT) FROM {counts} \
         ORDER BY 1, 2, 3"
    );
    let grouped = format!(
        "SELECT scope, name, CAST(expires_at AS TEXT), CAST(COUNT(*) AS BIGINT) FROM \
         (SELECT 'owner' AS scope, owner AS name, expires_at FROM {table} WHERE owner <> '' \
          UNION ALL SELECT 'wide', wide, expires_at FROM {table} WHERE wide IS NOT NULL \
          UNION ALL SELECT 'all', '', expires_at FROM {table} WHERE {anonymous}) AS m \
         GROUP BY scope, name, expires_at ORDER BY 1, 2, 3"
    );
    async fn read(
        conn: &mut sqlx::AnyConnection,
        sql: String,
    ) -> Vec<(String, String, String, i64)> {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(conn)
            .await
            .unwrap()
    }
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    let (kept, grouped) = (read(&mut conn, kept).await, read(&mut conn, grouped).await);
    assert_eq!(kept, grouped, "{counts} is not what {table} holds");
    conn.close().await.unwrap();
}

/// Every read of the kept counts in `plan` is a search of their primary key (never a scan),
/// and the counted `table` is not read at all (its insert aside).
pub fn counts_only_by_key(plan: &str, door: latchkey_idp::store::front_door::FrontDoor) {
    let counts = door.counts();
    assert!(plan.contains(counts), "{counts} unused:\n{plan}");
    for line in plan.lines() {
        assert!(
            !line.contains(&format!("Seq Scan on {counts}"))
                && !line.contains(&format!("SCAN {counts}"))
                && !line.trim_start().starts_with("Filter:"),
            "{counts} is read without searching its key:\n{plan}"
        );
    }
    let table = door.table();
    assert!(
        reads_of(plan, table) == 0
            && !plan.contains(&format!("SCAN {table}"))
            && !plan.contains(&format!("SEARCH {table}")),
        "{table} is read to admit:\n{plan}"
    );
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
