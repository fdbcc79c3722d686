//! `latchkey bench list`: lists and searches at scale, through the API and the console.
//!
//! Seeds a fresh store with many users (in a company-wide group and a department each),
//! a few applications and a long audit history, with the store's bulk loaders (the rows
//! and audit lines the domain writes, in multi-row statements); starts `latchkey serve` on
//! it and measures, over HTTP, every listing an admin uses: the first page, a deep page by
//! cursor, searches, each audit filter, a group's members; then walks every page of the
//! users and of the audit log, and reads the server's memory before and after the walk.
//!
//! The targets are issue #12's: every page under 20 ms at the 99th percentile, a walk whose
//! pages cost the same at its end as at its start, and the server's RSS after the walk
//! under idle + 20 MiB.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use latchkey_idp::apps::NewApplication;
use latchkey_idp::audit::{Actor, Change};
use latchkey_idp::console::{Holder, Role};
use latchkey_idp::directory::{AttributeValue, NewGroup, NewUser, User};
use latchkey_idp::session::Sessions;
use latchkey_idp::tokens::{ApiTokens, TokenScope};
use latchkey_idp::{Clock as _, Store, SystemClock};
use reqwest::Client;
use serde::Serialize;
use serde_json::json;

use super::Common;
use super::client::{Stats, http};
use super::server::Prepared;
use crate::stdout::outln;

/// Options of `latchkey bench list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    common: Common,
    /// Users to seed (each in the company-wide group and one of the departments).
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Audit lines of sign-in history to seed, on top of the lines the seeding itself
    /// writes (one per user and per membership).
    #[arg(long, default_value_t = 1_000_000)]
    audit: usize,
    /// Requests per measured page.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Print the report as one JSON document instead of tables.
    #[arg(long)]
    json: bool,
    /// Keep the data directory afterwards (to look at the database's plans).
    #[arg(long)]
    keep: bool,
}

/// The aim for every page, at the 99th percentile.
const TARGET_P99_MS: f64 = 20.0;
/// The aim for the server's memory after walking every page, above idle.
const TARGET_RSS_GROWTH_KIB: u64 = 20 * 1024;
/// A walk is linear when a page at its end costs at most this many times one at its start.
const TARGET_WALK_RATIO: f64 = 1.5;
/// Departments (groups of about users/DEPARTMENTS members each).
const DEPARTMENTS: usize = 100;
/// Applications, each opened by a department.
const APPS: usize = 10;
/// Users per bulk transaction while seeding.
const SEED_CHUNK: usize = 10_000;
/// Days of sign-in history the seeded audit lines span.
const HISTORY_DAYS: i64 = 90;

const GIVEN: [&str; 24] = [
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Dennis",
    "Edsger",
    "Frances",
    "Grace",
    "Hedy",
    "Ivan",
    "Joan",
    "John",
    "Ken",
    "Leslie",
    "Margaret",
    "Niklaus",
    "Radia",
    "Shafi",
    "Sophie",
    "Tim",
    "Vint",
    "Whitfield",
    "Xavier",
    "Yukihiro",
];
const FAMILY: [&str; 20] = [
    "Allen",
    "Backus",
    "Conway",
    "Dijkstra",
    "Engelbart",
    "Floyd",
    "Goldwasser",
    "Hopper",
    "Iverson",
    "Kay",
    "Lamport",
    "Liskov",
    "Lovelace",
    "McCarthy",
    "Perlman",
    "Ritchie",
    "Shannon",
    "Thompson",
    "Wirth",
    "Zuse",
];

/// The seeded user number `i`: `given.family<i>`, so usernames share prefixes the way a
/// real directory's do.
fn person(i: usize) -> NewUser {
    let given = GIVEN[i % GIVEN.len()];
    let family = FAMILY[(i / GIVEN.len()) % FAMILY.len()];
    let username = format!("{}.{}{i}", given.to_lowercase(), family.to_lowercase());
    let mut new = NewUser::new(&username, format!("{username}@example.org"));
    new.given_name = Some(given.to_owned());
    new.family_name = Some(family.to_owned());
    new.display_name = Some(format!("{given} {family}"));
    new.attributes
        .insert("employeeNumber".into(), AttributeValue::One(format!("{i}")));
    new
}

