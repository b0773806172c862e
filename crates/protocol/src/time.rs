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

/// The time a server goes by: the system clock plus an offset that only moves forward.
///
/// Production code reads it through the part that holds it (`Identity::now_ms`, the app's
/// session verifier), never `now_ms()` directly, so a test can move a whole running server
/// "an hour later" with [`Clock::advance`] instead of writing old timestamps into its tables.
/// Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    /// The system clock, not moved.
    #[must_use]
    pub fn system() -> Self {
        Self::default()
    }

    /// Milliseconds since the Unix epoch, as this clock reads now.
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        now_ms().saturating_add(self.offset_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Seconds since the Unix epoch, as this clock reads now.
    #[must_use]
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Moves this clock (and every clone of it) `by` into the future.
    pub fn advance(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms
            .fetch_add(by, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_and_its_clones_read_later() {
        let clock = Clock::system();
        let clone = clock.clone();
        let before = clock.now_ms();
        clock.advance(std::time::Duration::from_secs(3600));
        let after = clone.now_ms();
        assert!(after - before >= 3_600_000, "{before} {after}");
        assert!(after - before < 3_700_000, "{before} {after}");
        assert!(Clock::system().now_ms() < after);
    }
}
