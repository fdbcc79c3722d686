//! `xs:dateTime` and `xs:duration`, as SAML uses them.
//!
//! We always write UTC with whole seconds (`2026-11-28T14:05:09Z`): SAML core §1.3.3
//! requires UTC, and peers differ on fractional seconds. We read what peers send: fractional
//! seconds (truncated to nanoseconds), `Z` or a `±hh:mm` offset, and (leniently) no
//! zone at all, which is taken as UTC as most implementations do.
//!
//! The parsers are hand-written rather than the `time` crate's RFC 3339 format because
//! `xs:dateTime` is not RFC 3339: it allows a missing zone and `24:00:00`, forbids
//! lower-case `t`/`z`, and allows years beyond 9999.

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::error::{Error, Result};

/// Formats `t` as `YYYY-MM-DDThh:mm:ssZ` in UTC, dropping any fraction of a second.
///
/// Written digit by digit: an assertion carries half a dozen instants, and `format!` made
/// them a noticeable part of issuing one.
pub fn format_datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let mut out = String::with_capacity(20);
    let year = t.year();
    if (0..=9999).contains(&year) {
        push_digits(&mut out, year.unsigned_abs(), 4);
    } else {
        // Outside what four digits hold (never for a real instant): as `format!` did.
        out.push_str(&format!("{year:04}"));
    }
    for (separator, value) in [
        ('-', u8::from(t.month())),
        ('-', t.day()),
        ('T', t.hour()),
        (':', t.minute()),
        (':', t.second()),
    ] {
        out.push(separator);
        push_digits(&mut out, u32::from(value), 2);
    }
    out.push('Z');
    out
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u32.pow(place)) % 10;
        out.push(char::from_digit(digit, 10).unwrap_or('0'));
    }
}

