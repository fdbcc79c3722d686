//! ACS logins through the toolkit on SQLite, beside the protocol layer's validation of the
//! same kind of Response measured in the same run (the machine may be loaded; the ratios are
//! what compare).
//!
//! Run: `cargo bench -p latchkey-sp --bench acs`. Each login is the whole
//! [`acs::run`]: base64 decode, every profile rule and the RSA-2048 signature check, the
//! replay cache (`SqlReplayCache`) and the JIT engine (`SqlAccountStore`), both in one SQLite
//! file database in WAL mode, as an application runs them (so the assertion ID is recorded in
//! the login's own transaction). Three kinds of login:
//!
//! * first login: the person is new, JIT creates the account (and its roles, audit event);
//! * returning, changed: the account exists and one IdP-owned field changed (an update);
//! * returning, unchanged: the account exists and nothing changed (the common case); timed
//!   twice, with the default audit event (`jit.unchanged`) and with `[audit] unchanged_logins =
//!   "log_only"` (no event: the login's transaction writes only its replay entry).
//!
//! Each is timed one login at a time and, for returning logins, also with 16 logins in flight
//! (tasks on a multi-threaded runtime with a worker per core, as concurrent requests of a
//! server), where logins can share a commit (`store::writer`). A last phase keeps 64 logins in flight and reports the
//! process's resident memory (RSS) before and during that load.
//!
//! `ACS_BENCH_DB=postgres` runs the same logins on a throwaway PostgreSQL (the testkit's
//! cluster on loopback; its server's CPU is not in the per-core figures). On SQLite the bench
//! also times the statements of an unchanged login (BEGIN IMMEDIATE, replay upsert, account
//! read, audit insert, COMMIT) through sqlx's `Any` pool and through a plain `Sqlite` pool:
//! the option of changing sqlx drivers, measured.
//!
//! The Responses are issued beforehand (outside the timed loop) with
//! `profile::idp::build_response`, RSA-2048, 6 attributes, each with its own assertion ID (the
//! replay cache refuses a second use). The timed loop also splits each login into its
//! stages, so the summary can say where the time goes.
//!
//! `ACS_BENCH_PROFILE=<n>` runs only n returning, unchanged logins (one at a time, or
//! `ACS_BENCH_IN_FLIGHT` at once) beside n validations, a second after their Responses are
//! issued: a quick A/B figure, and a run to profile with `perf record -D <ms>`. With
//! `ACS_BENCH_PENDING=1` those logins are SP-initiated: each answers a request the SP started
//! and keeps in the database (as the demo apps do), which its ACS takes back. With
//! `ACS_BENCH_UNCHANGED=log_only` they run under `[audit] unchanged_logins = "log_only"`; with
//! `ACS_BENCH_UNCHANGED=both`, four passes of n alternate the two, each beside its own n
//! validations (an A/B in one process). `ACS_BENCH_PRIVATE=1` opens the SQLite file for the
//! bench's process alone (`?vfs=unix-excl`): no file locks per transaction.
//!
//! The Responses' IssueInstants advance as an IdP issuing 100 a second writes them (to the
//! second), cycling through five minutes that are all valid at the bench's fixed `NOW`: the
//! replay cache keeps its entries in that order, so a bench that issued them all at one
//! instant would insert each at a random place, as no real IdP's stream does.
//! `ACS_BENCH_ISSUE_RATE=<n>` sets the rate; `0` issues every one at one instant (the worst
//! case for the replay cache's pages).
// Bench set-up works on fixed inputs; a failure there should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use criterion::Criterion;
use latchkey_saml::assertion::{Attribute, NameId, authn_context, name_id_format};
use latchkey_saml::profile::idp::{
    IdpSettings, Issuance, ResponseTarget, SignedParts, build_response,
};
use latchkey_saml::profile::{SpSettings, validate_response};
use latchkey_sp::acs;
use latchkey_sp::binding::BrowserBinding;
use latchkey_sp::idp::IdpTrust;
use latchkey_sp::jit::{Contract, JitEngine, Outcome};
use latchkey_sp::login::LoginRedirect;
use latchkey_sp::replay::SqlReplayCache;
use latchkey_sp::settings::{SpConfig, UnchangedLogins};
use latchkey_sp::store::{Database, SqlAccountStore};
use latchkey_sp::{AcsForm, ServiceProvider};
use latchkey_xmlsec::crypto::SigningKey;
use time::OffsetDateTime;
use time::macros::datetime;

const IDP: &str = "https://idp.example.org/saml";
const SSO: &str = "https://idp.example.org/saml/sso";
const SP: &str = "https://app.example.com/saml/metadata";
const ACS: &str = "https://app.example.com/saml/acs";
const ISSUED: OffsetDateTime = datetime!(2026-11-28 14:00:00 UTC);
const NOW: OffsetDateTime = datetime!(2026-11-28 14:00:30 UTC);

/// A contract with the usual shape: persistent NameID, two IdP-owned fields, a role rule.
const CONTRACT: &str = r#"
identity = { source = "persistent_name_id" }
default_role = "member"

