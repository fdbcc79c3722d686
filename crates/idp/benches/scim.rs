//! The SCIM client: the time to deactivate one user in 10 connected applications (beside 1,
//! in the same run), and a reconciliation of 10,000 users (beside only listing them).
//!
//! Run: `cargo bench -p latchkey-idp --bench scim`. SQLite in a temporary directory; each
//! application is the in-memory SCIM server of the store tests (tests/support/fake_scim.rs)
//! on loopback, so the HTTP, JSON and outbox costs are ours and the application's work is
//! next to nothing. A deactivation is timed from `Users::suspend` (the outbox rows written in
//! its transaction) until every application holds the user inactive, the worker driven by
//! `run_once` as `latchkey serve`'s loop does after a wake-up. `SCIM_BENCH_USERS` (default
//! 10000) sets the reconciliation's size.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/fake_scim.rs"]
mod fake_scim;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_scim::{Fake, TOKEN};
use latchkey_idp::apps::NewApplication;
use latchkey_idp::config::PasswordConfig;
use latchkey_idp::directory::NewGroup;
use latchkey_idp::keys::{Kek, KekSource};
use latchkey_idp::provisioning::worker::{Worker, WorkerSettings};
use latchkey_idp::provisioning::{NewConnection, OnRemove, sync};
use latchkey_idp::{Actor, Store};

async fn store(dir: &std::path::Path) -> Store {
    let cheap = PasswordConfig {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        ..PasswordConfig::default()
    };
    let url = latchkey_idp::config::sqlite_url(&dir.join("latchkey.db"));
    Store::open_url(&url, None, cheap).await.unwrap()
}

async fn connect(s: &Store, kek: &Kek, app: latchkey_idp::ids::AppId, url: &str) {
    s.provisioning()
        .connect(
            &Actor::system(),
            kek,
            app,
            NewConnection {
                base_url: url.to_owned(),
                token: zeroize::Zeroizing::new(TOKEN.to_owned()),
                on_remove: OnRemove::Deactivate,
            },
        )
        .await
        .unwrap();
}

async fn drain(w: &Worker) {
    while w.run_once().await.unwrap() > 0 {}
}

/// Median time (over `rounds` suspend/resume pairs) until every fake holds the user inactive.
async fn deactivation(apps: usize, rounds: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    let kek = Arc::new(Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap());
    let admin = Actor::system();
    let staff = s
        .groups()
        .create(&admin, NewGroup::new("staff"))
        .await
        .unwrap();
    let alice = s
        .users()
        .create(
            &admin,
            latchkey_idp::directory::NewUser::new("alice", "a@example.org"),
        )
        .await
        .unwrap();
    s.groups()
        .add_member(&admin, staff.id, alice.id)
        .await
        .unwrap();
    let mut fakes = Vec::new();
    for i in 0..apps {
        let (fake, url) = Fake::start().await;
        let entity = format!("https://app{i}.example.org");
        let app = NewApplication::new(&entity, format!("App {i}"), format!("{entity}/acs"));
        let app = s.apps().create(&admin, app).await.unwrap();
        s.apps().assign(&admin, app.id, staff.id).await.unwrap();
        connect(&s, &kek, app.id, &url).await;
        fakes.push(fake);
    }
    let w = Worker::new(s.clone(), Arc::clone(&kek), WorkerSettings::default());
    drain(&w).await;
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        s.users().suspend(&admin, alice.id).await.unwrap();
        drain(&w).await;
        let took = started.elapsed();
        assert!(fakes.iter().all(|f| f.active("alice") == Some(false)));
        times.push(took);
        s.users().resume(&admin, alice.id).await.unwrap();
        drain(&w).await;
    }
    times.sort();
    times[times.len() / 2]
}

async fn reconciliation(users: usize) {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    let kek = Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap();
    let admin = Actor::system();
    s.groups()
        .create(&admin, NewGroup::new("staff"))
        .await
        .unwrap();
    let mut csv = String::from("username,email,groups\n");
    for i in 0..users {
        csv.push_str(&format!("user{i:05},user{i:05}@example.org,staff\n"));
    }
    s.users().import_csv(&admin, csv.as_bytes()).await.unwrap();
    let (fake, url) = Fake::start().await;
    let app = NewApplication::new(
        "https://big.example.org",
        "Big",
        "https://big.example.org/acs",
    );
    let app = s.apps().create(&admin, app).await.unwrap();
    let staff = s.groups().lookup("staff").await.unwrap();
    s.apps().assign(&admin, app.id, staff.id).await.unwrap();
    connect(&s, &kek, app.id, &url).await;
    let target = s
        .provisioning()
        .target(&kek, app.id, &Default::default())
        .await
        .unwrap();

    let t = Instant::now();
    let plan = sync::run(&s, &target, &app, true).await.unwrap();
    let dry_empty = t.elapsed();
    assert_eq!(plan.differences.len(), users);
    let t = Instant::now();
    let applied = sync::run(&s, &target, &app, false).await.unwrap();
    let apply = t.elapsed();
    assert!(applied.differences.iter().all(|d| d.error.is_none()));
    assert_eq!(fake.users.lock().unwrap().len(), users);
    let t = Instant::now();
    let again = sync::run(&s, &target, &app, true).await.unwrap();
    let in_line = t.elapsed();
    assert!(
        again.differences.is_empty(),
        "{:?}",
        again.differences.first()
    );
    // Baseline: only listing the application's users (the paged GETs a run starts with).
    let t = Instant::now();
    let mut start = 1;
    loop {
        let page = target.client.list(start, sync::PAGE).await.unwrap();
        start += page.users.len() as u64;
        if page.users.is_empty() || start > page.total {
            break;
        }
    }
    let listing = t.elapsed();
    println!("reconciliation of {users} users (SQLite, one fake SCIM server on loopback):");
    println!("  plan, application empty ({users} creates): {dry_empty:?}");
    println!("  apply ({users} POSTs):                     {apply:?}");
    println!(
        "  plan, application in line (0 changes):   {in_line:?}  = {:.1} x listing alone ({listing:?})",
        in_line.as_secs_f64() / listing.as_secs_f64()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let one = deactivation(1, 21).await;
        let ten = deactivation(10, 21).await;
        println!("deactivate one user (suspend -> inactive everywhere), median of 21:");
        println!("  1 application:   {one:?}");
        println!(
            "  10 applications: {ten:?}  = {:.2} x one",
            ten.as_secs_f64() / one.as_secs_f64()
        );
        let users = std::env::var("SCIM_BENCH_USERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000);
        reconciliation(users).await;
    });
}
