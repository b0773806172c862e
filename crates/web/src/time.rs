//! Showing times: Unix milliseconds as people and machines read them, without a date library.

/// Formats Unix milliseconds as `2026-11-26 07:12 UTC` and as an ISO 8601 timestamp.
pub fn format_utc(ms: i64) -> (String, String) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
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
    }
}
