//! Per-day figures for the operators' overview: counts bumped where things happen (sign-in
//! failures, lockouts, mail sent and failed) and who was active each day. Days are UTC day
//! numbers (Unix ms / 86,400,000). Each bump is one upsert in the transaction of what it counts.

use latchkey_store::{Row as _, StoreError, Tx};

/// Milliseconds per day.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What is counted per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    SignInFailures,
    Lockouts,
    MailSent,
    MailFailed,
}

impl Metric {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignInFailures => "sign_in_failures",
            Self::Lockouts => "lockouts",
            Self::MailSent => "mail_sent",
            Self::MailFailed => "mail_failed",
        }
    }
}

/// Adds one to `metric` for the day of `now`.
///
/// # Errors
/// Database failures.
pub async fn bump(tx: &mut Tx, metric: Metric, now: i64) -> Result<(), StoreError> {
    let q = tx
        .query(
            "INSERT INTO identity_daily_counts (day, metric, n) VALUES ($1, $2, 1) \
             ON CONFLICT (day, metric) DO UPDATE SET n = identity_daily_counts.n + 1",
        )
        .bind(now.div_euclid(DAY_MS))
        .bind(metric.as_str());
    tx.execute(q).await?;
    Ok(())
}

/// Notes that `user_id` was active on the day of `now` (once per day is kept).
///
/// # Errors
/// Database failures.
pub async fn active(tx: &mut Tx, user_id: &str, now: i64) -> Result<(), StoreError> {
    let q = tx
        .query(
            "INSERT INTO identity_daily_active (day, user_id) VALUES ($1, $2) \
             ON CONFLICT (day, user_id) DO NOTHING",
        )
        .bind(now.div_euclid(DAY_MS))
        .bind(user_id);
    tx.execute(q).await?;
    Ok(())
}

/// The overview's series over the `days` days up to and including today: one value per day,
/// oldest first.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// The first day (day number).
    pub first_day: i64,
    pub sign_ups: Vec<i64>,
    pub active_users: Vec<i64>,
    pub sign_in_failures: Vec<i64>,
    pub lockouts: Vec<i64>,
    pub mail_sent: Vec<i64>,
    pub mail_failed: Vec<i64>,
}

/// Reads the overview: aggregate queries over indexed ranges (sign-ups by the users'
/// `created_at` index, the rest from the small per-day tables), so it costs the same at a
/// million accounts.
///
/// # Errors
/// Database failures.
pub async fn overview(tx: &mut Tx, days: i64, now: i64) -> Result<Overview, StoreError> {
    let today = now.div_euclid(DAY_MS);
    let first_day = today - days + 1;
    let len = usize::try_from(days).unwrap_or(0);
    let mut overview = Overview {
        first_day,
        sign_ups: vec![0; len],
        active_users: vec![0; len],
        sign_in_failures: vec![0; len],
        lockouts: vec![0; len],
        mail_sent: vec![0; len],
        mail_failed: vec![0; len],
    };
    let slot = |day: i64| usize::try_from(day - first_day).ok().filter(|i| *i < len);
    let q = tx
        .query_owned(format!(
            "SELECT created_at / {DAY_MS} AS day, count(*) AS n FROM identity_users \
             WHERE created_at >= $1 GROUP BY created_at / {DAY_MS}"
        ))
        .bind(first_day * DAY_MS);
    for row in tx.fetch_all(q).await? {
        if let Some(i) = slot(row.try_get("day")?) {
            overview.sign_ups[i] = row.try_get("n")?;
        }
    }
    let q = tx
        .query("SELECT day, count(*) AS n FROM identity_daily_active WHERE day >= $1 GROUP BY day")
        .bind(first_day);
    for row in tx.fetch_all(q).await? {
        if let Some(i) = slot(row.try_get("day")?) {
            overview.active_users[i] = row.try_get("n")?;
        }
    }
    let q = tx
        .query("SELECT day, metric, n FROM identity_daily_counts WHERE day >= $1")
        .bind(first_day);
    for row in tx.fetch_all(q).await? {
        let Some(i) = slot(row.try_get("day")?) else {
            continue;
        };
        let metric: String = row.try_get("metric")?;
        let series = match metric.as_str() {
            "sign_in_failures" => &mut overview.sign_in_failures,
            "lockouts" => &mut overview.lockouts,
            "mail_sent" => &mut overview.mail_sent,
            "mail_failed" => &mut overview.mail_failed,
            _ => continue,
        };
        series[i] = row.try_get("n")?;
    }
    Ok(overview)
}

/// Deletes per-day rows older than `before_day`.
///
/// # Errors
/// Database failures.
pub async fn sweep(tx: &mut Tx, before_day: i64) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM identity_daily_counts WHERE day < $1",
        "DELETE FROM identity_daily_active WHERE day < $1",
    ] {
        let q = tx.query(sql).bind(before_day);
        tx.execute(q).await?;
    }
    Ok(())
}