/// What the seeding made, for the requests.
struct Seeded {
    cookie: String,
    token: String,
    /// A token of scope `scim`, as an HR feed or Entra holds.
    scim_token: String,
    /// A user in the middle of the directory.
    sample: User,
    /// The company-wide group's ID, and one department's.
    staff: String,
    department: String,
    /// An application's ID and name.
    app_id: String,
    app_name: String,
    audit_rows: i64,
    seconds: f64,
    /// Of which the memberships (`Groups::add_members`: every user into all staff, then
    /// into a department).
    membership_seconds: f64,
}

async fn seed(store: &Store, args: &ListArgs) -> anyhow::Result<Seeded> {
    let start = Instant::now();
    let actor = Actor::cli("bench");
    let admin = store
        .users()
        .create(
            &actor,
            NewUser::new("bench-admin", "bench-admin@example.org"),
        )
        .await?;
    store
        .roles()
        .grant(&actor, Role::Admin, Holder::User(admin.id))
        .await?;
    let (session, _) = Sessions::new(store)
        .create(&admin, store.now(), time::Duration::hours(8))
        .await?;
    let (_, token) = ApiTokens::new(store).create(&actor, "bench").await?;
    let (_, scim_token) = ApiTokens::new(store)
        .create_scoped(&actor, "bench-feed", TokenScope::Scim)
        .await?;

    let staff = store
        .groups()
        .create(&actor, NewGroup::new("staff"))
        .await?;
    let mut departments = Vec::with_capacity(DEPARTMENTS);
    for d in 0..DEPARTMENTS {
        departments.push(
            store
                .groups()
                .create(&actor, NewGroup::new(format!("dept-{d:02}")))
                .await?,
        );
    }
    let mut apps = Vec::with_capacity(APPS);
    for a in 0..APPS {
        let app = store
            .apps()
            .create(
                &actor,
                NewApplication::new(
                    format!("https://app{a}.example.com/saml/metadata"),
                    format!("App {a}"),
                    format!("https://app{a}.example.com/saml/acs"),
                ),
            )
            .await?;
        store
            .apps()
            .assign(&actor, app.id, departments[a % DEPARTMENTS].id)
            .await?;
        apps.push(app);
    }

    let mut users = Vec::with_capacity(args.users);
    for first in (0..args.users).step_by(SEED_CHUNK) {
        let news = (first..(first + SEED_CHUNK).min(args.users))
            .map(person)
            .collect();
        users.extend(store.users().create_many(&actor, news).await?);
    }
    let memberships = Instant::now();
    for chunk in users.chunks(SEED_CHUNK) {
        store.groups().add_members(&actor, &staff, chunk).await?;
    }
    for (d, group) in departments.iter().enumerate() {
        let members: Vec<User> = users.iter().skip(d).step_by(DEPARTMENTS).cloned().collect();
        store.groups().add_members(&actor, group, &members).await?;
    }
    let membership_seconds = memberships.elapsed().as_secs_f64();

    // Sign-in history, oldest first, evenly over the last HISTORY_DAYS: for every 20 lines,
    // 9 sign-ins, 9 assertions, a failed sign-in and an admin's change.
    let now = store.now();
    let span = time::Duration::days(HISTORY_DAYS);
    let step = span / i32::try_from(args.audit.max(1)).unwrap_or(i32::MAX);
    let admin_actor = Actor::person(&admin);
    let mut lines = Vec::with_capacity(SEED_CHUNK);
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    for j in 0..args.audit {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let Some(user) = users.get(usize::try_from(rng).unwrap_or(0) % users.len().max(1)) else {
            break;
        };
        let at = now - span + step * i32::try_from(j).unwrap_or(i32::MAX);
        let app = &apps[j % APPS];
        let (actor, change) = match j % 20 {
            0..9 => (
                Actor::person(user),
                Change {
                    action: "login.success",
                    target_kind: "user",
                    target_id: user.id.to_string(),
                    target_name: user.username.clone(),
                    before: None,
                    after: Some(json!({
                        "address": format!("10.{}.{}.{}", j % 250, (j / 250) % 250, j % 7),
                        "session_index": format!("_s{j:016x}"),
                        "methods": ["password"],
                    })),
                },
            ),
            9..18 => (
                Actor::person(user),
                Change {
                    action: "sso.assertion",
                    target_kind: "app",
                    target_id: app.id.to_string(),
                    target_name: app.settings.entity_id.clone(),
                    before: None,
                    after: Some(json!({
                        "user": user.username,
                        "name_id": user.email,
                        "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                        "attributes": ["mail", "displayName"],
                        "acs": format!("https://app{}.example.com/saml/acs", j % APPS),
                        "in_response_to": format!("_r{j:016x}"),
                        "assertion_id": format!("_a{j:016x}"),
                    })),
                },
            ),
            18 => (
                Actor::new(format!("anonymous:10.0.{}.{}", j % 250, j % 7)),
                Change {
                    action: "login.failure",
                    target_kind: "user",
                    target_id: user.id.to_string(),
                    target_name: user.username.clone(),
                    before: None,
                    after: Some(json!({ "reason": "wrong_password" })),
                },
            ),
            _ => (
                admin_actor.clone(),
                Change {
                    action: "user.update",
                    target_kind: "user",
                    target_id: user.id.to_string(),
                    target_name: user.username.clone(),
                    before: Some(json!({ "display_name": user.display_name })),
                    after: Some(json!({ "display_name": user.username })),
                },
            ),
        };
        lines.push((actor, at, change));
        if lines.len() == SEED_CHUNK {
            store
                .audit()
                .record_many(std::mem::take(&mut lines))
                .await?;
        }
    }
    store.audit().record_many(lines).await?;
    let audit_rows = store.audit().count().await?;
    let sample = users
        .get(users.len() / 2)
        .cloned()
        .context("--users must be at least 1")?;
    let app = apps.first().context("no application")?;
    Ok(Seeded {
        cookie: format!("latchkey_session={}", session.expose()),
        token: format!("Bearer {}", token.expose()),
        scim_token: format!("Bearer {}", scim_token.expose()),
        sample,
        staff: staff.id.to_string(),
        department: departments[DEPARTMENTS / 2].id.to_string(),
        app_id: app.id.to_string(),
        app_name: app.settings.name.clone(),
        audit_rows,
        seconds: start.elapsed().as_secs_f64(),
        membership_seconds,
    })
}

