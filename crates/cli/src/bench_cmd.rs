//! `latchkey bench sso|login|memory|list`: load and memory benchmarks against `latchkey serve`.
//!
//! Each subcommand starts its own server (this binary's `serve`, as a child process, on a
//! free loopback port, with a throwaway data directory), seeds it through the IdP library
//! (users, a group, one application), and drives it over HTTP from this process. Nothing
//! leaves 127.0.0.1.
//!
//! The machine running a benchmark is usually shared, and the load generator itself shares
//! the cores with the server, so rates are given per core: per second of the *server's* CPU
//! time (`/proc/<pid>/stat` utime + stime over the run), beside the in-process rate of the
//! operation that bounds them (RSA signing and `build_response`, or Argon2id), measured in
//! the same run on this thread's CPU time. Ratios of the two are what compare across runs.
//! Linux only (`/proc`).

mod burst;
mod client;
mod list;
mod protocol;
mod raw;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use latchkey_idp::config::PasswordConfig;
use latchkey_idp::session::Sessions;

use crate::stdout::outln;
use client::{Flow, Stats};
use server::BenchServer;

/// Load and memory benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// SSO with an existing session: IdP-initiated and SP-initiated, at several concurrencies.
    Sso(SsoArgs),
    /// Password sign-ins (POST /login) at the configured Argon2id parameters.
    Login(LoginArgs),
    /// Resident memory of the server: idle, then with many live sessions.
    Memory(MemoryArgs),
    /// User, group-member and audit listings and searches at scale (100,000 users, a
    /// million audit lines), through the API and the console; full walks and memory.
    List(list::ListArgs),
    /// The SAML protocol layer on your own files (no server): issuance or validation on
    /// one core, beside the raw signature rate of the same key.
    #[command(subcommand)]
    Protocol(protocol::ProtocolCommand),
}

/// Options every benchmark shares.
#[derive(Debug, Args)]
pub struct Common {
    /// Where the throwaway data directory goes (default: the system's temporary directory).
    /// A tmpfs such as /dev/shm takes the disk's fsync out of the measurement.
    #[arg(long, value_name = "DIR")]
    tmp: Option<PathBuf>,
    /// The `latchkey` binary to run as the server (default: this one).
    #[arg(long, value_name = "FILE")]
    server_bin: Option<PathBuf>,
    /// The spawned server's database instead of SQLite in the throwaway directory, e.g. a
    /// `postgres://` URL. It must be an empty database: the benchmark seeds its own users.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The server's pool size (`[database] max_connections`; default: the backend's).
    #[arg(long, value_name = "N")]
    max_connections: Option<u32>,
}

/// Options of `latchkey bench sso`.
#[derive(Debug, Args)]
pub struct SsoArgs {
    #[command(flatten)]
    common: Common,
    /// Concurrent clients, each with its own session; one run per value and flow.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Seconds per run (a run also ends after --requests flows).
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Most flows per run.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Drive an already running server at this loopback URL instead of spawning one. It
    /// needs an account (--user, --password) assigned to an application (--app, its ID)
    /// whose entity ID is the bench's, for the SP-initiated flow.
    #[arg(long, value_name = "URL", requires_all = ["user", "password", "app"])]
    url: Option<String>,
    /// With --url: the account to sign in as.
    #[arg(long, requires = "url")]
    user: Option<String>,
    /// With --url: its password.
    #[arg(long, requires = "url")]
    password: Option<String>,
    /// With --url: the application's ID.
    #[arg(long, requires = "url")]
    app: Option<String>,
    /// With --url: the server's process ID, for per-core rates (without it they are left
    /// out).
    #[arg(long, requires = "url")]
    pid: Option<u32>,
}

/// Options of `latchkey bench login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    common: Common,
    /// Concurrent clients; one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    clients: Vec<usize>,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Distinct accounts the clients sign in as (in turn).
    #[arg(long, default_value_t = 16)]
    users: usize,
    /// First, N sign-ins sent at once: the answers and the server's peak memory.
    #[arg(long, value_name = "N")]
    burst: Option<usize>,
    /// Each sign-in also passes the second step: `[mfa] required`, every account has a
    /// TOTP app, and after POST /login comes POST /login/mfa with a fresh code. A code
    /// works once per 30-second step, so this needs at least as many accounts (--users) as
    /// sign-ins in 30 s (at least 1,500 are seeded).
    #[arg(long, conflicts_with = "burst")]
    totp: bool,
}

