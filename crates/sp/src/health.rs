//! Whether the SP can log anyone in, as far as its IdP metadata goes: for a health check.
//!
//! A failed metadata refresh keeps the keys already trusted ([`crate::fetch`]), which is right
//! for an IdP that is restarting, but left alone it is silent: refreshes failing until the
//! metadata's `validUntil` passes end every login, and failing for long keep stale keys
//! trusted. [`crate::ServiceProvider::metadata_status`] says so, as a small serialisable
//! [`MetadataStatus`] whose [`Verdict`] an application can put behind its `/readyz`.
//!
//! A readiness check anyone may call shows [`ReadyCode`]s and
//! [`MetadataStatus::public`], never an error's text (a URL, a path, a server's answer):
//! that goes to the log.

use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::idp::IdpTrust;

latchkey_saml::stable_codes! {
    /// Why an SP is not (fully) ready, as its readiness check shows it to anyone
    /// (snake_case, beside `"ok"`); the detail is only in the log.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
    #[serde(rename_all = "snake_case")]
    #[non_exhaustive]
    pub enum ReadyCode {
        /// The trusted IdP metadata expired (its `validUntil` passed): every login is
        /// refused until a refresh succeeds. Not ready.
        MetadataExpired = "metadata_expired",
        /// The last refreshes of the IdP metadata failed; logins go on with the keys
        /// trusted. Ready, but worth an alert.
        MetadataFetchFailed = "metadata_fetch_failed",
        /// The database did not take a login's transaction within the probe's bound (its
        /// write lock held elsewhere, or overloaded). Not ready.
        DatabaseBusy = "database_busy",
        /// The database failed the probe (closed, unreachable, refusing). Not ready.
        DatabaseFailed = "database_failed",
    }
}

impl ReadyCode {
    /// The code for a failed [`crate::store::Database::probe`].
    pub fn for_probe(error: &StoreError) -> Self {
        match error {
            StoreError::TimedOut(_) | StoreError::Busy(_) => Self::DatabaseBusy,
            _ => Self::DatabaseFailed,
        }
    }
}

/// What a readiness check found last time, so that its log line is said when the finding
/// changes, not at every call: anyone may call a `/readyz`, as often as they like, and a
/// line per call would let them fill the log. The IdP's `/readyz` and the demo apps' keep
/// one each.
#[derive(Debug)]
pub struct LastFinding<T>(Mutex<Option<T>>);

impl<T> Default for LastFinding<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T: PartialEq + Clone> LastFinding<T> {
    /// Records `now`. `Some(before)` when it differs from the finding recorded last
    /// (`before` is `None` at the first call): the caller says it. `None` when it is the
    /// same: nothing new to say.
    pub fn changed(&self, now: T) -> Option<Option<T>> {
        // Each update is one assignment: a poisoned lock still holds a whole finding.
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if last.as_ref() == Some(&now) {
            return None;
        }
        Some(last.replace(now))
    }
}

/// The longest error message kept from a failed refresh (the rest is in the log).
const MAX_ERROR_CHARS: usize = 512;

/// What the metadata allows, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The trusted copy expired (its `validUntil` passed): every login is refused until a
    /// refresh succeeds. Not ready.
    CannotLogIn,
    /// Logins work on the keys trusted, but the last refresh failed: a key rollover at the
    /// IdP would not be followed, and the copy may expire. Ready, but worth an alert.
    Degraded,
    /// The trusted copy is current and the last refresh (if any) succeeded.
    Ok,
}

/// The last failed refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshFailure {
    /// When it failed.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why (the error, cut to a few hundred characters).
    pub error: String,
}

/// The IdP metadata's health, as [`crate::ServiceProvider::metadata_status`] reports it.
///
/// JSON shape: `{"verdict": "ok" | "degraded" | "cannot_log_in", "detail": "...", "idp":
/// "...", "valid_until": RFC 3339 | null, "last_refresh": RFC 3339 | null, "last_failure":
/// {"at", "error"} | null, "consecutive_failures": n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataStatus {
    /// The verdict.
    pub verdict: Verdict,
    /// The verdict in a sentence, for the operator.
    pub detail: String,
    /// The trusted IdP's entity ID.
    pub idp: String,
    /// When the trusted copy expires, if it says.
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
    /// When a refresh last succeeded; `None` when none has since the SP started (the copy
    /// is the one it started with).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_refresh: Option<OffsetDateTime>,
    /// The last failed refresh, if any since the SP started.
    pub last_failure: Option<RefreshFailure>,
    /// Failed refreshes since the last success (0 when the last one succeeded).
    pub consecutive_failures: u32,
}

impl MetadataStatus {
    /// Whether the SP can log anyone in (anything but [`Verdict::CannotLogIn`]).
    pub fn can_log_in(&self) -> bool {
        self.verdict != Verdict::CannotLogIn
    }

