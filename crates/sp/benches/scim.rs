//! SCIM creates into the SP toolkit (`ScimService::create_user`: schema check, the JIT
//! engine's plan and one write transaction with its audit event) on SQLite and on
//! PostgreSQL, each beside the floor under it measured in the same run on the same database:
//! a write transaction of one single-row insert.
//!
//! Run: `cargo bench -p latchkey-sp --bench scim` (PostgreSQL from the testkit's throwaway
//! cluster: `initdb` and `postgres` on `PATH`, or `LATCHKEY_PG_URL`). The two are timed
//! round-robin in slices (creates, then floor writes, again) for `SCIM_BENCH_SECONDS` (10)
//! per backend, so both see the same load on a shared machine; the ratio is what compares.
// Bench set-up works on fixed inputs; a failure there should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use latchkey_sp::jit::{Contract, JitEngine};
use latchkey_sp::scim::service::{Actor, ScimService, ScimSettings, TokenSettings, token_sha256};
use latchkey_sp::store::{Database, SqlAccountStore};
use serde_json::json;
use time::macros::datetime;

const IDP: &str = "https://idp.example.org/saml";
const SLICE: usize = 20;

const CONTRACT: &str = r#"
identity = { source = "persistent_name_id" }
default_role = "member"

[[fields]]
attribute = "email"
field = "email"
ownership = "idp"
required = true

[[fields]]
attribute = "displayName"
field = "display_name"
ownership = "idp"

[[roles]]
grant = "admin"
when = { attribute = "groups", contains = "admins" }
"#;

struct Totals {
    creates: u64,
    create_time: Duration,
    floors: u64,
    floor_time: Duration,
}

async fn run(name: &str, url: &str, seconds: u64) {
    let db = Database::connect(url).await.unwrap();
    let engine = JitEngine::new(
        Contract::from_toml(CONTRACT).unwrap(),
        SqlAccountStore::new(db.clone()),
    );
    let settings = ScimSettings {
        tokens: vec![TokenSettings {
            name: "bench".into(),
            sha256: token_sha256("bench-token-0123456789"),
        }],
        base_url: None,
        idp_entity_id: None,
        name_id: "userName".into(),
        attributes: Default::default(),
    };
    let service = ScimService::new(engine, &settings, IDP, "https://app.example/scim/v2").unwrap();
    sqlx::query("CREATE TABLE scim_bench_floor (id TEXT PRIMARY KEY NOT NULL, v TEXT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let actor = Actor("bench".into());
    let now = datetime!(2026-12-05 22:00 UTC);
    let mut t = Totals {
        creates: 0,
        create_time: Duration::ZERO,
        floors: 0,
        floor_time: Duration::ZERO,
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        let start = Instant::now();
        for _ in 0..SLICE {
            n += 1;
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("user{n}"),
                "displayName": format!("User {n}"),
                "emails": [{"value": format!("user{n}@example.org"), "primary": true}],
                "active": true,
            });
            service.create_user(&actor, &body, now).await.unwrap();
        }
        t.create_time += start.elapsed();
        t.creates += SLICE as u64;
        let start = Instant::now();
        for i in 0..SLICE {
            let mut tx = db.pool().begin().await.unwrap();
            sqlx::query("INSERT INTO scim_bench_floor (id, v) VALUES ($1, $2)")
                .bind(format!("{n}-{i}"))
                .bind("x")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        t.floor_time += start.elapsed();
        t.floors += SLICE as u64;
    }
    let per = |d: Duration, k: u64| d.as_secs_f64() / k as f64;
    let create = per(t.create_time, t.creates);
    let floor = per(t.floor_time, t.floors);
    println!(
        "{name}: {} SCIM creates, {:.0} us each = {:.0}/s; one-row write transaction {:.0} us = \
         {:.0}/s; a create costs {:.1} floor transactions",
        t.creates,
        create * 1e6,
        1.0 / create,
        floor * 1e6,
        1.0 / floor,
        create / floor
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = std::env::var("SCIM_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("sp.db").display());
    run("SQLite (file, WAL)", &sqlite, seconds).await;
    let pg = latchkey_testkit::pg::fresh_database_url().await;
    run("PostgreSQL (throwaway cluster)", &pg, seconds).await;
}
