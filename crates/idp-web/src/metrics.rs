//! A small Prometheus registry: a handful of counters and one latency histogram.
//!
//! Hand-rolled rather than a metrics crate because the server exports five series; the text
//! format is simple and stable. Label values are bounded by construction: results and
//! reasons are fixed codes, application labels are registered entity IDs, routes are route
//! templates (never raw paths).

use std::collections::BTreeMap;

use latchkey_idp::error::PageCode;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    logins: BTreeMap<&'static str, u64>,
    assertions: BTreeMap<String, u64>,
    failures: BTreeMap<PageCode, u64>,
    latency: BTreeMap<String, Histogram>,
}

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Reads the log writer's dropped-line count, when the binary wired one in.
    log_drops: OnceLock<LogDrops>,
    mail: OnceLock<std::sync::Arc<latchkey_idp::mail::MailStats>>,
    scim: OnceLock<std::sync::Arc<latchkey_idp::provisioning::worker::DeliveryStats>>,
    checkpoints: OnceLock<std::sync::Arc<latchkey_idp::store::checkpoint::CheckpointStats>>,
    bearer: OnceLock<std::sync::Arc<crate::bearer::BearerStats>>,
}

/// A count kept outside this crate (the binary owns the log writer), read at each scrape.
struct LogDrops(Box<dyn Fn() -> u64 + Send + Sync>);