    /// The verdict's code; `None` when it is [`Verdict::Ok`].
    pub fn code(&self) -> Option<ReadyCode> {
        match self.verdict {
            Verdict::CannotLogIn => Some(ReadyCode::MetadataExpired),
            Verdict::Degraded => Some(ReadyCode::MetadataFetchFailed),
            Verdict::Ok => None,
        }
    }

    /// What of the status may be shown to anyone (an anonymous `/readyz`): the verdict, its
    /// code and the times and counts, without [`MetadataStatus::detail`] or the failed
    /// refresh's error text, which only the log has.
    pub fn public(&self) -> PublicMetadataStatus {
        PublicMetadataStatus {
            verdict: self.verdict,
            code: self.code(),
            idp: self.idp.clone(),
            valid_until: self.valid_until,
            last_refresh: self.last_refresh,
            last_failure_at: self.last_failure.as_ref().map(|f| f.at),
            consecutive_failures: self.consecutive_failures,
        }
    }
}

/// [`MetadataStatus`] without its text, for anyone to see ([`MetadataStatus::public`]).
///
/// JSON shape: `{"verdict": "ok" | "degraded" | "cannot_log_in", "code": null |
/// "metadata_fetch_failed" | "metadata_expired", "idp": "...", "valid_until": RFC 3339 |
/// null, "last_refresh": RFC 3339 | null, "last_failure_at": RFC 3339 | null,
/// "consecutive_failures": n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicMetadataStatus {
    /// The verdict.
    pub verdict: Verdict,
    /// The verdict's code, `None` when ok.
    pub code: Option<ReadyCode>,
    /// The trusted IdP's entity ID (published in its metadata).
    pub idp: String,
    /// When the trusted copy expires, if it says.
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
    /// When a refresh last succeeded.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_refresh: Option<OffsetDateTime>,
    /// When the last failed refresh failed (why is in the log).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_failure_at: Option<OffsetDateTime>,
    /// Failed refreshes since the last success.
    pub consecutive_failures: u32,
}

/// How the refreshes of one SP's metadata went; kept in the [`crate::ServiceProvider`].
#[derive(Debug, Default)]
pub(crate) struct RefreshLog {
    state: Mutex<Refreshes>,
}

#[derive(Debug, Default, Clone)]
struct Refreshes {
    last_success: Option<OffsetDateTime>,
    last_failure: Option<RefreshFailure>,
    consecutive_failures: u32,
}

impl RefreshLog {
    fn state(&self) -> std::sync::MutexGuard<'_, Refreshes> {
        // Each update leaves the record whole, so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A refresh (scheduled or forced) succeeded at `at`.
    pub(crate) fn succeeded(&self, at: OffsetDateTime) {
        let mut state = self.state();
        state.last_success = Some(at);
        state.consecutive_failures = 0;
    }

    /// A refresh failed at `at` with `error`.
    pub(crate) fn failed(&self, at: OffsetDateTime, error: &dyn std::fmt::Display) {
        let mut error = error.to_string();
        if let Some((cut, _)) = error.char_indices().nth(MAX_ERROR_CHARS) {
            error.truncate(cut);
            error.push('…');
        }
        let mut state = self.state();
        state.last_failure = Some(RefreshFailure { at, error });
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
    }

    /// The status of `idp` (the copy trusted now) at `now`.
    pub(crate) fn status(&self, idp: &IdpTrust, now: OffsetDateTime) -> MetadataStatus {
        let state = self.state().clone();
        status(idp, state, now)
    }
}