[[fields]]
attribute = "urn:oid:0.9.2342.19200300.100.1.3"
field = "email"
ownership = "idp"
required = true

[[fields]]
attribute = "urn:oid:2.16.840.1.113730.3.1.241"
field = "display_name"
ownership = "idp"

[[roles]]
grant = "admin"
when = { attribute = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1", contains = "admins" }
"#;

#[derive(Clone, Copy)]
enum Slot {
    Validate,
    First,
    ReturnChanged,
    ReturnSame,
    ReturnSameLogOnly,
    StageVerify,
    RoundTrip,
    StageJitCreate,
    StageJitUpdate,
    StageJitSame,
    ReturnSameLoad,
    ReturnChangedLoad,
    StatementsAny,
    StatementsSqlite,
}

const SLOTS: usize = 14;

/// Logins in flight in the "under load" measurements.
const IN_FLIGHT: u64 = 16;

/// Wall time, count and process CPU time of each measured operation, over every batch
/// criterion ran.
static TOTALS: Mutex<[(Duration, u64, Duration); SLOTS]> =
    Mutex::new([(Duration::ZERO, 0, Duration::ZERO); SLOTS]);

fn add(slot: Slot, elapsed: Duration, n: u64) {
    let mut totals = TOTALS.lock().unwrap();
    totals[slot as usize].0 += elapsed;
    totals[slot as usize].1 += n;
}

fn add_cpu(slot: Slot, cpu: Duration) {
    TOTALS.lock().unwrap()[slot as usize].2 += cpu;
}

fn mean(slot: Slot) -> f64 {
    let (total, n, _) = TOTALS.lock().unwrap()[slot as usize];
    total.as_secs_f64() / (n.max(1) as f64)
}

/// Mean CPU time of the whole process (every thread: sqlx runs SQLite on its own) per
/// operation: what "per core" divides by, since a login mostly waits for the disk.
fn mean_cpu(slot: Slot) -> f64 {
    let (_, n, cpu) = TOTALS.lock().unwrap()[slot as usize];
    cpu.as_secs_f64() / (n.max(1) as f64)
}

/// CPU time of this process's live threads so far, to the nanosecond (Linux
/// `/proc/self/task/*/schedstat`, whose first field is the thread's time on a CPU). Every
/// thread the bench and the toolkit start lives to the end of the run.
fn process_cpu() -> Duration {
    threads_cpu(|_| true)
}

/// CPU time of the SQLite login writer thread so far (zero where there is none).
fn writer_cpu() -> Duration {
    threads_cpu(|comm| comm == "latchkey-sp-wri")
}

/// The last time on a CPU seen for each thread (by thread ID): a thread that has ended
/// (a pool may close a connection, and sqlx's SQLite connections have a thread each) keeps
/// counting with what it had used when last seen, so the sum never goes back.
static SEEN: Mutex<Vec<(String, String, u64)>> = Mutex::new(Vec::new());

fn threads_cpu(which: impl Fn(&str) -> bool) -> Duration {
    let mut seen = SEEN.lock().unwrap();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let tid = task.file_name().to_string_lossy().into_owned();
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            let Some(ns) = stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
            else {
                continue;
            };
            let comm = comm.trim().to_owned();
            match seen.iter_mut().find(|(t, _, _)| *t == tid) {
                Some(entry) => *entry = (tid, comm, ns.max(entry.2)),
                None => seen.push((tid, comm, ns)),
            }
        }
    }
    Duration::from_nanos(
        seen.iter()
            .filter(|(_, comm, _)| which(comm))
            .map(|e| e.2)
            .sum(),
    )
}

/// What a person's assertion says; `display` varies to make a returning login an update.
fn issuance(person: u64, display: &str) -> Issuance {
    let mail = format!("person{person}@example.org");
    let attributes = [
        ("urn:oid:0.9.2342.19200300.100.1.3", "mail", mail.as_str()),
        ("urn:oid:2.5.4.42", "givenName", "Person"),
        ("urn:oid:2.5.4.4", "sn", "Example"),
        ("urn:oid:2.16.840.1.113730.3.1.241", "displayName", display),
        ("urn:oid:1.3.6.1.4.1.5923.1.5.1.1", "isMemberOf", "staff"),
        ("urn:oid:2.16.840.1.113730.3.1.3", "employeeNumber", "1815"),
    ]
    .into_iter()
    .map(|(name, friendly, value)| Attribute {
        name: name.into(),
        name_format: Some("urn:oasis:names:tc:SAML:2.0:attrname-format:uri".into()),
        friendly_name: Some(friendly.into()),
        values: vec![value.into()],
    })
    .collect();
    Issuance {
        name_id: NameId::new(format!("p-{person}"), name_id_format::PERSISTENT),
        session_index: format!("_session-{person}"),
        authn_instant: ISSUED,
        authn_context_class_ref: authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
        session_not_on_or_after: None,
        attributes,
    }
}

