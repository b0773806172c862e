//! When a failed item is due again: a schedule of delays with jitter, and a server's
//! `Retry-After` honoured within bounds.

use std::time::Duration;

/// The delay before the attempt after failed attempt number `attempt` (1-based), or `None`
/// when the schedule is used up (`schedule.len() + 1` attempts in all). ±20 % jitter, so items
/// that failed together do not come back together; a `Retry-After` counts within
/// [delay, 2 × delay].
#[must_use]
pub fn next_delay(
    schedule: &[Duration],
    attempt: i64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let index = usize::try_from(attempt - 1).ok()?;
    let base = *schedule.get(index)?;
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).unwrap_or(());
    let unit = f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX);
    let jittered = base.mul_f64(0.8 + 0.4 * unit);
    Some(match retry_after {
        Some(asked) => asked.clamp(base, base * 2),
        None => jittered,
    })
}

/// `now` (Unix milliseconds) plus `delay`.
#[must_use]
pub fn retry_at(now: i64, delay: Duration) -> i64 {
    now.saturating_add(super::millis(delay))
}