fn status(idp: &IdpTrust, state: Refreshes, now: OffsetDateTime) -> MetadataStatus {
    let failing = state.consecutive_failures > 0;
    let (verdict, detail) = match idp.valid_until {
        Some(until) if idp.is_expired(now) => (
            Verdict::CannotLogIn,
            if failing {
                format!(
                    "the IdP metadata expired at {until} and {} refreshes in a row failed: \
                     every login is refused",
                    state.consecutive_failures
                )
            } else {
                format!("the IdP metadata expired at {until}: every login is refused")
            },
        ),
        _ if failing => (
            Verdict::Degraded,
            format!(
                "{} metadata refreshes in a row failed; logins use the keys trusted{}",
                state.consecutive_failures,
                match idp.valid_until {
                    Some(until) => format!(" until the copy expires at {until}"),
                    None => String::new(),
                }
            ),
        ),
        _ => (Verdict::Ok, "ok".to_owned()),
    };
    MetadataStatus {
        verdict,
        detail,
        idp: idp.entity_id.clone(),
        valid_until: idp.valid_until,
        last_refresh: state.last_success,
        last_failure: state.last_failure,
        consecutive_failures: state.consecutive_failures,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use time::Duration;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-07 12:00 UTC);

    #[test]
    fn a_finding_is_news_once_until_it_changes() {
        let last = LastFinding::default();
        assert_eq!(last.changed("ok"), Some(None));
        assert_eq!(last.changed("ok"), None);
        assert_eq!(last.changed("database_busy"), Some(Some("ok")));
        assert_eq!(last.changed("database_busy"), None);
        assert_eq!(last.changed("database_busy"), None);
        assert_eq!(last.changed("ok"), Some(Some("database_busy")));
    }

    fn idp(valid_until: Option<OffsetDateTime>) -> IdpTrust {
        IdpTrust {
            entity_id: "https://idp.example".to_owned(),
            sso_url: "https://idp.example/sso".to_owned(),
            slo_url: None,
            keys: Vec::new(),
            want_authn_requests_signed: false,
            cache_duration: None,
            valid_until,
        }
    }

    #[test]
    fn fresh_metadata_is_ok() {
        let log = RefreshLog::default();
        let s = log.status(&idp(Some(NOW + Duration::hours(1))), NOW);
        assert_eq!(s.verdict, Verdict::Ok);
        assert!(s.can_log_in());
        assert_eq!((s.last_refresh, s.consecutive_failures), (None, 0));
        log.succeeded(NOW);
        assert_eq!(log.status(&idp(None), NOW).last_refresh, Some(NOW));
    }

    #[test]
    fn a_failed_refresh_degrades_until_one_succeeds() {
        let log = RefreshLog::default();
        log.succeeded(NOW - Duration::hours(2));
        log.failed(NOW - Duration::minutes(2), &"connection refused");
        log.failed(NOW - Duration::minutes(1), &"connection refused");
        let s = log.status(&idp(Some(NOW + Duration::hours(1))), NOW);
        assert_eq!(s.verdict, Verdict::Degraded);
        assert!(s.can_log_in());
        assert_eq!(s.consecutive_failures, 2);
        assert_eq!(s.last_refresh, Some(NOW - Duration::hours(2)));
        assert_eq!(
            s.last_failure,
            Some(RefreshFailure {
                at: NOW - Duration::minutes(1),
                error: "connection refused".to_owned()
            })
        );
        assert!(
            s.detail.contains("2 metadata refreshes in a row failed"),
            "{}",
            s.detail
        );

        log.succeeded(NOW);
        let s = log.status(&idp(Some(NOW + Duration::hours(1))), NOW);
        assert_eq!(s.verdict, Verdict::Ok);
        assert_eq!(s.consecutive_failures, 0);
        // The last failure stays on record, for the operator.
        assert!(s.last_failure.is_some());
    }

    #[test]
    fn expired_metadata_cannot_log_in() {
        let log = RefreshLog::default();
        let until = NOW - Duration::seconds(1);
        let s = log.status(&idp(Some(until)), NOW);
        assert_eq!(s.verdict, Verdict::CannotLogIn);
        assert!(!s.can_log_in());
        // Expiry is the worse news, failing refreshes or not; exactly at validUntil too.
        log.failed(NOW, &"HTTP 500");
        assert_eq!(
            log.status(&idp(Some(NOW)), NOW).verdict,
            Verdict::CannotLogIn
        );
        assert_eq!(
            log.status(&idp(Some(NOW + Duration::seconds(1))), NOW)
                .verdict,
            Verdict::Degraded
        );
    }

    #[test]
    fn the_status_serialises_in_its_documented_shape() {
        let log = RefreshLog::default();
        log.failed(NOW, &"x".repeat(2 * MAX_ERROR_CHARS));
        let json = serde_json::to_value(log.status(&idp(Some(NOW)), NOW)).unwrap();
        assert_eq!(json["verdict"], "cannot_log_in");
        assert_eq!(json["valid_until"], "2026-12-07T12:00:00Z");
        assert_eq!(json["last_refresh"], serde_json::Value::Null);
        assert_eq!(json["last_failure"]["at"], "2026-12-07T12:00:00Z");
        assert_eq!(
            json["last_failure"]["error"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            MAX_ERROR_CHARS + 1
        );
        assert_eq!(json["consecutive_failures"], 1);
    }

    #[test]
    fn the_public_status_carries_codes_not_error_text() {
        let log = RefreshLog::default();
        log.failed(NOW, &"GET https://idp.internal:8443/metadata: HTTP 500");
        let s = log.status(&idp(Some(NOW + Duration::hours(1))), NOW);
        assert_eq!(s.code(), Some(ReadyCode::MetadataFetchFailed));
        let json = serde_json::to_value(s.public()).unwrap();
        assert_eq!(json["code"], "metadata_fetch_failed");
        assert_eq!(json["last_failure_at"], "2026-12-07T12:00:00Z");
        assert_eq!(json["consecutive_failures"], 1);
        let text = json.to_string();
        assert!(
            !text.contains("internal") && !text.contains("500"),
            "{text}"
        );
        let expired = log.status(&idp(Some(NOW)), NOW);
        assert_eq!(expired.code(), Some(ReadyCode::MetadataExpired));
        assert_eq!(
            serde_json::to_value(expired.public()).unwrap()["code"],
            "metadata_expired"
        );
        assert_eq!(RefreshLog::default().status(&idp(None), NOW).code(), None);
        assert_eq!(
            ReadyCode::for_probe(&StoreError::TimedOut(std::time::Duration::from_secs(2))),
            ReadyCode::DatabaseBusy
        );
    }
}
