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
//! * returning, unchanged: the account exists and nothing changed (the common case).
//!
//! The Responses are issued beforehand (outside the timed loop) with
//! `profile::idp::build_response`, RSA-2048, 6 attributes, each with its own assertion ID (the
//! replay cache refuses a second use). The timed loop also splits each login into its
//! stages, so the summary can say where the time goes.
// Bench set-up works on fixed inputs; a failure there should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use criterion::Criterion;
use latchkey_saml::assertion::{Attribute, NameId, authn_context, name_id_format};
use latchkey_saml::profile::idp::{
    IdpSettings, Issuance, ResponseTarget, SignedParts, build_response,
};
use latchkey_saml::profile::validate_response;
use latchkey_sp::acs;
use latchkey_sp::idp::IdpTrust;
use latchkey_sp::jit::{Contract, JitEngine, Outcome};
use latchkey_sp::replay::SqlReplayCache;
use latchkey_sp::settings::SpConfig;
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
    StageVerify,
    RoundTrip,
    StageJitCreate,
    StageJitUpdate,
    StageJitSame,
}

const SLOTS: usize = 9;

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

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, in ticks of
/// 10 ms, fine for batches of seconds).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields 14 and 15 of the file are the 12th and 13th after the command name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
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
}

impl Idp {
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
            ISSUED,
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
}

struct App {
    sp: ServiceProvider,
    replay: SqlReplayCache,
    engine: JitEngine<SqlAccountStore>,
}

async fn app(dir: &Path, idp: &Idp) -> App {
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
    let url = format!("sqlite://{}?mode=rwc", dir.join("app.sqlite").display());
    let db = Database::connect(&url).await.unwrap();
    App {
        sp: ServiceProvider::new(&config, None, trust).unwrap(),
        replay: SqlReplayCache::new(db.clone()),
        engine: JitEngine::new(
            Contract::from_toml(CONTRACT).unwrap(),
            SqlAccountStore::new(db),
        ),
    }
}

/// One login through `acs::run`, checked for the expected outcome.
async fn login(app: &App, form: &AcsForm, want: Outcome) {
    let done = acs::run(&app.sp, form, &app.replay, &app.engine, NOW)
        .await
        .unwrap();
    assert_eq!(done.provisioned.outcome, want);
}

/// The same login split into its stages, each timed into its slot: the Response's checks,
/// then the replay cache and JIT (one transaction).
async fn staged(app: &App, form: &AcsForm, jit_slot: Slot) {
    let t0 = Instant::now();
    let verified = app.sp.verify_response(form, NOW).await.unwrap();
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
    };
    let app = rt.block_on(app(dir.path(), &idp));
    let profile = app.sp.profile_settings();
    let sample = idp.response(0, "Person 0");
    assert!(validate_response(&profile, &sample, None, NOW).is_ok());

    // People who already have an account, for the returning logins.
    const RETURNING: u64 = 200;
    rt.block_on(async {
        for p in 0..RETURNING {
            login(&app, &idp.form(p, "Person"), Outcome::Created).await;
        }
    });
    let mut next_new = RETURNING;
    let mut round = 0u64;

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
    c.bench_function("sqlite/one statement through the pool (SELECT 1)", |b| {
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
    c.final_summary();

    if TOTALS.lock().unwrap()[..4].iter().any(|(_, n, _)| *n == 0) {
        return; // a filtered run: no summary
    }

    // Where the time goes: the same three kinds of login, split into stages.
    const STAGED: u64 = 150;
    rt.block_on(async {
        let forms: Vec<AcsForm> = (0..STAGED).map(|i| idp.form(next_new + i, "P")).collect();
        for f in &forms {
            staged(&app, f, Slot::StageJitCreate).await;
        }
        let display = format!("Person staged {round}");
        let forms: Vec<AcsForm> = (0..STAGED).map(|i| idp.form(i, &display)).collect();
        for f in &forms {
            staged(&app, f, Slot::StageJitUpdate).await;
        }
        let forms: Vec<AcsForm> = (0..STAGED).map(|i| idp.form(i, &display)).collect();
        for f in &forms {
            staged(&app, f, Slot::StageJitSame).await;
        }
    });

    let validate = mean(Slot::Validate);
    println!(
        "\nACS logins on SQLite (file in {}, WAL) beside the protocol layer's validation, \
         RSA-2048, Response {} bytes; per core = per second of this process's CPU time:",
        dir.path().display(),
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
    for (name, slot, goal) in [
        ("first login (create)", Slot::First, 0.0),
        ("returning, changed", Slot::ReturnChanged, 0.5),
        ("returning, unchanged", Slot::ReturnSame, 0.5),
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
    for (name, slot) in [
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
    ] {
        let jit = mean(slot);
        let total = verify + jit;
        println!(
            "{name}  {:>8.1} us  (total {:>7.1} us: verify {:>4.1} %, replay + JIT {:>4.1} %)",
            jit * 1e6,
            total * 1e6,
            verify / total * 100.0,
            jit / total * 100.0
        );
    }
}