/// Options of `latchkey bench memory`.
#[derive(Debug, Args)]
pub struct MemoryArgs {
    #[command(flatten)]
    common: Common,
    /// Live sessions to create.
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// How many of them are then used over HTTP (an SSO flow each).
    #[arg(long, default_value_t = 2_000)]
    used: usize,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cmd {
        BenchCommand::Sso(args) => runtime.block_on(sso(args))?,
        BenchCommand::Login(args) => runtime.block_on(login(args))?,
        BenchCommand::Memory(args) => runtime.block_on(memory(args))?,
        BenchCommand::List(args) => runtime.block_on(list::run(args))?,
        BenchCommand::Protocol(cmd) => protocol::run(cmd)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_load() -> anyhow::Result<()> {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    outln!(
        "machine: {cores} cores, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

async fn sso(args: SsoArgs) -> anyhow::Result<()> {
    let max_clients = args.clients.iter().copied().max().unwrap_or(1);
    let (spawned, site, pid) = match &args.url {
        Some(url) => {
            let site = client::Site {
                base: loopback(url)?,
                app_id: args.app.clone().unwrap_or_default(),
                user: args.user.clone().unwrap_or_default(),
                password: args.password.clone().unwrap_or_default(),
            };
            outln!("server: {} (not spawned)", site.base)?;
            (None, site, args.pid)
        }
        None => {
            let server = BenchServer::start(&args.common, max_clients).await?;
            outln!(
                "server: pid {} at {}, data in {}, application {}",
                server.pid(),
                server.base(),
                server.dir().display(),
                server.app_id()
            )?;
            let site = server.site();
            let pid = Some(server.pid());
            (Some(server), site, pid)
        }
    };
    print_load()?;
    let ticks = server::clock_ticks();
    let cpu_time = || pid.map(|p| server::process_cpu(p, ticks)).transpose();

    // The server's own key when it was spawned here; else a fresh one of the same kind.
    let material = spawned.as_ref().map(|s| s.signing_material()).transpose()?;
    let generated = match &material {
        Some(_) => None,
        None => Some(raw::rsa2048_key()?),
    };
    let key = match (&material, &generated) {
        (Some(m), _) => &m.key,
        (None, Some(k)) => k,
        (None, None) => bail!("no signing key"),
    };
    let sign = raw::rsa_sign_rate(key, Duration::from_secs(2))?;
    let issue = raw::issuance_rate(key, Duration::from_secs(2))?;
    outln!(
        "in-process, one thread: RSA-2048 sign {:.0}/s per core; build_response (assertion \
         signed, 6 attributes) {:.0}/s per core",
        sign.per_core,
        issue.per_core
    )?;

    let clients = client::sign_in_all(&site, max_clients).await?;
    outln!(
        "\n{:<10} {:>7} {:>8} {:>9} {:>8} {:>13} {:>9} {:>9} {:>9} {:>7}",
        "flow",
        "clients",
        "flows",
        "flows/s",
        "srv CPU",
        "flows/s/core",
        "% issue",
        "p50 ms",
        "p99 ms",
        "errors"
    )?;
    for flow in [Flow::IdpInitiated, Flow::SpInitiated] {
        for &n in &args.clients {
            let cpu_before = cpu_time()?;
            let stats = client::drive(
                &clients[..n.min(clients.len())],
                flow,
                Duration::from_secs(args.seconds),
                args.requests,
            )
            .await;
            let cpu = cpu_time()?
                .zip(cpu_before)
                .map(|(after, before)| after.saturating_sub(before));
            print_row(flow.name(), n, &stats, cpu, issue.per_core)?;
        }
    }
    outln!(
        "\nA flow is one GET with a live session (the launch, or the AuthnRequest) answered 200 \
         with the auto-POST page carrying the SAMLResponse (a 303 to /saml/continue/<key> is \
         followed, as a browser would); flows/s/core divides by the latchkey process's CPU \
         seconds over the run (a PostgreSQL server's are not included); % issue compares \
         that with build_response's in-process rate (aim: at least 70 %)."
    )?;
    outln!(
        "afterwards: in-process RSA-2048 sign {:.0}/s per core (drift check)",
        raw::rsa_sign_rate(key, Duration::from_secs(1))?.per_core
    )?;
    print_load()?;
    if let Some(server) = spawned {
        server.stop();
    }
    Ok(())
}

/// The URL without a trailing slash, if it points at this machine's loopback interface: the
/// tool is a load generator and must not be aimed at anyone else's server.
fn loopback(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
    let host = parsed.host_str().unwrap_or_default();
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") || parsed.scheme() != "http" {
        bail!("--url must be http:// on 127.0.0.1, localhost or [::1], not {url}");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn print_row(
    name: &str,
    clients: usize,
    stats: &Stats,
    cpu: Option<Duration>,
    reference: f64,
) -> anyhow::Result<()> {
    let ok = stats.latencies.len() as f64;
    let per_core = cpu.map(|c| ok / c.as_secs_f64().max(1e-9));
    let shown = |v: Option<f64>, precision: usize, unit: &str| match v {
        Some(v) => format!("{v:.precision$}{unit}"),
        None => "n/a".to_owned(),
    };
    outln!(
        "{:<10} {:>7} {:>8} {:>9.0} {:>8} {:>13} {:>9} {:>9.2} {:>9.2} {:>7}",
        name,
        clients,
        stats.latencies.len(),
        ok / stats.wall.as_secs_f64().max(1e-9),
        shown(cpu.map(|c| c.as_secs_f64()), 1, "s"),
        shown(per_core, 0, ""),
        shown(per_core.map(|p| p / reference * 100.0), 1, "%"),
        stats.percentile(0.50).as_secs_f64() * 1e3,
        stats.percentile(0.99).as_secs_f64() * 1e3,
        stats.errors
    )?;
    if let Some(e) = &stats.first_error {
        outln!("           first error: {e}")?;
    }
    Ok(())
}

/// Accounts seeded for `bench login --totp` at the least: a code is used once per step.
const TOTP_MIN_USERS: usize = 1_500;

async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let users = if args.totp {
        args.users.max(TOTP_MIN_USERS)
    } else {
        args.users.max(1)
    };
    let seeding = Instant::now();
    let (server, accounts) = if args.totp {
        BenchServer::start_totp(&args.common, users).await?
    } else {
        (BenchServer::start(&args.common, users).await?, Vec::new())
    };
    if args.totp {
        outln!(
            "seeded {users} accounts, each with a confirmed TOTP app, in {:.1} s; [mfa] required",
            seeding.elapsed().as_secs_f64()
        )?;
    }
    let totp = args.totp.then(|| client::TotpAccounts::new(accounts));
    let flow = if args.totp {
        Flow::LoginTotp
    } else {
        Flow::Login
    };
    print_load()?;
    let config = PasswordConfig::default();
    outln!(
        "server: pid {} at {}; Argon2id m={} KiB, t={}, p={} (the defaults, OWASP's)",
        server.pid(),
        server.base(),
        config.memory_kib,
        config.iterations,
        config.parallelism
    )?;
    let verify = raw::argon2_verify_rate(&config, Duration::from_secs(3))?;
    outln!(
        "in-process, one thread: Argon2id verify {:.1}/s per core ({:.1} ms each)",
        verify.per_core,
        1e3 / verify.per_core
    )?;
    if let Some(n) = args.burst {
        // Before the timed runs, so "idle" is idle.
        let report = burst::run(&server, n.max(1)).await?;
        report.print(n, config.memory_kib)?;
        outln!()?;
    }
    let max_clients = args.clients.iter().copied().max().unwrap_or(1);
    let clients = client::login_clients(&server, max_clients, users, totp).await?;
    outln!(
        "\n{:<10} {:>7} {:>8} {:>9} {:>8} {:>13} {:>9} {:>9} {:>9} {:>7}",
        "flow",
        "clients",
        "sign-ins",
        "/s",
        "srv CPU",
        "/s/core",
        "% argon2",
        "p50 ms",
        "p99 ms",
        "errors"
    )?;
    for &n in &args.clients {
        let cpu_before = server.cpu_time()?;
        let stats = client::drive(
            &clients[..n.min(clients.len())],
            flow,
            Duration::from_secs(args.seconds),
            u64::MAX,
        )
        .await;
        let cpu = server.cpu_time()? - cpu_before;
        print_row(flow.name(), n, &stats, Some(cpu), verify.per_core)?;
    }
    outln!(
        "\nA sign-in is POST /login with the right password (CSRF cookie and token fetched \
         once per client): lookup, Argon2id verify, throttle reset, new session, audit \
         event, 303. /s/core divides by the server's CPU seconds over the run."
    )?;
    if args.totp {
        outln!(
            "With --totp it is followed by POST /login/mfa with the account's current code: \
             throttle slots, the secret unsealed (AES-256-GCM), HMAC-SHA-1 at three steps, \
             the step recorded, the session stepped up, an audit event, 303 to the portal."
        )?;
    }
    print_load()?;
    server.stop();
    Ok(())
}

async fn memory(args: MemoryArgs) -> anyhow::Result<()> {
    let server = BenchServer::start(&args.common, 1).await?;
    print_load()?;
    outln!(
        "server: pid {} at {}, data in {}",
        server.pid(),
        server.base(),
        server.dir().display()
    )?;
    let started = server.rss_kib()?;
    // Idle means: started, and every path a sign-in uses has run once.
    let clients = client::sign_in_all(&server.site(), 1).await?;
    for flow in [Flow::IdpInitiated, Flow::SpInitiated] {
        let stats = client::drive(&clients, flow, Duration::from_secs(30), 50).await;
        if stats.errors > 0 {
            bail!("warm-up failed: {:?}", stats.first_error);
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = server.rss_kib()?;
    let (anon, file) = server.rss_parts_kib()?;
    outln!(
        "RSS just started {:.1} MiB; idle after a sign-in and 100 SSO flows {:.1} MiB \
         (aim: under 30 MiB), of which {:.1} MiB anonymous (heap and stacks) and {:.1} MiB \
         file pages (the binary's code and data, shared and reclaimable)",
        mib(started),
        mib(idle),
        mib(anon),
        mib(file)
    )?;

    // Sessions live in the store, not in the server's memory: they are created straight into
    // its database (as many sign-ins would), then a sample is used over HTTP so the server
    // reads them through its own pool and caches.
    let store = server.open_store().await?;
    let user = store
        .users()
        .find_by_username(&server::username(0))
        .await?
        .context("the seeded user is missing")?;
    let sessions = Sessions::new(&store);
    let start = Instant::now();
    let mut tokens = Vec::with_capacity(args.used);
    for i in 0..args.sessions {
        let (token, _) = sessions
            .create(&user, store.now(), time::Duration::hours(8))
            .await?;
        if i % (args.sessions / args.used.max(1)).max(1) == 0 && tokens.len() < args.used {
            tokens.push(token.expose().to_owned());
        }
    }
    store.close().await;
    outln!(
        "created {} sessions in the store in {:.1} s",
        args.sessions,
        start.elapsed().as_secs_f64()
    )?;
    let used = client::with_sessions(&server, &tokens)?;
    let stats = client::once_each(&used, Flow::IdpInitiated, 16).await;
    outln!(
        "used {} of them over HTTP (one IdP-initiated SSO each): {} ok, {} errors{}",
        tokens.len(),
        stats.latencies.len(),
        stats.errors,
        stats
            .first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    )?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded = server.rss_kib()?;
    let (anon, file) = server.rss_parts_kib()?;
    outln!(
        "RSS with {} live sessions {:.1} MiB: {:.1} MiB above idle (aim: at most 100 MiB); \
         {:.1} MiB anonymous, {:.1} MiB file pages",
        args.sessions,
        mib(loaded),
        mib(loaded.saturating_sub(idle)),
        mib(anon),
        mib(file)
    )?;
    print_load()?;
    server.stop();
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::loopback;

    #[test]
    fn only_loopback_urls_are_driven() {
        assert_eq!(
            loopback("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(loopback("http://localhost:8080").is_ok());
        assert!(loopback("http://[::1]:8080").is_ok());
        assert!(loopback("http://192.0.2.7:8080").is_err());
        assert!(loopback("http://idp.example.org").is_err());
        assert!(loopback("https://127.0.0.1:8443").is_err());
        assert!(loopback("not a url").is_err());
    }
}