struct Idp {
    key: SigningKey,
    settings: IdpSettings,
    target: ResponseTarget,
    /// Responses issued so far, for their IssueInstants.
    issued: std::sync::atomic::AtomicU64,
    /// Responses issued per second of IssueInstant (`ACS_BENCH_ISSUE_RATE`, default 100; 0
    /// issues every one at `ISSUED`).
    rate: u64,
}

impl Idp {
    /// The next Response's IssueInstant, as an IdP issuing `rate` a second writes it (to the
    /// second, as Latchkey's does): the replay cache keeps its entries in that order. The
    /// instants cycle through the 300 seconds before `ISSUED + 60 s`, every one of which
    /// is still valid at `NOW`.
    fn issue_instant(&self) -> OffsetDateTime {
        let k = self
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match k.checked_div(self.rate) {
            None => ISSUED,
            Some(second) => {
                ISSUED - time::Duration::seconds(240)
                    + time::Duration::seconds(i64::try_from(second % 300).unwrap())
            }
        }
    }

    /// An unsolicited Response (the SP allows IdP-initiated logins, so no pending request
    /// has to be prepared for each one), base64 as the POST binding carries it.
    fn response(&self, person: u64, display: &str) -> String {
        build_response(
            &self.settings,
            &self.target,
            &issuance(person, display),
            &self.key,
            None,
            SignedParts::Assertion,
            self.issue_instant(),
        )
        .unwrap()
    }

    fn form(&self, person: u64, display: &str) -> AcsForm {
        AcsForm {
            saml_response: base64::engine::general_purpose::STANDARD
                .encode(self.response(person, display)),
            relay_state: None,
        }
    }

    /// The Response to a login the SP started (`start`), with its RelayState.
    fn answer(&self, person: u64, start: LoginRedirect) -> AcsForm {
        let target = ResponseTarget {
            in_response_to: Some(start.request.request_id),
            ..self.target.clone()
        };
        let xml = build_response(
            &self.settings,
            &target,
            &issuance(person, "Person"),
            &self.key,
            None,
            SignedParts::Assertion,
            self.issue_instant(),
        )
        .unwrap();
        AcsForm {
            saml_response: base64::engine::general_purpose::STANDARD.encode(xml),
            relay_state: Some(start.relay_state),
        }
    }
}

struct App {
    sp: ServiceProvider,
    replay: SqlReplayCache,
    engine: JitEngine<SqlAccountStore>,
    /// `engine` under `[audit] unchanged_logins = "log_only"`.
    engine_log_only: JitEngine<SqlAccountStore>,
    /// The one browser every login of the bench is started from and posted by.
    browser: BrowserBinding,
}

/// `pending_in_db`: the SP keeps the logins it starts in the database, as the demo apps do
/// (`ServiceProvider::with_database`), rather than in memory.
async fn open_app(dir: &Path, idp: &Idp, url: &str, pending_in_db: bool) -> App {
    let config = SpConfig::from_toml(
        &format!(
            "entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nallow_idp_initiated = true\n\
             [idp]\nmetadata_file = \"idp.xml\"\n"
        ),
        dir,
    )
    .unwrap();
    let trust = IdpTrust {
        entity_id: IDP.into(),
        sso_url: SSO.into(),
        slo_url: None,
        keys: vec![idp.key.verifying_key().clone()],
        want_authn_requests_signed: false,
        cache_duration: None,
        valid_until: None,
    };
    let db = Database::connect(url).await.unwrap();
    let sp = if pending_in_db {
        ServiceProvider::with_database(&config, None, trust, db.clone()).unwrap()
    } else {
        ServiceProvider::new(&config, None, trust).unwrap()
    };
    let engine = JitEngine::new(
        Contract::from_toml(CONTRACT).unwrap(),
        SqlAccountStore::new(db.clone()),
    );
    App {
        sp,
        replay: SqlReplayCache::new(db),
        engine_log_only: engine.clone().unchanged_logins(UnchangedLogins::LogOnly),
        engine,
        // A binding cookie under both names, whichever the ACS URL's scheme asks for.
        browser: BrowserBinding::from_cookie_headers([format!(
            "latchkey_login={v}; __Host-latchkey_login={v}",
            v = "5a".repeat(32)
        )
        .as_str()]),
    }
}

/// One login through `acs::run`, checked for the expected outcome.
async fn login(app: &App, form: &AcsForm, want: Outcome) {
    login_by(app, &app.engine, form, want).await;
}

/// [`login`] through `engine` (one of `app`'s).
async fn login_by(app: &App, engine: &JitEngine<SqlAccountStore>, form: &AcsForm, want: Outcome) {
    let done = acs::run(&app.sp, form, &app.browser, &app.replay, engine, NOW)
        .await
        .unwrap();
    assert_eq!(done.provisioned.outcome, want);
}

/// People who already have an account, for the returning logins.
const RETURNING: u64 = 200;