/// Parses an `xs:dateTime`.
pub fn parse_datetime(s: &str) -> Result<OffsetDateTime> {
    let bad = || invalid_datetime(s);
    let b = s.as_bytes();
    // Date: YYYY-MM-DD (four digits for the year; we do not accept other widths).
    if b.len() < 19 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let year = digits(b, 0, 4).ok_or_else(bad)?;
    let month = digits(b, 5, 2).ok_or_else(bad)?;
    let day = digits(b, 8, 2).ok_or_else(bad)?;
    if b.get(10) != Some(&b'T') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return Err(bad());
    }
    let hour = digits(b, 11, 2).ok_or_else(bad)?;
    let minute = digits(b, 14, 2).ok_or_else(bad)?;
    let second = digits(b, 17, 2).ok_or_else(bad)?;
    let mut pos = 19;
    let mut nanos: u32 = 0;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        let mut scale = 100_000_000u32;
        while let Some(c) = b.get(pos).filter(|c| c.is_ascii_digit()) {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
            pos += 1;
        }
        if pos == start {
            return Err(bad());
        }
    }
    let offset = match b.get(pos..).unwrap_or_default() {
        b"" | b"Z" => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest.get(2) == Some(&b':') => {
            let h = digits(rest, 0, 2).ok_or_else(bad)?;
            let m = digits(rest, 3, 2).ok_or_else(bad)?;
            if h > 14 || m > 59 || (h == 14 && m != 0) {
                return Err(bad());
            }
            let secs = i32::try_from(h * 3600 + m * 60).map_err(|_| bad())?;
            let secs = if *sign == b'-' { -secs } else { secs };
            UtcOffset::from_whole_seconds(secs).map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    let year = i32::try_from(year).map_err(|_| bad())?;
    let month = Month::try_from(u8::try_from(month).map_err(|_| bad())?).map_err(|_| bad())?;
    let date = Date::from_calendar_date(year, month, u8::try_from(day).map_err(|_| bad())?)
        .map_err(|_| bad())?;
    // 24:00:00 is the first instant of the next day.
    let (time, date) = if hour == 24 && minute == 0 && second == 0 && nanos == 0 {
        (Time::MIDNIGHT, date.next_day().ok_or_else(bad)?)
    } else {
        let t = Time::from_hms_nano(
            u8::try_from(hour).map_err(|_| bad())?,
            u8::try_from(minute).map_err(|_| bad())?,
            u8::try_from(second).map_err(|_| bad())?,
            nanos,
        )
        .map_err(|_| bad())?;
        (t, date)
    };
    Ok(PrimitiveDateTime::new(date, time)
        .assume_offset(offset)
        .to_offset(UtcOffset::UTC))
}

/// Cold and out of line: one copy of the error's allocation instead of one per refusal
/// inlined among the checks of every timestamp read.
#[cold]
#[inline(never)]
fn invalid_datetime(s: &str) -> Error {
    Error::InvalidDateTime(s.to_owned())
}

/// Reads `len` ASCII digits at `at`.
fn digits(b: &[u8], at: usize, len: usize) -> Option<u32> {
    let part = b.get(at..at.checked_add(len)?)?;
    part.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Parses an `xs:duration` such as `PT6H` or `P1Y2M3DT4H5M6.5S`.
///
/// Years count as 365 days and months as 30 days: metadata `cacheDuration` is a hint for
/// refetching, where calendar precision does not matter, and a fixed rule keeps the
/// result independent of the date it is applied to.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::InvalidDuration(s.to_owned());
    let (negative, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let rest = rest.strip_prefix('P').ok_or_else(bad)?;
    if rest.is_empty() || rest.ends_with('T') {
        return Err(bad());
    }
    let mut in_time = false;
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut seen_any = false;
    // Designators must appear in this order, each at most once.
    let mut last_rank = 0u8;
    for c in rest.chars() {
        if c == 'T' {
            if in_time || !number.is_empty() {
                return Err(bad());
            }
            in_time = true;
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let (rank, unit_secs) = match (in_time, c) {
            (false, 'Y') => (1, 365 * 86_400),
            (false, 'M') => (2, 30 * 86_400),
            (false, 'D') => (3, 86_400),
            (true, 'H') => (4, 3_600),
            (true, 'M') => (5, 60),
            (true, 'S') => (6, 1),
            _ => return Err(bad()),
        };
        if rank <= last_rank || number.is_empty() || (number.contains('.') && rank != 6) {
            return Err(bad());
        }
        last_rank = rank;
        let part = if rank == 6 {
            let secs: f64 = number.parse().map_err(|_| bad())?;
            if !secs.is_finite() {
                return Err(bad());
            }
            Duration::checked_seconds_f64(secs).ok_or_else(bad)?
        } else {
            let n: i64 = number.parse().map_err(|_| bad())?;
            Duration::seconds(n.checked_mul(unit_secs).ok_or_else(bad)?)
        };
        total = total.checked_add(part).ok_or_else(bad)?;
        number.clear();
        seen_any = true;
    }
    if !number.is_empty() || !seen_any || (in_time && last_rank < 4) {
        return Err(bad());
    }
    Ok(if negative { -total } else { total })
}

/// Formats a duration as `PT<seconds>S` (whole seconds), the simplest valid form.
pub fn format_duration(d: Duration) -> String {
    let secs = d.whole_seconds();
    if secs < 0 {
        format!("-PT{}S", secs.unsigned_abs())
    } else {
        format!("PT{secs}S")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_utc_whole_seconds() {
        assert_eq!(
            format_datetime(datetime!(2026-11-28 14:05:09.999 UTC)),
            "2026-11-28T14:05:09Z"
        );
        assert_eq!(
            format_datetime(datetime!(2026-11-28 16:05:09 +02:00)),
            "2026-11-28T14:05:09Z"
        );
    }

    #[test]
    fn parses_variants() {
        let want = datetime!(2026-11-28 14:05:09 UTC);
        assert_eq!(parse_datetime("2026-11-28T14:05:09Z").unwrap(), want);
        assert_eq!(parse_datetime("2026-11-28T14:05:09").unwrap(), want);
        assert_eq!(parse_datetime("2026-11-28T16:05:09+02:00").unwrap(), want);
        assert_eq!(parse_datetime("2026-11-28T13:35:09-00:30").unwrap(), want);
        assert_eq!(
            parse_datetime("2026-11-28T14:05:09.123456789123Z").unwrap(),
            datetime!(2026-11-28 14:05:09.123456789 UTC)
        );
        assert_eq!(
            parse_datetime("2026-11-28T24:00:00Z").unwrap(),
            datetime!(2026-11-29 00:00:00 UTC)
        );
    }

    #[test]
    fn round_trips() {
        let t = datetime!(1999-01-02 03:04:05 UTC);
        assert_eq!(parse_datetime(&format_datetime(t)).unwrap(), t);
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2026-11-28",
            "2026-11-28 14:05:09Z",
            "2026-11-28t14:05:09Z",
            "2026-11-28T14:05:09z",
            "2026-13-28T14:05:09Z",
            "2026-02-30T14:05:09Z",
            "2026-11-28T25:05:09Z",
            "2026-11-28T14:05:09.Z",
            "2026-11-28T14:05:09+2:00",
            "2026-11-28T14:05:09+15:00",
            "2026-11-28T14:05:09Zjunk",
            "２026-11-28T14:05:09Z",
            "+026-11-28T14:05:09Z",
        ] {
            assert!(parse_datetime(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT6H").unwrap(), Duration::hours(6));
        assert_eq!(parse_duration("P1D").unwrap(), Duration::days(1));
        assert_eq!(
            parse_duration("P1Y2M3DT4H5M6.5S").unwrap(),
            Duration::days(365 + 60 + 3)
                + Duration::hours(4)
                + Duration::minutes(5)
                + Duration::milliseconds(6500)
        );
        assert_eq!(parse_duration("-PT1M").unwrap(), Duration::minutes(-1));
        assert_eq!(parse_duration("PT0S").unwrap(), Duration::ZERO);
        for s in [
            "", "P", "PT", "P1H", "PT1D", "1D", "P1DT", "PT1H1H", "PT1M1H", "P1.5D", "PTS", "P1D2",
        ] {
            assert!(parse_duration(s).is_err(), "{s:?} accepted");
        }
        let d = Duration::seconds(21_600);
        assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
    }

    proptest::proptest! {
        #[test]
        fn format_parse_round_trip(secs in -62_000_000_000i64..250_000_000_000i64) {
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            proptest::prop_assert_eq!(parse_datetime(&format_datetime(t)).unwrap(), t);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_datetime(&s);
            let _ = parse_duration(&s);
        }

        #[test]
        fn near_miss_datetimes_never_panic(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?") {
            let _ = parse_datetime(&s);
        }

        #[test]
        fn near_miss_durations_never_panic(s in "-?P([0-9]{1,20}[YMD]){0,3}(T([0-9.]{1,25}[HMS]){0,3})?") {
            let _ = parse_duration(&s);
        }
    }
}
