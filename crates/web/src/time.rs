//! Showing times: Unix milliseconds as people and machines read them, always in UTC.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Formats Unix milliseconds as `2026-11-26 07:12 UTC` and as an ISO 8601 timestamp. Times
/// outside jiff's range (years -9999 to 9999) show as its nearest end.
#[must_use]
pub fn format_utc(ms: i64) -> (String, String) {
    let instant = Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    let t = TimeZone::UTC.to_datetime(instant);
    let (year, month, day) = (t.year(), t.month(), t.day());
    let (hour, minute, second) = (t.hour(), t.minute(), t.second());
    (
        format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC"),
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_dates() {
        assert_eq!(super::format_utc(0).1, "1970-01-01T00:00:00Z");
        assert_eq!(
            super::format_utc(1_716_883_200_412).0,
            "2024-05-28 08:00 UTC"
        );
        assert_eq!(super::format_utc(951_782_400_000).1, "2000-02-29T00:00:00Z");
        assert_eq!(super::format_utc(-1).1, "1969-12-31T23:59:59Z");
        assert!(super::format_utc(i64::MAX).1.starts_with("9999-12-"));
        assert!(super::format_utc(i64::MIN).1.starts_with("-9999-01-"));
    }
}
