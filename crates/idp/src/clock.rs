//! Where the IdP's "now" comes from.
//!
//! Sessions, the sign-in throttle, parked requests, assertions, tokens and audit lines all
//! depend on the time. Reading it from one injected [`Clock`] (held by the [`Store`], which
//! every part of the IdP reaches) lets a test set the time and move it on instead of
//! sleeping, and leaves one place that reads the wall clock: [`SystemClock`]. `clippy.toml`
//! refuses `OffsetDateTime::now_utc` and friends everywhere else, as rustls does with its
//! `TimeProvider` and kanidm with its clock module.
//!
//! Durations measured on the monotonic clock (`std::time::Instant`: metrics latency, probe
//! timeouts) are not times of day and stay as they are.
//!
//! ```
//! use latchkey_idp::{Clock, ManualClock};
//! use time::macros::datetime;
//!
//! let clock = ManualClock::new(datetime!(2026-01-01 09:00 UTC));
//! clock.advance(time::Duration::minutes(30));
//! assert_eq!(clock.now(), datetime!(2026-01-01 09:30 UTC));
//! ```
//!
//! [`Store`]: crate::Store

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock: the one place the IdP reads the system time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the wall clock
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until it is set or advanced, for tests. Clones share the same
/// time, so a test keeps one and hands another to the store.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock(Arc::new(Mutex::new(at)))
    }

    /// A clock showing the wall clock's time now, then standing still.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    /// Moves the clock on by `by` (back, if negative); past the end of time it stays put.
    pub fn advance(&self, by: Duration) {
        let mut at = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *at = at.checked_add(by).unwrap_or(*at);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_manual_clock_stands_still_and_its_clones_move_together() {
        let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
        let shared = clock.clone();
        assert_eq!(clock.now(), clock.now());
        shared.advance(Duration::seconds(90));
        assert_eq!(clock.now(), datetime!(2026-03-01 12:01:30 UTC));
        clock.set(datetime!(2027-01-01 00:00 UTC));
        assert_eq!(shared.now(), datetime!(2027-01-01 00:00 UTC));
    }

    #[test]
    fn the_system_clock_moves() {
        let before = SystemClock.now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(SystemClock.now() > before);
    }
}