/// The quick mode (`ACS_BENCH_PROFILE=<n>`): what one pass of n returning, unchanged logins
/// runs on.
struct Quick<'a> {
    rt: &'a tokio::runtime::Runtime,
    rt_mt: &'a tokio::runtime::Runtime,
    app: &'a Arc<App>,
    app_mt: &'a Arc<App>,
    idp: &'a Idp,
    profile: Arc<SpSettings>,
    sample: Arc<String>,
    n: u64,
    in_flight: u64,
    pending: bool,
}

impl Quick<'_> {
    /// n returning, unchanged logins (`log_only`: under `[audit] unchanged_logins =
    /// "log_only"`), started a second after their Responses are issued, beside n validations
    /// measured just before them.
    fn pass(&self, log_only: bool) {
        let Self {
            rt,
            rt_mt,
            app,
            app_mt,
            idp,
            n,
            in_flight,
            pending,
            ..
        } = *self;
        let (profile, sample) = (&*self.profile, self.sample.as_str());
        let forms: Vec<AcsForm> = (0..n)
            .map(|i| {
                if pending {
                    // Started when the IdP's answer is issued, as a login's start and its
                    // Response follow each other within seconds.
                    let at = idp.issue_instant();
                    let start = rt.block_on(app.sp.start_login_from(None, &app.browser, None, at));
                    idp.answer(i % RETURNING, start.unwrap())
                } else {
                    idp.form(i % RETURNING, "Person")
                }
            })
            .collect();
        eprintln!("{n} Responses issued; the logins start in a second");
        std::thread::sleep(Duration::from_secs(1));
        let cpu = process_cpu();
        for _ in 0..n {
            black_box(validate_response(profile, sample, None, NOW).unwrap());
        }
        let validate = (process_cpu() - cpu).as_secs_f64() / n as f64;
        let (cpu, writer, start) = (process_cpu(), writer_cpu(), Instant::now());
        if in_flight > 1 {
            rt_mt.block_on(login_concurrently(
                app_mt,
                forms,
                Outcome::Unchanged,
                in_flight,
                log_only,
            ));
        } else {
            let engine = if log_only {
                &app.engine_log_only
            } else {
                &app.engine
            };
            rt.block_on(async {
                for f in &forms {
                    login_by(app, engine, f, Outcome::Unchanged).await;
                }
            });
        }
        let wall = start.elapsed().as_secs_f64() / n as f64;
        let login = (process_cpu() - cpu).as_secs_f64() / n as f64;
        let stats = app.engine.store().database().writer_stats();
        let stats_mt = app_mt.engine.store().database().writer_stats();
        let writer = (writer_cpu() - writer).as_secs_f64() / n as f64;
        println!(
            "{n} returning, unchanged logins ({}), {in_flight} in flight: wall {:.1} us, CPU \
             {:.1} us per login (writer thread {:.1} us); validate_response CPU {:.1} us -> \
             {:.1} % of validation per core",
            if log_only { "log_only" } else { "recorded" },
            wall * 1e6,
            login * 1e6,
            writer * 1e6,
            validate * 1e6,
            validate / login * 100.0
        );
        println!("writer: {stats:?} (one at a time), {stats_mt:?} (in flight)");
        if in_flight > 1 {
            // The same validations as tasks on both workers: what a validation costs when
            // both cores are busy, as the logins in flight were.
            let cpu = process_cpu();
            rt_mt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..in_flight {
                    let (profile, sample) = (Arc::clone(&self.profile), Arc::clone(&self.sample));
                    set.spawn(async move {
                        for _ in 0..n / in_flight {
                            black_box(validate_response(&profile, &sample, None, NOW).unwrap());
                        }
                    });
                }
                while let Some(done) = set.join_next().await {
                    done.unwrap();
                }
            });
            let validate_mt = (process_cpu() - cpu).as_secs_f64() / (n - n % in_flight) as f64;
            println!(
                "validate_response, {in_flight} in flight: CPU {:.1} us -> logins {:.1} % of it",
                validate_mt * 1e6,
                validate_mt / login * 100.0
            );
        }
    }
}

