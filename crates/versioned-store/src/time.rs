//! Calendar time for names and messages: Unix milliseconds as UTC fields, and
//! RFC 3339 / ISO 8601 times as Unix milliseconds (through `jiff`).

/// A UTC time broken into its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub milli: i64,
}

/// `ms` as a jiff time; times beyond the latest and earliest jiff represents
/// are clamped to them (a store's times are well inside, but a lease of
/// `u64::MAX` seconds saturates to `i64::MAX` ms). Not clamped to
/// `Timestamp::MAX.as_millisecond()`: that is 999 ms past the last
/// millisecond `from_millisecond` takes, and panicked.
fn timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// Unix milliseconds as UTC fields.
pub fn utc(ms: i64) -> Utc {
    let t = jiff::tz::TimeZone::UTC.to_datetime(timestamp(ms));
    Utc {
        year: t.year().into(),
        month: t.month().into(),
        day: t.day().into(),
        hour: t.hour().into(),
        minute: t.minute().into(),
        second: t.second().into(),
        milli: t.millisecond().into(),
    }
}

/// Unix milliseconds of an RFC 3339 / ISO 8601 time: `2025-10-01T12:00:00Z`,
/// with fractions (to the nanosecond, cut to the millisecond), with an offset
/// (`+01:00`, `-0800`), a space for the `T`; without an offset it is read as
/// UTC (Python's naive `isoformat()`). `None` for anything else.
pub fn parse_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond());
    }
    let civil = s.parse::<jiff::civil::DateTime>().ok()?;
    // A date-time with an offset that jiff's timestamp parser refused is not
    // read as UTC: only one with no offset at all.
    if s.len() > 10 && s[10..].contains(['+', 'Z', 'z']) {
        return None;
    }
    let t = jiff::tz::TimeZone::UTC.to_timestamp(civil).ok()?;
    Some(t.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_known_times() {
        let t = utc(1_795_313_622_123);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second, t.milli),
            (2026, 11, 22, 2, 13, 42, 123)
        );
        let leap = utc(951_782_400_000);
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
        let before = utc(-1);
        assert_eq!((before.year, before.second, before.milli), (1969, 59, 999));
        // Beyond what jiff represents: clamped (a lease that saturated).
        assert_eq!(utc(i64::MAX).year, 9999);
        assert_eq!(utc(i64::MIN).year, -9999);
        assert_eq!(utc(253_402_207_200_999).year, 9999);
    }

    #[test]
    fn times_as_other_tools_write_them() {
        assert_eq!(parse_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_ms("2026-11-22T02:13:42Z"), Some(1_795_313_622_000));
        // Go's RFC3339Nano, with a negative offset.
        assert_eq!(
            parse_ms("2026-11-21T18:13:42.123456789-08:00"),
            Some(1_795_313_622_123)
        );
        // Python's isoformat(): microseconds and an offset, or naive.
        assert_eq!(
            parse_ms("2025-12-26T11:27:25.123456+00:00"),
            Some(1_766_748_445_123)
        );
        assert_eq!(
            parse_ms("2025-12-26T11:27:25.123456"),
            Some(1_766_748_445_123)
        );
        assert_eq!(
            parse_ms("2026-11-22T02:13:42.5+01:00"),
            Some(1_795_313_622_500 - 3_600_000)
        );
        assert_eq!(parse_ms("2000-02-29 00:00:00.123Z"), Some(951_782_400_123));
        for bad in [
            "yesterday",
            "",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad:?}");
        }
    }
}
