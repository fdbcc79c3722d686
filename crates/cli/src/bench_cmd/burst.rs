//! `latchkey bench login --burst N`: N sign-ins sent at once, and the server's memory.
//!
//! Every Argon2id computation holds its memory cost (19 MiB by default) while it runs, and
//! anyone can start one by posting the sign-in form, so the server's peak memory under a
//! burst is the front door's real bound. The burst uses names that do not exist (they cost
//! the same dummy hash as a real check) from a different address each (`X-Forwarded-For`;
//! the bench server trusts it), so the throttle lets them through and the hash pool's bound
//! is what is measured. The peak is the kernel's high-water mark (`VmHWM`), not a sample.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::StatusCode;
use reqwest::header::COOKIE;

use super::server::BenchServer;
use crate::stdout::outln;

/// A CSRF value of the shape the server issues: the check only compares cookie and field.
const CSRF: &str = "benchburstbenchburstbenchburstbenchburst123";

/// What a burst did.
#[derive(Debug, Default)]
pub struct BurstReport {
    /// Answers by status.
    pub checked: usize,
    pub busy: usize,
    pub throttled: usize,
    pub other: usize,
    /// How long until the last answer.
    pub elapsed: Duration,
    /// `VmRSS` before the burst, and `VmHWM` after it, in KiB.
    pub idle_kib: u64,
    pub peak_kib: u64,
    /// The server's hash bound and the most hashes it ran at once (from `/metrics`).
    pub bound: u64,
    pub peak_hashes: u64,
}

/// Sends `n` sign-ins at once and waits for every answer.
pub async fn run(server: &BenchServer, n: usize) -> anyhow::Result<BurstReport> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()?;
    let idle_kib = server.rss_kib()?;
    let gate = Arc::new(tokio::sync::Barrier::new(n));
    let mut set = tokio::task::JoinSet::new();
    let url = format!("{}/login", server.base());
    let start = Instant::now();
    for i in 0..n {
        let (http, url, gate) = (http.clone(), url.clone(), gate.clone());
        set.spawn(async move {
            let form = [
                ("username", format!("burst-{i}")),
                ("password", "not the password".to_owned()),
                ("csrf", CSRF.to_owned()),
            ];
            let request = http
                .post(url)
                .header(COOKIE, format!("latchkey_csrf={CSRF}"))
                .header(
                    "x-forwarded-for",
                    format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
                )
                .form(&form);
            gate.wait().await;
            request.send().await.map(|r| r.status())
        });
    }
    let mut report = BurstReport {
        idle_kib,
        ..BurstReport::default()
    };
    while let Some(joined) = set.join_next().await {
        match joined.context("a burst task failed")? {
            Ok(StatusCode::UNAUTHORIZED) => report.checked += 1,
            Ok(StatusCode::SERVICE_UNAVAILABLE) => report.busy += 1,
            Ok(StatusCode::TOO_MANY_REQUESTS) => report.throttled += 1,
            _ => report.other += 1,
        }
    }
    report.elapsed = start.elapsed();
    report.peak_kib = server.peak_rss_kib()?;
    let metrics = http
        .get(format!("{}/metrics", server.base()))
        .send()
        .await?
        .text()
        .await?;
    let series = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    };
    report.bound = series("latchkey_password_hash_concurrency_limit");
    report.peak_hashes = series("latchkey_password_hashes_running_peak");
    Ok(report)
}

impl BurstReport {
    /// The report's lines, with the aim: peak under idle + bound x the hash's memory + 50 MiB.
    pub fn print(&self, n: usize, memory_kib: u32) -> anyhow::Result<()> {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let aim = self.idle_kib + self.bound * u64::from(memory_kib) + 50 * 1024;
        outln!(
            "burst of {n} simultaneous sign-ins: {} checked (401), {} refused busy (503), \
             {} throttled (429), {} other, all answered in {:.2} s",
            self.checked,
            self.busy,
            self.throttled,
            self.other,
            self.elapsed.as_secs_f64()
        )?;
        outln!(
            "hash pool: bound {} at once, peak {} at once",
            self.bound,
            self.peak_hashes
        )?;
        outln!(
            "server memory: idle {:.1} MiB, peak {:.1} MiB (VmHWM); aim: under idle + {} x {:.0} MiB + 50 MiB = {:.1} MiB: {}",
            mib(self.idle_kib),
            mib(self.peak_kib),
            self.bound,
            f64::from(memory_kib) / 1024.0,
            mib(aim),
            if self.peak_kib <= aim {
                "met"
            } else {
                "NOT met"
            }
        )
    }
}