impl std::fmt::Debug for LogDrops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogDrops")
    }
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        // A poisoned lock only means another thread panicked mid-update; counters stay usable.
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard);
    }

    /// A sign-in attempt ended with `result` (`success` or `failure`).
    pub fn login(&self, result: &'static str) {
        self.with(|m| *m.logins.entry(result).or_default() += 1);
    }

    /// An assertion was issued to the application `entity_id`.
    pub fn assertion(&self, entity_id: &str) {
        self.with(|m| *m.assertions.entry(entity_id.to_owned()).or_default() += 1);
    }

    /// Something was refused; `reason` is the error code.
    pub fn failure(&self, reason: PageCode) {
        self.with(|m| *m.failures.entry(reason).or_default() += 1);
    }

    /// A request to `route` (a route template) took `elapsed`.
    pub fn observe(&self, route: &str, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        self.with(|m| {
            let h = m.latency.entry(route.to_owned()).or_default();
            for (slot, bound) in h.counts.iter_mut().zip(BUCKETS) {
                if secs <= bound {
                    *slot += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        });
    }

    /// Exports `latchkey_log_lines_dropped_total` from `count`, which the log writer keeps:
    /// a writer that drops lines instead of blocking or panicking must say that it did. Only
    /// the first call counts; without one the series is not exported (nothing measures it).
    pub fn count_log_drops(&self, count: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = self.log_drops.set(LogDrops(Box::new(count)));
    }

    /// Exports `latchkey_mail_total{outcome}` (sent, failed after every attempt, dropped
    /// because the queue was full) from the mailer's counters. Only the first call counts.
    pub fn count_mail(&self, stats: std::sync::Arc<latchkey_idp::mail::MailStats>) {
        let _ = self.mail.set(stats);
    }

    /// Exports `latchkey_scim_deliveries_total{outcome}` (delivered, failed and put back for
    /// a retry) from the SCIM worker's counters. Only the first call counts.
    pub fn count_scim(
        &self,
        stats: std::sync::Arc<latchkey_idp::provisioning::worker::DeliveryStats>,
    ) {
        let _ = self.scim.set(stats);
    }

    /// Exports `latchkey_sqlite_checkpoints_total{outcome}` and `latchkey_sqlite_wal_frames`
    /// from the SQLite checkpoint task's counters: a WAL that keeps growing, or rounds that
    /// fail, mean commits have gone back to checkpointing themselves. Only the first call
    /// counts.
    pub fn count_checkpoints(
        &self,
        stats: std::sync::Arc<latchkey_idp::store::checkpoint::CheckpointStats>,
    ) {
        let _ = self.checkpoints.set(stats);
    }

    /// Exports `latchkey_bearer_tokens_refused_total{surface,reason}`: bearer tokens the
    /// admin API and SCIM server answered 401 (`wrong`), and requests refused unread because
    /// their network sent too many of those (`throttled`). Only the first call counts.
    pub fn count_bearer(&self, stats: std::sync::Arc<crate::bearer::BearerStats>) {
        let _ = self.bearer.set(stats);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.with(|m| {
            out.push_str("# HELP latchkey_logins_total Password sign-in attempts by result.\n");
            out.push_str("# TYPE latchkey_logins_total counter\n");
            for (k, v) in &m.logins {
                let _ = writeln!(out, "latchkey_logins_total{{result=\"{k}\"}} {v}");
            }
            out.push_str(
                "# HELP latchkey_assertions_issued_total Assertions issued, by application.\n",
            );
            out.push_str("# TYPE latchkey_assertions_issued_total counter\n");
            for (k, v) in &m.assertions {
                let _ = writeln!(
                    out,
                    "latchkey_assertions_issued_total{{app=\"{}\"}} {v}",
                    label(k)
                );
            }
            out.push_str("# HELP latchkey_failures_total Refused requests and sign-ins, by reason code.\n");
            out.push_str("# TYPE latchkey_failures_total counter\n");
            for (k, v) in &m.failures {
                let _ = writeln!(out, "latchkey_failures_total{{reason=\"{}\"}} {v}", k.as_str());
            }
            out.push_str(
                "# HELP latchkey_http_request_duration_seconds Request latency by route.\n",
            );
            out.push_str("# TYPE latchkey_http_request_duration_seconds histogram\n");
            for (route, h) in &m.latency {
                let route = label(route);
                for (count, bound) in h.counts.iter().zip(BUCKETS) {
                    let _ = writeln!(
                        out,
                        "latchkey_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "latchkey_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "latchkey_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "latchkey_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        });
        if let Some(LogDrops(count)) = self.log_drops.get() {
            out.push_str(
                "# HELP latchkey_log_lines_dropped_total Log lines not written: the writer was behind or failed.\n",
            );
            out.push_str("# TYPE latchkey_log_lines_dropped_total counter\n");
            let _ = writeln!(out, "latchkey_log_lines_dropped_total {}", count());
        }
        if let Some(mail) = self.mail.get() {
            out.push_str("# HELP latchkey_mail_total Invitation and reset mail, by outcome.\n");
            out.push_str("# TYPE latchkey_mail_total counter\n");
            for (outcome, n) in [
                ("sent", mail.sent()),
                ("failed", mail.failed()),
                ("dropped", mail.dropped()),
            ] {
                let _ = writeln!(out, "latchkey_mail_total{{outcome=\"{outcome}\"}} {n}");
            }
        }
        if let Some(scim) = self.scim.get() {
            out.push_str(
                "# HELP latchkey_scim_deliveries_total SCIM outbox deliveries to applications, by outcome.\n",
            );
            out.push_str("# TYPE latchkey_scim_deliveries_total counter\n");
            for (outcome, n) in [("delivered", scim.delivered()), ("failed", scim.failed())] {
                let _ = writeln!(
                    out,
                    "latchkey_scim_deliveries_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        if let Some(c) = self.checkpoints.get() {
            out.push_str(
                "# HELP latchkey_sqlite_checkpoints_total SQLite WAL checkpoints by the server's task, by outcome.\n",
            );
            out.push_str("# TYPE latchkey_sqlite_checkpoints_total counter\n");
            for (outcome, n) in [("done", c.rounds()), ("failed", c.failures())] {
                let _ = writeln!(
                    out,
                    "latchkey_sqlite_checkpoints_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
            out.push_str(
                "# HELP latchkey_sqlite_wal_frames Frames in the SQLite WAL at the last checkpoint.\n",
            );
            out.push_str("# TYPE latchkey_sqlite_wal_frames gauge\n");
            let _ = writeln!(out, "latchkey_sqlite_wal_frames {}", c.wal_frames());
        }
        if let Some(b) = self.bearer.get() {
            out.push_str(
                "# HELP latchkey_bearer_tokens_refused_total Admin API and SCIM requests refused: a wrong bearer token (wrong), or too many of those from the client's network (throttled).\n",
            );
            out.push_str("# TYPE latchkey_bearer_tokens_refused_total counter\n");
            for (surface, reason, n) in b.series() {
                let _ = writeln!(
                    out,
                    "latchkey_bearer_tokens_refused_total{{surface=\"{surface}\",reason=\"{reason}\"}} {n}"
                );
            }
        }
        out
    }
}

/// `latchkey_scim_oldest_removal_age_seconds`: how long the oldest removal waiting in the
/// SCIM outbox has waited (0 when none waits), read from the database at each scrape.
pub fn render_oldest_removal(age: Option<time::Duration>) -> String {
    let seconds = age.map_or(0, |a| a.whole_seconds().max(0));
    format!(
        "# HELP latchkey_scim_oldest_removal_age_seconds How long the oldest removal not yet \
         delivered to its application has waited (someone keeps access there); 0 when none.\n\
         # TYPE latchkey_scim_oldest_removal_age_seconds gauge\n\
         latchkey_scim_oldest_removal_age_seconds {seconds}\n"
    )
}

/// The password-hash pool's series, read from the pool itself at scrape time.
pub fn render_hashing(stats: &latchkey_idp::password::HashStats) -> String {
    let mut out = String::new();
    let mut series = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    };
    series(
        "latchkey_password_hashes_total",
        "counter",
        "Argon2 computations finished (checks, dummy checks for unknown names, new hashes).",
        stats.completed.to_string(),
    );
    series(
        "latchkey_password_hash_refused_total",
        "counter",
        "Requests answered 503 because the hash pool and its queue were full.",
        stats.refused.to_string(),
    );
    series(
        "latchkey_password_hashes_running",
        "gauge",
        "Argon2 computations running now.",
        stats.running.to_string(),
    );
    series(
        "latchkey_password_hashes_running_peak",
        "gauge",
        "The most Argon2 computations that ran at once since start.",
        stats.peak.to_string(),
    );
    series(
        "latchkey_password_hash_concurrency_limit",
        "gauge",
        "The bound on Argon2 computations at once ([password] max_concurrent).",
        stats.max_concurrent.to_string(),
    );
    out
}

/// Escapes a label value (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.login("success");
        m.login("failure");
        m.login("failure");
        m.assertion("https://sp.example/\"x\"");
        m.failure(PageCode::SsoAcs);
        m.observe("/login", Duration::from_millis(30));
        m.observe("/login", Duration::from_secs(20));
        let text = m.render();
        assert!(text.contains("latchkey_logins_total{result=\"failure\"} 2\n"));
        assert!(
            text.contains(
                "latchkey_assertions_issued_total{app=\"https://sp.example/\\\"x\\\"\"} 1"
            )
        );
        assert!(text.contains("latchkey_failures_total{reason=\"SSO-ACS\"} 1"));
        assert!(text.contains("route=\"/login\",le=\"0.025\"} 0"));
        assert!(text.contains("route=\"/login\",le=\"0.05\"} 1"));
        assert!(text.contains("route=\"/login\",le=\"+Inf\"} 2"));
        assert!(text.contains("latchkey_http_request_duration_seconds_count{route=\"/login\"} 2"));
        assert!(!text.contains("latchkey_log_lines_dropped_total"));
    }

    #[test]
    fn mail_outcomes_are_exported_once_a_mailer_is_counted() {
        let m = Metrics::default();
        assert!(!m.render().contains("latchkey_mail_total"));
        let mailer = latchkey_idp::mail::Mailer::disabled();
        m.count_mail(mailer.stats_handle());
        let text = m.render();
        for outcome in ["sent", "failed", "dropped"] {
            assert!(
                text.contains(&format!("latchkey_mail_total{{outcome=\"{outcome}\"}} 0\n")),
                "{text}"
            );
        }
    }

    #[test]
    fn log_drops_are_read_at_each_scrape() {
        let m = Metrics::default();
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = dropped.clone();
        m.count_log_drops(move || seen.load(std::sync::atomic::Ordering::Relaxed));
        assert!(
            m.render()
                .contains("\nlatchkey_log_lines_dropped_total 0\n")
        );
        dropped.store(7, std::sync::atomic::Ordering::Relaxed);
        assert!(
            m.render()
                .contains("\nlatchkey_log_lines_dropped_total 7\n")
        );
    }
}
