//! Wall-clock time in the units the protocol uses: Clerk's `*_at` fields are Unix milliseconds,
//! JWT claims and `svix-timestamp` are Unix seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
#[must_use]
pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Seconds since the Unix epoch, now.
#[must_use]
pub fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}
