//! How many refused anonymous messages are written to the audit log: at most
//! [`AUDITED_PER_MINUTE`] a minute on this node, ACS and single logout together.
//!
//! Anyone can post to the ACS and to the SLO endpoint, and each refused message (a Response
//! that is not base64, not signed, not for us) was an audit row and a commit: a flood of junk
//! grew the SP's database by a row a request for as long as it lasted. Past the bound a
//! refusal is still logged, with its operation ID, code and detail, but not audited; the first
//! one past it in a minute is audited saying so, so the audit log shows that refusals went
//! unrecorded and from when. Refusals an application's users cause by mistake (an expired
//! assertion, a second post of one form) come nowhere near the bound.

use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;

/// Refused messages audited a minute on one node: enough for every refusal of real traffic,
/// and 170,000 rows a day at most under a flood that lasts.
pub const AUDITED_PER_MINUTE: u64 = 120;

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record {
    /// Audit it.
    Audit,
    /// Audit it, saying that this minute's further refusals are only logged.
    AuditLast,
    /// Log it only.
    LogOnly,
}

impl Record {
    /// What the audited detail says after the refusal's own, for [`Record::AuditLast`].
    pub(crate) fn note(self) -> &'static str {
        match self {
            Record::AuditLast => {
                " (the last refusal audited this minute: the bound of refused messages audited a \
                 minute is reached, and further ones are only logged until the minute ends)"
            }
            Record::Audit | Record::LogOnly => "",
        }
    }
}

/// The count of refusals audited in the current minute.
#[derive(Debug, Default)]
pub(crate) struct AuditBudget {
    /// The minute (Unix time / 60) and how many refusals it audited.
    minute: Mutex<(i64, u64)>,
}

impl AuditBudget {
    /// Takes one refusal's place, if the minute of `now` has one left. A count under a lock:
    /// of a burst of refusals, exactly the minute's bound are audited.
    pub(crate) fn take(&self, now: OffsetDateTime) -> Record {
        let minute = now.unix_timestamp().div_euclid(60);
        // The lock guards two integers updated together; a poisoned one is still consistent.
        let mut held = self.minute.lock().unwrap_or_else(PoisonError::into_inner);
        if held.0 != minute {
            *held = (minute, 0);
        }
        held.1 = held.1.saturating_add(1);
        match held.1 {
            n if n < AUDITED_PER_MINUTE => Record::Audit,
            n if n == AUDITED_PER_MINUTE => Record::AuditLast,
            _ => Record::LogOnly,
        }
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_minute_audits_its_bound_and_the_next_minute_starts_again() {
        let budget = AuditBudget::default();
        let t = datetime!(2026-12-06 14:00:05 UTC);
        let taken: Vec<Record> = (0..AUDITED_PER_MINUTE + 5)
            .map(|i| budget.take(t + Duration::milliseconds(i as i64 * 100)))
            .collect();
        let audited = taken.iter().filter(|r| **r == Record::Audit).count() as u64;
        assert_eq!(audited, AUDITED_PER_MINUTE - 1);
        assert_eq!(taken[AUDITED_PER_MINUTE as usize - 1], Record::AuditLast);
        assert!(
            taken[AUDITED_PER_MINUTE as usize..]
                .iter()
                .all(|r| *r == Record::LogOnly)
        );
        assert_eq!(budget.take(t + Duration::seconds(55)), Record::Audit);
        assert_eq!(budget.take(t - Duration::seconds(10)), Record::Audit);
    }
}