/// `forms` as `tasks` tasks, each logging its share in one at a time (`log_only`: under
/// `[audit] unchanged_logins = "log_only"`).
async fn login_concurrently(
    app: &Arc<App>,
    forms: Vec<AcsForm>,
    want: Outcome,
    tasks: u64,
    log_only: bool,
) {
    let mut shares: Vec<Vec<AcsForm>> = (0..tasks).map(|_| Vec::new()).collect();
    for (i, f) in forms.into_iter().enumerate() {
        shares[i % tasks as usize].push(f);
    }
    let mut set = tokio::task::JoinSet::new();
    for share in shares {
        let app = Arc::clone(app);
        set.spawn(async move {
            let engine = if log_only {
                &app.engine_log_only
            } else {
                &app.engine
            };
            for f in &share {
                login_by(&app, engine, f, want).await;
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
}

/// The unchanged login's statements (replay upsert, account read with roles, audit insert)
/// in one `BEGIN IMMEDIATE` transaction, on any sqlx connection: the sqlx path's cost.
macro_rules! unchanged_statements {
    ($conn:expr, $n:expr) => {{
        let conn = $conn;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO sp_replay_cache (issued_at, assertion_id, not_on_or_after) \
             SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM sp_replay_cache WHERE \
             issued_at = 0 AND assertion_id = $2 AND not_on_or_after > $4) \
             ON CONFLICT (issued_at, assertion_id) DO UPDATE SET \
             not_on_or_after = excluded.not_on_or_after WHERE sp_replay_cache.not_on_or_after <= $4",
        )
        .bind(i64::try_from($n).unwrap())
        .bind(format!("_stmt-{}", $n))
        .bind(i64::MAX)
        .bind(0i64)
        .execute(&mut *conn)
        .await
        .unwrap();
        let rows = sqlx::query(
            "SELECT a.id, a.fields, r.role FROM sp_accounts a \
             LEFT JOIN sp_account_roles r ON r.account_id = a.id \
             WHERE a.idp_entity_id = $1 AND a.identity_key = $2",
        )
        .bind(IDP)
        .bind("p-1")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        black_box(rows.len());
        sqlx::query(
            "INSERT INTO sp_audit (id, operation_id, at, kind, account_id, idp_entity_id, \
             identity_key, session_index, plan, actor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(0i64)
        .bind("bench.statements")
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(IDP)
        .bind("p-1")
        .bind("_session-1")
        .bind(r#"{"identity":null,"action":"unchanged"}"#)
        .bind(None::<String>)
        .execute(&mut *conn)
        .await
        .unwrap();
        sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    }};
}

/// Resident and peak resident memory of this process, KiB (Linux `/proc/self/status`).
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The same login split into its stages, each timed into its slot: the Response's checks,
/// then the replay cache and JIT (one transaction).
async fn staged(app: &App, form: &AcsForm, jit_slot: Slot) {
    let t0 = Instant::now();
    let verified = app
        .sp
        .verify_response(form, &app.browser, NOW)
        .await
        .unwrap();
    let t1 = Instant::now();
    black_box(
        verified
            .sign_in(&app.replay, &app.engine, NOW)
            .await
            .unwrap(),
    );
    let t2 = Instant::now();
    add(Slot::StageVerify, t1 - t0, 1);
    add(jit_slot, t2 - t1, 1);
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // `ACS_BENCH_DIR=/dev/shm` puts the database on tmpfs: no fsync, so the CPU cost shows.
    let dir = match std::env::var_os("ACS_BENCH_DIR") {
        Some(parent) => tempfile::tempdir_in(parent).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let idp = Idp {
        key: SigningKey::from_pem(&kp.serialize_pem()).unwrap(),
        settings: IdpSettings::new(IDP, SSO),
        target: ResponseTarget {
            sp_entity_id: SP.into(),
            acs_url: ACS.into(),
            in_response_to: None,
        },
        issued: std::sync::atomic::AtomicU64::new(0),
        rate: std::env::var("ACS_BENCH_ISSUE_RATE")
            .ok()
            .map_or(100, |r| r.parse().unwrap()),
    };
    let postgres = std::env::var("ACS_BENCH_DB").is_ok_and(|v| v == "postgres");
    let url = if postgres {
        rt.block_on(latchkey_testkit::pg::fresh_database_url())
    } else {
        // `ACS_BENCH_PRIVATE=1`: the file opened for this process alone (`?vfs=unix-excl`,
        // `Database::connect`), so that no transaction takes a file lock.
        let vfs = if std::env::var_os("ACS_BENCH_PRIVATE").is_some() {
            "&vfs=unix-excl"
        } else {
            ""
        };
        format!(
            "sqlite://{}?mode=rwc{vfs}",
            dir.path().join("app.sqlite").display()
        )
    };
    // `ACS_BENCH_PENDING=1` (with `ACS_BENCH_PROFILE`, at most 10,000: the SP's bound on
    // logins started and not finished): SP-initiated logins, each answering a request the SP
    // started (outside the timing) and keeps in the database, whose ACS takes it back.
    let pending = std::env::var_os("ACS_BENCH_PENDING").is_some();
    let app = Arc::new(rt.block_on(open_app(dir.path(), &idp, &url, pending)));
    // Logins in flight run as a server runs them: tasks on a multi-threaded runtime, one
    // worker per core, so Responses are verified on both cores while the database works. The
    // app is opened again on that runtime (same database), as a server process would hold it.
    let rt_mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app_mt = Arc::new(rt_mt.block_on(open_app(dir.path(), &idp, &url, pending)));
    let writer_stats = || app_mt.engine.store().database().writer_stats();
    let stats_before_load = writer_stats();
    let profile = app.sp.profile_settings();
    let sample = idp.response(0, "Person 0");
    assert!(validate_response(&profile, &sample, None, NOW).is_ok());

    // People who already have an account, for the returning logins.
    rt.block_on(async {
        for p in 0..RETURNING {
            login(&app, &idp.form(p, "Person"), Outcome::Created).await;
        }
    });
    let mut next_new = RETURNING;
    let mut round = 0u64;

    // `ACS_BENCH_PROFILE=<n>`: only n returning, unchanged logins (16 in flight with
    // `ACS_BENCH_IN_FLIGHT=16`), started a second after all their Responses are issued, for
    // `perf record -D` (issuing signs with RSA, which would hide the logins in a profile),
    // beside n validations measured just before them.
    if let Some(n) = std::env::var("ACS_BENCH_PROFILE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        let in_flight = std::env::var("ACS_BENCH_IN_FLIGHT")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        let passes: &[bool] = match std::env::var("ACS_BENCH_UNCHANGED").as_deref() {
            Ok("log_only") => &[true],
            Ok("both") => &[false, true, false, true],
            _ => &[false],
        };
        let quick = Quick {
            rt: &rt,
            rt_mt: &rt_mt,
            app: &app,
            app_mt: &app_mt,
            idp: &idp,
            profile: Arc::new(profile),
            sample: Arc::new(sample),
            n,
            in_flight,
            pending,
        };
        for &log_only in passes {
            quick.pass(log_only);
        }
        return;
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

    c.bench_function("validate/RSA-2048 (protocol layer)", |b| {
        b.iter_custom(|iters| {
            let cpu = process_cpu();
            let start = Instant::now();
            for _ in 0..iters {
                black_box(validate_response(&profile, &sample, None, NOW).unwrap());
            }
            let elapsed = start.elapsed();
            add_cpu(Slot::Validate, process_cpu() - cpu);
            add(Slot::Validate, elapsed, iters);
            elapsed
        });
    });

    // What one statement costs through the pool, whatever it does: the floor under every
    // statement a login runs.
    let pool = app.engine.store().database().pool().clone();
    c.bench_function("db/one statement through the pool (SELECT 1)", |b| {
        b.iter_custom(|iters| {
            let cpu = process_cpu();
            let start = Instant::now();
            rt.block_on(async {
                for _ in 0..iters {
                    let one: i64 = sqlx::query_scalar("SELECT 1")
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    black_box(one);
                }
            });
            let elapsed = start.elapsed();
            add_cpu(Slot::RoundTrip, process_cpu() - cpu);
            add(Slot::RoundTrip, elapsed, iters);
            elapsed
        });
    });

    // The sqlx driver option: the unchanged login's statements through the `Any` pool the
    // toolkit used before its writer, and through a plain `Sqlite` pool on the same file.
    if !postgres {
        let sqlite = rt.block_on(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(2)
                .test_before_acquire(false)
                .connect(&url),
        );
        let sqlite = sqlite.unwrap();
        rt.block_on(async {
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&sqlite)
                .await
                .unwrap();
        });
        let mut n = 0u64;
        c.bench_function("sqlx/unchanged login's statements, Any driver", |b| {
            b.iter_custom(|iters| {
                let cpu = process_cpu();
                let start = Instant::now();
                rt.block_on(async {
                    let mut conn = pool.acquire().await.unwrap();
                    for _ in 0..iters {
                        n += 1;
                        unchanged_statements!(&mut *conn, n);
                    }
                });
                let elapsed = start.elapsed();
                add_cpu(Slot::StatementsAny, process_cpu() - cpu);
                add(Slot::StatementsAny, elapsed, iters);
                elapsed
            });
        });
        c.bench_function("sqlx/unchanged login's statements, Sqlite driver", |b| {
            b.iter_custom(|iters| {
                let cpu = process_cpu();
                let start = Instant::now();
                rt.block_on(async {
                    let mut conn = sqlite.acquire().await.unwrap();
                    for _ in 0..iters {
                        n += 1;
                        unchanged_statements!(&mut *conn, n);
                    }
                });
                let elapsed = start.elapsed();
                add_cpu(Slot::StatementsSqlite, process_cpu() - cpu);
                add(Slot::StatementsSqlite, elapsed, iters);
                elapsed
            });
        });
    }

    // Each timed batch consumes Responses issued just before it (outside the timing).
    c.bench_function("acs/first login (create)", |b| {
        b.iter_custom(|iters| {
            let forms: Vec<AcsForm> = (0..iters)
                .map(|i| idp.form(next_new + i, "Person"))
                .collect();
            next_new += iters;
            let cpu = process_cpu();
            let start = Instant::now();
            rt.block_on(async {
                for f in &forms {
                    login(&app, f, Outcome::Created).await;
                }
            });
            let elapsed = start.elapsed();
            add_cpu(Slot::First, process_cpu() - cpu);
            add(Slot::First, elapsed, iters);
            elapsed
        });
    });

    c.bench_function("acs/returning, unchanged", |b| {
        b.iter_custom(|iters| {
            let forms: Vec<AcsForm> = (0..iters)
                .map(|i| idp.form(i % RETURNING, "Person"))
                .collect();
            let cpu = process_cpu();
            let start = Instant::now();
            rt.block_on(async {
                for f in &forms {
                    login(&app, f, Outcome::Unchanged).await;
                }
            });
            let elapsed = start.elapsed();
            add_cpu(Slot::ReturnSame, process_cpu() - cpu);
            add(Slot::ReturnSame, elapsed, iters);
            elapsed
        });
    });

    c.bench_function("acs/returning, unchanged, log_only", |b| {
        b.iter_custom(|iters| {
            let forms: Vec<AcsForm> = (0..iters)
                .map(|i| idp.form(i % RETURNING, "Person"))
                .collect();
            let cpu = process_cpu();
            let start = Instant::now();
            rt.block_on(async {
                for f in &forms {
                    login_by(&app, &app.engine_log_only, f, Outcome::Unchanged).await;
                }
            });
            let elapsed = start.elapsed();
            add_cpu(Slot::ReturnSameLogOnly, process_cpu() - cpu);
            add(Slot::ReturnSameLogOnly, elapsed, iters);
            elapsed
        });
    });

    c.bench_function("acs/returning, unchanged, 16 in flight", |b| {
        b.iter_custom(|iters| {
            let forms: Vec<AcsForm> = (0..iters)
                .map(|i| idp.form(i % RETURNING, "Person"))
                .collect();
            let cpu = process_cpu();
            let start = Instant::now();
            rt_mt.block_on(login_concurrently(
                &app_mt,
                forms,
                Outcome::Unchanged,
                IN_FLIGHT,
                false,
            ));
            let elapsed = start.elapsed();
            add_cpu(Slot::ReturnSameLoad, process_cpu() - cpu);
            add(Slot::ReturnSameLoad, elapsed, iters);
            elapsed
        });
    });

    c.bench_function("acs/returning, changed (update)", |b| {
        b.iter_custom(|iters| {
            round += 1;
            // Every login carries a display name its person has not had before.
            let forms: Vec<AcsForm> = (0..iters)
                .map(|i| idp.form(i % RETURNING, &format!("Person {round}-{i}")))
                .collect();
            let cpu = process_cpu();
            let start = Instant::now();
            rt.block_on(async {
                for f in &forms {
                    login(&app, f, Outcome::Updated).await;
                }
            });
            let elapsed = start.elapsed();
            add_cpu(Slot::ReturnChanged, process_cpu() - cpu);
            add(Slot::ReturnChanged, elapsed, iters);
            elapsed
        });
    });
    c.bench_function("acs/returning, changed (update), 16 in flight", |b| {
        b.iter_custom(|iters| {
            round += 1;
            // Every login carries a display name its person has not had before.
            let forms: Vec<AcsForm> = (0..iters)
                .map(|i| idp.form(i % RETURNING, &format!("Person {round}-{i}")))
                .collect();
            let cpu = process_cpu();
            let start = Instant::now();
            rt_mt.block_on(login_concurrently(
                &app_mt,
                forms,
                Outcome::Updated,
                IN_FLIGHT,
                false,
            ));
            let elapsed = start.elapsed();
            add_cpu(Slot::ReturnChangedLoad, process_cpu() - cpu);
            add(Slot::ReturnChangedLoad, elapsed, iters);
            elapsed
        });
    });
    let stats_after_load = writer_stats();
    c.final_summary();

    if TOTALS.lock().unwrap()[..4].iter().any(|(_, n, _)| *n == 0) {
        return; // a filtered run: no summary
    }

    // Where the time goes: the same three kinds of login, split into stages.
    const STAGED: u64 = 150;
    let mut staged_cpu = [(Duration::ZERO, Duration::ZERO); 3];
    rt.block_on(async {
        let display = format!("Person staged {round}");
        for (k, slot) in [
            Slot::StageJitCreate,
            Slot::StageJitUpdate,
            Slot::StageJitSame,
        ]
        .into_iter()
        .enumerate()
        {
            let forms: Vec<AcsForm> = (0..STAGED)
                .map(|i| match k {
                    0 => idp.form(next_new + i, "P"),
                    _ => idp.form(i, &display),
                })
                .collect();
            let (cpu, writer) = (process_cpu(), writer_cpu());
            for f in &forms {
                staged(&app, f, slot).await;
            }
            staged_cpu[k] = (process_cpu() - cpu, writer_cpu() - writer);
        }
    });

    // Resident memory under load: 64 logins in flight (returning, unchanged), sampled by a
    // thread every 5 ms.
    const LOAD_ROUNDS: u64 = 8;
    const LOAD_LOGINS: u64 = 1_280;
    let display = format!("Person staged {round}");
    let (rss_idle, _) = rss_kib();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib().0);
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let load_start = Instant::now();
    for _ in 0..LOAD_ROUNDS {
        let forms: Vec<AcsForm> = (0..LOAD_LOGINS)
            .map(|i| idp.form(i % STAGED, &display))
            .collect();
        rt_mt.block_on(login_concurrently(
            &app_mt,
            forms,
            Outcome::Unchanged,
            64,
            false,
        ));
    }
    let load_time = load_start.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let rss_load = sampler.join().unwrap();
    let (rss_after, hwm) = rss_kib();

    let validate = mean(Slot::Validate);
    println!(
        "\nACS logins on {} beside the protocol layer's validation, \
         RSA-2048, Response {} bytes; per core = per second of this process's CPU time:",
        if postgres {
            "PostgreSQL (testkit cluster, loopback)".to_owned()
        } else {
            format!("SQLite (file in {}, WAL)", dir.path().display())
        },
        sample.len()
    );
    println!(
        "  validate_response          {:>8.1} us = {:>6.0}/s   CPU {:>7.1} us = {:>6.0}/s per core",
        validate * 1e6,
        1.0 / validate,
        mean_cpu(Slot::Validate) * 1e6,
        1.0 / mean_cpu(Slot::Validate)
    );
    println!(
        "  one statement (SELECT 1)   {:>8.1} us = {:>6.0}/s   CPU {:>7.1} us = {:>6.0}/s per core",
        mean(Slot::RoundTrip) * 1e6,
        1.0 / mean(Slot::RoundTrip),
        mean_cpu(Slot::RoundTrip) * 1e6,
        1.0 / mean_cpu(Slot::RoundTrip)
    );
    let validate_cpu = mean_cpu(Slot::Validate);
    for (name, slot) in [
        ("unchanged stmts, sqlx Any", Slot::StatementsAny),
        ("unchanged stmts, sqlx Sqlite", Slot::StatementsSqlite),
    ] {
        if TOTALS.lock().unwrap()[slot as usize].1 > 0 {
            println!(
                "  {name:<26} {:>8.1} us = {:>6.0}/s   CPU {:>7.1} us = {:>6.0}/s per core",
                mean(slot) * 1e6,
                1.0 / mean(slot),
                mean_cpu(slot) * 1e6,
                1.0 / mean_cpu(slot)
            );
        }
    }
    for (name, slot, goal) in [
        ("first login (create)", Slot::First, 0.0),
        ("returning, changed", Slot::ReturnChanged, 0.5),
        ("returning, unchanged", Slot::ReturnSame, 0.5),
        ("unchanged, log_only", Slot::ReturnSameLogOnly, 0.5),
        ("changed, 16 in flight", Slot::ReturnChangedLoad, 0.5),
        ("unchanged, 16 in flight", Slot::ReturnSameLoad, 0.5),
    ] {
        let (t, cpu) = (mean(slot), mean_cpu(slot));
        let ratio = validate_cpu / cpu;
        let verdict = if goal == 0.0 {
            String::new()
        } else if ratio >= goal {
            format!("  (goal {:.0} %: met)", goal * 100.0)
        } else {
            format!("  (goal {:.0} %: NOT met)", goal * 100.0)
        };
        println!(
            "  {name:<26} {:>8.1} us = {:>6.0}/s   CPU {:>7.1} us = {:>6.0}/s per core -> {:>5.1} % of validation per core (wall {:>4.1} %){verdict}",
            t * 1e6,
            1.0 / t,
            cpu * 1e6,
            1.0 / cpu,
            ratio * 100.0,
            validate / t * 100.0
        );
    }
    let verify = mean(Slot::StageVerify);
    println!("\nWhere a login's wall time goes ({STAGED} of each, staged):");
    println!(
        "  verify_response (base64, profile, signature)  {:>8.1} us",
        verify * 1e6
    );
    for (k, (name, slot)) in [
        (
            "  create (tx: replay, account, roles, audit)  ",
            Slot::StageJitCreate,
        ),
        (
            "  update (tx: replay, lookup, update, audit)  ",
            Slot::StageJitUpdate,
        ),
        (
            "  unchanged (tx: replay, lookup, audit)       ",
            Slot::StageJitSame,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let jit = mean(slot);
        let total = verify + jit;
        let (cpu, writer) = staged_cpu[k];
        println!(
            "{name}  {:>8.1} us  (total {:>7.1} us: verify {:>4.1} %, replay + JIT {:>4.1} %; \
             CPU per login {:>6.1} us, of which the writer thread {:>6.1} us)",
            jit * 1e6,
            total * 1e6,
            verify / total * 100.0,
            jit / total * 100.0,
            cpu.as_secs_f64() / STAGED as f64 * 1e6,
            writer.as_secs_f64() / STAGED as f64 * 1e6
        );
    }
    if let (Some(before), Some(after)) = (stats_before_load, stats_after_load) {
        let (commits, logins) = (after.commits - before.commits, after.logins - before.logins);
        println!(
            "\nLogins in flight shared commits: {logins} logins in {commits} commits of the writer \
             = {:.1} per commit; {} of them ran on a request's thread; {} checkpoints",
            logins as f64 / commits.max(1) as f64,
            after.inline - before.inline,
            after.checkpoints - before.checkpoints
        );
    }
    println!(
        "\nResident memory: {} KiB before load; with 64 logins in flight ({} logins, {:.0}/s) \
         at most {} KiB sampled, {} KiB after; peak of the whole run (VmHWM) {} KiB",
        rss_idle,
        LOAD_ROUNDS * LOAD_LOGINS,
        (LOAD_ROUNDS * LOAD_LOGINS) as f64 / load_time.as_secs_f64(),
        rss_load,
        rss_after,
        hwm
    );
}