/// Which door a request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Surface {
    Api,
    Console,
    Scim,
}

/// The server and how to be let in.
struct Target {
    http: Client,
    base: String,
    cookie: String,
    token: String,
    scim_token: String,
}

impl Target {
    /// GETs `path` through `surface`; the body of a 200, else an error naming the status.
    async fn get(&self, surface: Surface, path: &str) -> anyhow::Result<String> {
        let request = self.http.get(format!("{}{path}", self.base));
        let request = match surface {
            Surface::Api => request.header("Authorization", &self.token),
            Surface::Console => request.header("Cookie", &self.cookie),
            Surface::Scim => request.header("Authorization", &self.scim_token),
        };
        let response = request.send().await?;
        let status = response.status();
        let body = response.text().await?;
        if status != reqwest::StatusCode::OK {
            bail!(
                "GET {path}: {status}: {}",
                body.chars().take(200).collect::<String>()
            );
        }
        Ok(body)
    }

    /// `n` GETs of `path` one after another: latencies of the answers that were 200.
    async fn repeat(&self, surface: Surface, path: &str, n: usize) -> Stats {
        let mut stats = Stats::default();
        let start = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            match self.get(surface, path).await {
                Ok(_) => stats.latencies.push(t.elapsed()),
                Err(e) => {
                    stats.errors += 1;
                    stats.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        stats.wall = start.elapsed();
        stats.latencies.sort();
        stats
    }
}

impl Target {
    /// `n` SCIM PATCHes of the group `group` taking `user` out and putting them back in turn,
    /// as a provisioning client sends each membership change. With `if_match`, each carries
    /// the group's current ETag (read first without the members, not timed), which the server
    /// checks: before migration 0630 that read and hashed every member, seconds for all staff.
    async fn member_changes(&self, group: &str, user: &str, n: usize, if_match: bool) -> Stats {
        let path = format!("{}/scim/v2/Groups/{group}", self.base);
        let mut stats = Stats::default();
        let start = Instant::now();
        for i in 0..n {
            let op = if i % 2 == 0 {
                json!({"op": "remove", "path": format!("members[value eq \"{user}\"]")})
            } else {
                json!({"op": "add", "path": "members", "value": [{"value": user}]})
            };
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [op],
            });
            let result = async {
                let mut request = self
                    .http
                    .patch(&path)
                    .header("Authorization", &self.scim_token)
                    .header("Content-Type", "application/scim+json");
                if if_match {
                    let current = self
                        .get(
                            Surface::Scim,
                            &format!("/scim/v2/Groups/{group}?excludedAttributes=members"),
                        )
                        .await?;
                    let current: serde_json::Value = serde_json::from_str(&current)?;
                    let tag = current["meta"]["version"].as_str().unwrap_or_default();
                    request = request.header("If-Match", tag);
                }
                let t = Instant::now();
                let response = request.body(body.to_string()).send().await?;
                let status = response.status();
                response.bytes().await?;
                if !status.is_success() {
                    bail!("PATCH {path}: {status}");
                }
                anyhow::Ok(t.elapsed())
            }
            .await;
            match result {
                Ok(took) => stats.latencies.push(took),
                Err(e) => {
                    stats.errors += 1;
                    stats.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        stats.wall = start.elapsed();
        stats.latencies.sort();
        stats
    }
}

/// One measured page.
#[derive(Debug, Serialize)]
struct Figure {
    name: &'static str,
    surface: Surface,
    path: String,
    requests: usize,
    errors: u64,
    first_error: Option<String>,
    p50_ms: f64,
    p99_ms: f64,
    target_ms: f64,
    met: bool,
}

fn figure(
    name: &'static str,
    surface: Surface,
    path: String,
    requests: usize,
    stats: &Stats,
) -> Figure {
    let p99 = ms(stats.percentile(0.99));
    Figure {
        name,
        surface,
        requests,
        errors: stats.errors,
        first_error: stats.first_error.clone(),
        p50_ms: ms(stats.percentile(0.50)),
        p99_ms: p99,
        target_ms: TARGET_P99_MS,
        met: stats.errors == 0 && p99 < TARGET_P99_MS,
        path,
    }
}

/// One walk over every page of a listing.
#[derive(Debug, Serialize)]
struct Walk {
    name: &'static str,
    surface: Surface,
    pages: usize,
    items: usize,
    seconds: f64,
    /// Mean time of a page in the first and in the last tenth of the walk.
    first_tenth_ms: f64,
    last_tenth_ms: f64,
    /// Mean size of a page there: the audit log's oldest lines (the seeding's own, with a
    /// whole user in each) are larger than its newest, so time per KiB is compared too.
    first_tenth_kib: f64,
    last_tenth_kib: f64,
    /// Last over first tenth, per page.
    ratio: f64,
    /// Last over first tenth, per KiB of answer.
    ratio_per_kib: f64,
    target_ratio: f64,
    met: bool,
}

/// The whole report.
#[derive(Debug, Serialize)]
struct Report {
    backend: String,
    users: usize,
    audit_rows: i64,
    seeding_seconds: f64,
    /// Of which the memberships.
    membership_seconds: f64,
    load_before: String,
    load_after: String,
    figures: Vec<Figure>,
    walks: Vec<Walk>,
    rss_idle_kib: u64,
    rss_after_walk_kib: u64,
    rss_peak_kib: u64,
    rss_growth_target_kib: u64,
    rss_met: bool,
}

pub async fn run(args: ListArgs) -> anyhow::Result<()> {
    let prepared = Prepared::new(&args.common, "\n[console]\nrequire_mfa = false\n")?;
    let store = Store::open(&prepared.config).await?;
    let backend = format!("{:?}", store.backend()).to_lowercase();
    if !args.json {
        outln!(
            "seeding {} users and {} audit lines on {backend}...",
            args.users,
            args.audit
        )?;
    }
    let seeded = seed(&store, &args).await?;
    // The pages are timed in the steady state a directory is searched in, not in the
    // minute after a bulk load, before autovacuum has run (PostgreSQL; BENCHMARKS.md).
    store.settle_after_bulk_load().await?;
    store.close().await;
    let server = prepared.launch(String::new())?;
    let target = Target {
        http: http()?,
        base: server.base().to_owned(),
        cookie: seeded.cookie.clone(),
        token: seeded.token.clone(),
        scim_token: seeded.scim_token.clone(),
    };
    let load_before = load();
    if !args.json {
        outln!(
            "seeded {} users, {} audit rows in {:.1} s (memberships {:.1} s); server pid {} at {}; \
             load {load_before}",
            args.users,
            seeded.audit_rows,
            seeded.seconds,
            seeded.membership_seconds,
            server.pid(),
            server.base()
        )?;
    }
    let pages = pages(&seeded);
    // Idle means: started, and every listing has run once.
    for (_, surface, path) in &pages {
        target.get(*surface, path).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = server.rss_kib()?;

    let mut walks = Vec::new();
    let (walk, middle_api) = walk_api(&target, "users", "/api/v1/users?limit=50").await?;
    walks.push(walk);
    let (walk, _) = walk_api(&target, "audit", "/api/v1/audit?limit=500").await?;
    walks.push(walk);
    let (walk, middle_console) = walk_console(&target).await?;
    walks.push(walk);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = server.rss_kib()?;
    let rss_peak = server.peak_rss_kib()?;

    let mut all = pages;
    all.push((
        "users: middle page by cursor",
        Surface::Api,
        format!("/api/v1/users?limit=50&cursor={middle_api}"),
    ));
    all.push((
        "users: middle page by cursor",
        Surface::Console,
        format!("/admin/users?after={middle_console}"),
    ));
    let mut figures = Vec::with_capacity(all.len());
    for (name, surface, path) in all {
        let stats = target.repeat(surface, &path, args.requests).await;
        figures.push(figure(name, surface, path, args.requests, &stats));
    }
    // SCIM membership changes to the company-wide group (every user a member).
    let sample = seeded.sample.id.to_string();
    let stats = target
        .member_changes(&seeded.staff, &sample, args.requests, false)
        .await;
    figures.push(figure(
        "SCIM PATCH: a member of all staff",
        Surface::Scim,
        format!("/scim/v2/Groups/{}", seeded.staff),
        args.requests,
        &stats,
    ));
    let stats = target
        .member_changes(&seeded.staff, &sample, args.requests, true)
        .await;
    figures.push(figure(
        "SCIM PATCH with If-Match: all staff",
        Surface::Scim,
        format!("/scim/v2/Groups/{}", seeded.staff),
        args.requests,
        &stats,
    ));
    let report = Report {
        backend,
        users: args.users,
        audit_rows: seeded.audit_rows,
        seeding_seconds: seeded.seconds,
        membership_seconds: seeded.membership_seconds,
        load_before,
        load_after: load(),
        figures,
        walks,
        rss_idle_kib: rss_idle,
        rss_after_walk_kib: rss_after,
        rss_peak_kib: rss_peak,
        rss_growth_target_kib: TARGET_RSS_GROWTH_KIB,
        rss_met: rss_after.saturating_sub(rss_idle) < TARGET_RSS_GROWTH_KIB,
    };
    if args.keep {
        let dir = server.stop_keeping_data();
        if !args.json {
            outln!("data kept in {}", dir.display())?;
        }
    } else {
        server.stop();
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print(&report)?;
    }
    Ok(())
}

/// The pages measured by name, door and path (the deep pages by cursor come from the walk).
fn pages(s: &Seeded) -> Vec<(&'static str, Surface, String)> {
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let exact = enc(&s.sample.username);
    let prefix = enc(s.sample.username.get(..3).unwrap_or("a"));
    // A family name: one in twenty users has each (5,000 at 100,000 users, 10,000 index
    // entries with the usernames' `lovelace123`), read by words in username order.
    let family = enc(s.sample.family_name.as_deref().unwrap_or("a"));
    let since = (SystemClock.now() - time::Duration::days(1)).date();
    let since_api = enc(&format!("{since}T00:00:00Z"));
    // One day a month back: a window in the middle of the log.
    let day = (SystemClock.now() - time::Duration::days(30)).date();
    let next = day.next_day().unwrap_or(day);
    let (day_api, next_api) = (
        enc(&format!("{day}T00:00:00Z")),
        enc(&format!("{next}T00:00:00Z")),
    );
    let user_label = enc(&format!("user:{}", s.sample.id));
    let mut out = vec![
        (
            "users: first page",
            Surface::Api,
            "/api/v1/users?limit=50".to_owned(),
        ),
        (
            "users: exact username",
            Surface::Api,
            format!("/api/v1/users?limit=50&q={exact}"),
        ),
        (
            "users: username prefix",
            Surface::Api,
            format!("/api/v1/users?limit=50&q={prefix}"),
        ),
        (
            "users: family name",
            Surface::Api,
            format!("/api/v1/users?limit=50&q={family}"),
        ),
        (
            "group members: all staff",
            Surface::Api,
            format!("/api/v1/groups/{}/members?limit=50", s.staff),
        ),
        (
            "group members: a department",
            Surface::Api,
            format!("/api/v1/groups/{}/members?limit=50", s.department),
        ),
        (
            "audit: newest",
            Surface::Api,
            "/api/v1/audit?limit=50".to_owned(),
        ),
        (
            "audit: by actor",
            Surface::Api,
            format!("/api/v1/audit?limit=50&actor={user_label}"),
        ),
        (
            "audit: by target (app)",
            Surface::Api,
            format!("/api/v1/audit?limit=50&target_id={}", s.app_id),
        ),
        (
            "audit: by event",
            Surface::Api,
            "/api/v1/audit?limit=50&action=login.failure".to_owned(),
        ),
        (
            "audit: since yesterday",
            Surface::Api,
            format!("/api/v1/audit?limit=50&since={since_api}"),
        ),
        (
            "audit: one day last month",
            Surface::Api,
            format!("/api/v1/audit?limit=50&since={day_api}&until={next_api}"),
        ),
    ];
    out.extend([
        (
            "users: first page",
            Surface::Console,
            "/admin/users".to_owned(),
        ),
        (
            "users: exact username",
            Surface::Console,
            format!("/admin/users?q={exact}"),
        ),
        (
            "users: username prefix",
            Surface::Console,
            format!("/admin/users?q={prefix}"),
        ),
        (
            "users: family name",
            Surface::Console,
            format!("/admin/users?q={family}"),
        ),
        (
            "group members: all staff",
            Surface::Console,
            format!("/admin/groups/{}", s.staff),
        ),
        (
            "group members: a department",
            Surface::Console,
            format!("/admin/groups/{}", s.department),
        ),
        ("audit: newest", Surface::Console, "/admin/audit".to_owned()),
        (
            "audit: by user",
            Surface::Console,
            format!("/admin/audit?user={exact}"),
        ),
        (
            "audit: by application",
            Surface::Console,
            format!("/admin/audit?app={}", enc(&s.app_name)),
        ),
        (
            "audit: by event",
            Surface::Console,
            "/admin/audit?event=login.failure".to_owned(),
        ),
        (
            "audit: since yesterday",
            Surface::Console,
            format!("/admin/audit?since={since}"),
        ),
        (
            "audit: one day last month",
            Surface::Console,
            format!("/admin/audit?since={day}&until={day}"),
        ),
    ]);
    out
}

/// Follows `next_cursor` from `first` to the end; the walk, and the cursor of its middle page.
async fn walk_api(
    target: &Target,
    name: &'static str,
    first: &str,
) -> anyhow::Result<(Walk, String)> {
    let mut times = Vec::new();
    let mut items = 0;
    let mut cursors = Vec::new();
    let mut path = first.to_owned();
    let start = Instant::now();
    loop {
        let t = Instant::now();
        let body = target.get(Surface::Api, &path).await?;
        times.push((t.elapsed(), body.len()));
        let page: serde_json::Value = serde_json::from_str(&body)?;
        items += page["items"].as_array().map_or(0, Vec::len);
        let next = match &page["next_cursor"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => break,
        };
        cursors.push(next.clone());
        path = format!("{first}&cursor={next}");
    }
    let middle = cursors.get(cursors.len() / 2).cloned().unwrap_or_default();
    Ok((
        walk(name, Surface::Api, &times, items, start.elapsed()),
        middle,
    ))
}

/// Follows the console's "next" links over every user.
async fn walk_console(target: &Target) -> anyhow::Result<(Walk, String)> {
    let mut times = Vec::new();
    let mut items = 0;
    let mut cursors = Vec::new();
    let mut path = "/admin/users".to_owned();
    let start = Instant::now();
    loop {
        let t = Instant::now();
        let body = target.get(Surface::Console, &path).await?;
        times.push((t.elapsed(), body.len()));
        // A row links its user; the "new user" button is no row.
        items += body.matches("href=\"/admin/users/").count()
            - body.matches("href=\"/admin/users/new\"").count();
        let Some(next) = next_link(&body) else {
            break;
        };
        cursors.push(next.clone());
        path = format!("/admin/users?after={next}");
    }
    let middle = cursors.get(cursors.len() / 2).cloned().unwrap_or_default();
    Ok((
        walk("users", Surface::Console, &times, items, start.elapsed()),
        middle,
    ))
}

/// The cursor in a console page's link to its next page (`after=`, base64url).
fn next_link(html: &str) -> Option<String> {
    let at = html.find("after=")? + "after=".len();
    let cursor: String = html[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!cursor.is_empty()).then_some(cursor)
}

/// The walk's figures from each page's time and size.
fn walk(
    name: &'static str,
    surface: Surface,
    pages: &[(Duration, usize)],
    items: usize,
    total: Duration,
) -> Walk {
    let tenth = (pages.len() / 10).max(1);
    let head = &pages[..tenth.min(pages.len())];
    let tail = &pages[pages.len().saturating_sub(tenth)..];
    let mean = |part: &[(Duration, usize)], of: fn(&(Duration, usize)) -> f64| {
        part.iter().map(of).sum::<f64>() / part.len().max(1) as f64
    };
    let time = |p: &(Duration, usize)| ms(p.0);
    let size = |p: &(Duration, usize)| p.1 as f64 / 1024.0;
    let (first, last) = (mean(head, time), mean(tail, time));
    let (first_kib, last_kib) = (mean(head, size), mean(tail, size));
    let ratio = last / first.max(1e-9);
    let ratio_per_kib = (last / last_kib.max(1e-9)) / (first / first_kib.max(1e-9)).max(1e-9);
    Walk {
        name,
        surface,
        pages: pages.len(),
        items,
        seconds: total.as_secs_f64(),
        first_tenth_ms: first,
        last_tenth_ms: last,
        first_tenth_kib: first_kib,
        last_tenth_kib: last_kib,
        ratio,
        ratio_per_kib,
        target_ratio: TARGET_WALK_RATIO,
        met: ratio <= TARGET_WALK_RATIO || ratio_per_kib <= TARGET_WALK_RATIO,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn print(r: &Report) -> anyhow::Result<()> {
    let verdict = |met: bool| if met { "ok" } else { "MISSED" };
    outln!(
        "\n{} users, {} audit rows, {}: every page p99 < {TARGET_P99_MS} ms",
        r.users,
        r.audit_rows,
        r.backend
    )?;
    outln!(
        "{:<32} {:<8} {:>8} {:>8} {:>7} {:>7}",
        "page",
        "via",
        "p50 ms",
        "p99 ms",
        "errors",
        "target"
    )?;
    for f in &r.figures {
        outln!(
            "{:<32} {:<8} {:>8.2} {:>8.2} {:>7} {:>7}",
            f.name,
            format!("{:?}", f.surface).to_lowercase(),
            f.p50_ms,
            f.p99_ms,
            f.errors,
            verdict(f.met)
        )?;
        if let Some(e) = &f.first_error {
            outln!("    first error: {e}")?;
        }
    }
    outln!(
        "\nwalks: a page in the last tenth against one in the first (linear: at most \
         {TARGET_WALK_RATIO} times, per page or per KiB)"
    )?;
    outln!(
        "{:<10} {:<8} {:>7} {:>9} {:>8} {:>19} {:>19} {:>6} {:>7} {:>7}",
        "walk",
        "via",
        "pages",
        "items",
        "seconds",
        "first 10% ms (KiB)",
        "last 10% ms (KiB)",
        "ratio",
        "per KiB",
        "target"
    )?;
    for w in &r.walks {
        outln!(
            "{:<10} {:<8} {:>7} {:>9} {:>8.1} {:>19} {:>19} {:>6.2} {:>7.2} {:>7}",
            w.name,
            format!("{:?}", w.surface).to_lowercase(),
            w.pages,
            w.items,
            w.seconds,
            format!("{:.2} ({:.0})", w.first_tenth_ms, w.first_tenth_kib),
            format!("{:.2} ({:.0})", w.last_tenth_ms, w.last_tenth_kib),
            w.ratio,
            w.ratio_per_kib,
            verdict(w.met)
        )?;
    }
    outln!(
        "\nserver RSS: idle {:.1} MiB, after the walks {:.1} MiB (+{:.1} MiB; aim under +{} MiB: \
         {}), peak {:.1} MiB",
        r.rss_idle_kib as f64 / 1024.0,
        r.rss_after_walk_kib as f64 / 1024.0,
        r.rss_after_walk_kib.saturating_sub(r.rss_idle_kib) as f64 / 1024.0,
        r.rss_growth_target_kib / 1024,
        verdict(r.rss_met),
        r.rss_peak_kib as f64 / 1024.0
    )?;
    outln!(
        "load average before {}, after {}",
        r.load_before,
        r.load_after
    )
}
