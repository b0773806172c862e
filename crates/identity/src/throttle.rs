//! Fixed-window attempt counters in the database: account lockout and per-IP throttles.
//!
//! A counter is bumped with one atomic `INSERT … ON CONFLICT DO UPDATE … RETURNING`, so it holds
//! across instances and restarts, and parallel attempts cannot slip past a limit: each attempt
//! takes its number before anything is checked, and numbers past the limit are refused.

use latchkey_store::{Row as _, StoreError, Tx};

/// A limit: at most `max` attempts per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: i64,
    pub window_ms: i64,
}

impl Limit {
    /// Clerk's default account lockout: 10 failed attempts, locked for an hour.
    pub const ACCOUNT_LOCKOUT: Self = Self {
        max: 10,
        window_ms: 60 * 60 * 1000,
    };
}

/// The state of a counter after an attempt took its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// This attempt's number in the current window, from 1.
    pub number: i64,
    /// When the window ends (ms).
    pub window_ends_at: i64,
    pub max: i64,
}

impl Attempt {
    /// Whether this attempt is over the limit and must be refused.
    #[must_use]
    pub fn refused(&self) -> bool {
        self.number > self.max
    }

    /// Seconds until the window ends, for `Retry-After` (at least 1).
    #[must_use]
    pub fn retry_after_secs(&self, now: i64) -> u64 {
        let millis = (self.window_ends_at - now).max(1000);
        u64::try_from((millis + 999) / 1000).unwrap_or(1)
    }

    /// Attempts left before refusals start.
    #[must_use]
    pub fn remaining(&self) -> i64 {
        (self.max - self.number).max(0)
    }
}

/// Takes the next attempt number in `bucket`'s window (starting a new window if the last one
/// ended).
///
/// # Errors
/// Database failures.
pub async fn take(
    tx: &mut Tx,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> Result<Attempt, StoreError> {
    let q = tx
        .query(
            "INSERT INTO identity_throttles (bucket, window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket) DO UPDATE SET \
                 count = CASE WHEN identity_throttles.window_start <= $3 THEN 1 ELSE identity_throttles.count + 1 END, \
                 window_start = CASE WHEN identity_throttles.window_start <= $3 THEN $2 ELSE identity_throttles.window_start END \
             RETURNING count, window_start",
        )
        .bind(bucket)
        .bind(now)
        .bind(now - limit.window_ms);
    let row = tx.fetch_one(q).await?;
    let number: i64 = row.try_get("count")?;
    let window_start: i64 = row.try_get("window_start")?;
    Ok(Attempt {
        number,
        window_ends_at: window_start + limit.window_ms,
        max: limit.max,
    })
}

/// Deletes counters whose window started before `before` (ms), which no limit counts any
/// more: without this, every address that ever tried would keep a row.
///
/// # Errors
/// Database failures.
pub async fn sweep(tx: &mut Tx, before: i64) -> Result<u64, StoreError> {
    let q = tx
        .query("DELETE FROM identity_throttles WHERE window_start < $1")
        .bind(before);
    tx.execute(q).await
}

/// The counter's state without taking a number (`None` if no attempt in the current window).
///
/// # Errors
/// Database failures.
pub async fn peek(
    tx: &mut Tx,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> Result<Option<Attempt>, StoreError> {
    let q = tx
        .query("SELECT count, window_start FROM identity_throttles WHERE bucket = $1 AND window_start > $2")
        .bind(bucket)
        .bind(now - limit.window_ms);
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(None);
    };
    let window_start: i64 = row.try_get("window_start")?;
    Ok(Some(Attempt {
        number: row.try_get("count")?,
        window_ends_at: window_start + limit.window_ms,
        max: limit.max,
    }))
}

/// Forgets `bucket` (after a successful sign-in, or an operator's unlock).
///
/// # Errors
/// Database failures.
pub async fn clear(tx: &mut Tx, bucket: &str) -> Result<(), StoreError> {
    let q = tx
        .query("DELETE FROM identity_throttles WHERE bucket = $1")
        .bind(bucket);
    tx.execute(q).await?;
    Ok(())
}
