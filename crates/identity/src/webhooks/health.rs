//! How an endpoint is doing, for the operators' console: attempts over a window (success
//! rate, p50 and p99 latency, a series of buckets for the chart), its backlog and the age of
//! its oldest pending delivery, and its latest attempts. Aggregates over the attempts table's
//! `(endpoint_id, …, attempted_at)` index; the percentiles are read by rank.

use latchkey_store::{Row as _, StoreError, Tx};

use crate::state::Identity;

/// One window's figures.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub attempts: i64,
    pub succeeded: i64,
    pub p50_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    /// Per bucket, oldest first: (succeeded, failed).
    pub series: Vec<(i64, i64)>,
}

impl Window {
    /// Succeeded attempts in percent, `None` without attempts.
    #[must_use]
    pub fn success_rate(&self) -> Option<f64> {
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        (self.attempts > 0).then(|| self.succeeded as f64 * 100.0 / self.attempts as f64)
    }
}

/// An attempt as the console lists it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub event_id: String,
    pub attempted_at: i64,
    pub status: Option<i64>,
    pub duration_ms: i64,
    /// The start of the response body, or the error.
    pub excerpt: String,
}

/// Everything the endpoint's page shows.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub day: Window,
    pub week: Window,
    pub backlog: i64,
    pub oldest_pending_at: Option<i64>,
    pub recent: Vec<Attempt>,
}

const HOUR_MS: i64 = 60 * 60 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The figures for the window of `buckets` × `bucket_ms` up to `now`.
async fn window(
    tx: &mut Tx,
    endpoint_id: &str,
    now: i64,
    bucket_ms: i64,
    buckets: i64,
) -> Result<Window, StoreError> {
    let since = now - bucket_ms * buckets;
    let len = usize::try_from(buckets).unwrap_or(0);
    let mut window = Window {
        series: vec![(0, 0); len],
        ..Window::default()
    };
    let q = tx
        .query_owned(format!(
            "SELECT (attempted_at - $2) / {bucket_ms} AS bucket, count(*) AS n, \
                 sum(CASE WHEN response_status >= 200 AND response_status < 300 THEN 1 ELSE 0 END) AS ok \
             FROM identity_webhook_attempts WHERE endpoint_id = $1 AND attempted_at >= $2 \
             GROUP BY 1"
        ))
        .bind(endpoint_id)
        .bind(since);
    for row in tx.fetch_all(q).await? {
        let bucket: i64 = row.try_get("bucket")?;
        let n: i64 = row.try_get("n")?;
        let ok: i64 = row.try_get::<Option<i64>, _>("ok")?.unwrap_or(0);
        window.attempts += n;
        window.succeeded += ok;
        if let Some(slot) = usize::try_from(bucket)
            .ok()
            .and_then(|b| window.series.get_mut(b))
        {
            *slot = (ok, n - ok);
        }
    }
    let rank = |fraction: f64| {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_precision_loss,
            reason = "a rank within a count far below 2^52"
        )]
        let rank = ((window.attempts as f64 * fraction).ceil() as i64 - 1).max(0);
        rank
    };
    for (fraction, slot) in [(0.5, &mut window.p50_ms), (0.99, &mut window.p99_ms)] {
        if window.attempts == 0 {
            break;
        }
        let q = tx
            .query(
                "SELECT duration_ms FROM identity_webhook_attempts \
                 WHERE endpoint_id = $1 AND attempted_at >= $2 \
                 ORDER BY duration_ms LIMIT 1 OFFSET $3",
            )
            .bind(endpoint_id)
            .bind(since)
            .bind(rank(fraction));
        *slot = tx
            .fetch_optional(q)
            .await?
            .map(|row| row.try_get("duration_ms"))
            .transpose()?;
    }
    Ok(window)
}

/// The endpoint's health now: the last 24 hours by hour, the last 7 days by day.
///
/// # Errors
/// Database failures.
pub async fn health(identity: &Identity, endpoint_id: &str) -> Result<Health, StoreError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin_read().await?;
    let day = window(&mut tx, endpoint_id, now, HOUR_MS, 24).await?;
    let week = window(&mut tx, endpoint_id, now, DAY_MS, 7).await?;
    let q = tx
        .query(
            "SELECT count(*) AS n, min(created_at) AS oldest FROM identity_webhook_deliveries \
             WHERE endpoint_id = $1 AND status = 'pending'",
        )
        .bind(endpoint_id);
    let row = tx.fetch_one(q).await?;
    let backlog: i64 = row.try_get("n")?;
    let oldest_pending_at: Option<i64> = row.try_get("oldest")?;
    let q = tx
        .query(
            "SELECT event_id, attempted_at, response_status, duration_ms, response_body, error \
             FROM identity_webhook_attempts WHERE endpoint_id = $1 \
             ORDER BY attempted_at DESC, id DESC LIMIT 20",
        )
        .bind(endpoint_id);
    let recent = tx
        .fetch_all(q)
        .await?
        .iter()
        .map(|row| {
            let body: Option<String> = row.try_get("response_body")?;
            let error: Option<String> = row.try_get("error")?;
            Ok(Attempt {
                event_id: row.try_get("event_id")?,
                attempted_at: row.try_get("attempted_at")?,
                status: row.try_get("response_status")?,
                duration_ms: row.try_get("duration_ms")?,
                excerpt: error
                    .or(body)
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    tx.commit().await?;
    Ok(Health {
        day,
        week,
        backlog,
        oldest_pending_at,
        recent,
    })
}
