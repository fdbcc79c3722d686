//! Timestamps as stored: UTC text with exactly six fractional digits.
//!
//! A fixed width makes string order equal time order on both backends, and text keeps the
//! SQL portable and the rows readable in `sqlite3`/`psql`.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::error::{Error, Result};

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// `at` truncated to what is stored (microseconds), so a value read back compares equal.
pub(crate) fn truncate(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_microsecond(at.microsecond()).unwrap_or(at)
}

/// Formats a timestamp for storage.
pub(crate) fn format(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_else(|_| String::from("0000-01-01T00:00:00.000000Z"))
}

/// Parses a stored timestamp.
pub(crate) fn parse(what: &'static str, text: &str) -> Result<OffsetDateTime> {
    PrimitiveDateTime::parse(text, FORMAT)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|e| Error::corrupt(what, format!("{text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn round_trips_and_sorts_as_text() {
        let a = datetime!(2026-01-02 03:04:05.5 UTC);
        let b = datetime!(2026-01-02 03:04:05.123456 UTC);
        assert_eq!(format(a), "2026-01-02T03:04:05.500000Z");
        assert_eq!(parse("t", &format(b)).unwrap(), b);
        assert!(format(b) < format(a));
    }

    #[test]
    fn a_truncated_time_survives_storage() {
        let t = truncate(datetime!(2026-01-02 03:04:05.123456789 UTC));
        assert_eq!(t, datetime!(2026-01-02 03:04:05.123456 UTC));
        assert_eq!(parse("t", &format(t)).unwrap(), t);
    }
}
