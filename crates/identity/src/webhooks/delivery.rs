//! The delivery worker: takes due deliveries, signs and sends them, records every attempt and
//! schedules retries, all through the database so a restart or a crash loses nothing.
//!
//! Claiming is a short transaction that leases rows (Postgres adds `FOR UPDATE SKIP LOCKED`, so
//! instances never wait on each other; SQLite's single writer serialises claims). A lease
//! outlives the request timeout, so a delivery is never sent by two instances at once; if an
//! instance dies mid-delivery, another takes the row when the lease runs out. Only a 2xx
//! counts; retries follow Svix's schedule with ±20 % jitter, `Retry-After` is honoured within
//! [delay, 2 × delay], and an endpoint failing for five days straight is disabled. The claiming,
//! pacing, wake-ups and graceful stop are `latchkey_store::jobs`'s, shared with every other
//! background worker.

use std::time::{Duration, Instant};

use latchkey_protocol::webhook::sign_all;
use latchkey_store::jobs::{Job, Lease, WorkerSettings, next_delay, retry_at};
use latchkey_store::{Row as _, StoreError};

use super::{DeliveryStatus, client};
use crate::state::Identity;
use crate::webhooks::endpoints;

/// Attempt bodies are kept up to this size.
const RESPONSE_KEPT_BYTES: usize = 4096;
const ATTEMPT_PREFIX: &str = "att";

/// How deliveries are attempted.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Delay before each retry: after the first failure, the second, …; one attempt more than
    /// there are delays.
    pub schedule: Vec<Duration>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Allow endpoints on private, loopback and link-local addresses.
    pub allow_private_networks: bool,
    /// An endpoint failing this long without a success is disabled.
    pub disable_after: Duration,
    /// Deliveries in flight per instance.
    pub concurrency: usize,
    /// How often to look for due deliveries when not woken.
    pub poll_interval: Duration,
}

impl Default for DeliverySettings {
    /// Svix's schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), 15 s timeout, five days.
    fn default() -> Self {
        Self {
            schedule: [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
                .map(Duration::from_secs)
                .to_vec(),
            timeout: Duration::from_secs(15),
            allow_private_networks: false,
            disable_after: Duration::from_secs(5 * 24 * 60 * 60),
            concurrency: 32,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// A delivery this instance holds the lease of.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    event_id: String,
    endpoint_id: String,
    attempts: i64,
    lease_until: i64,
}

impl std::fmt::Display for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event {} to endpoint {}",
            self.event_id, self.endpoint_id
        )
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub(crate) struct Outcome {
    status: Option<u16>,
    body: Option<String>,
    error: Option<String>,
    retry_after: Option<Duration>,
    duration: Duration,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Webhook delivery as a [`Job`]: claims due deliveries, sends each, records the attempt.
pub(crate) struct Delivery {
    identity: Identity,
    settings: DeliverySettings,
    public: reqwest::Client,
    internal: reqwest::Client,
    /// `http://127.0.0.1:<port>`: where this instance reaches the app's own receiver.
    internal_base: Option<String>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Delivery for `identity`. `internal_base` is this instance's own loopback address, for
    /// the app's receiver in the all-in-one run.
    ///
    /// # Errors
    /// If the HTTP clients cannot be built (no TLS backend).
    pub(crate) fn new(
        identity: Identity,
        settings: DeliverySettings,
        internal_base: Option<String>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            public: client::build(settings.timeout, settings.allow_private_networks)?,
            internal: client::build(settings.timeout, true)?,
            identity,
            settings,
            internal_base,
        })
    }

    /// A lease outlives the request timeout; a stop waits for requests in flight.
    pub(crate) fn worker_settings(&self) -> WorkerSettings {
        WorkerSettings {
            concurrency: self.settings.concurrency,
            batch: 64,
            lease: self.settings.timeout + Duration::from_secs(10),
            poll_interval: self.settings.poll_interval,
            drain: self.settings.timeout + Duration::from_secs(5),
        }
    }
}

impl Job for Delivery {
    type Item = Claimed;
    type Outcome = Outcome;
    type Error = StoreError;
    const NAME: &'static str = "webhook delivery";

    fn now_ms(&self) -> i64 {
        self.identity.now_ms()
    }

    async fn claim(&self, lease: Lease, max: usize) -> Result<Vec<Claimed>, StoreError> {
        self.claim_due(lease, max).await
    }

    /// Sends one attempt. `Ok(None)` when there is nothing to send any more (the endpoint or
    /// event is gone).
    async fn run(&self, delivery: &Claimed) -> Result<Option<Outcome>, StoreError> {
        self.attempt(delivery).await
    }

    async fn record(&self, delivery: &Claimed, outcome: Outcome) -> Result<(), StoreError> {
        self.record_attempt(delivery, &outcome).await
    }
}

impl Delivery {
    async fn claim_due(&self, lease: Lease, max: usize) -> Result<Vec<Claimed>, StoreError> {
        let db = self.identity.db();
        let (now, lease_until) = (lease.now, lease.until);
        let mut tx = db.begin().await?;
        let q = tx
            .query_owned(format!(
                "SELECT event_id, endpoint_id, attempts FROM identity_webhook_deliveries \
                 WHERE status = 'pending' AND next_attempt_at <= $1 \
                   AND (lease_until IS NULL OR lease_until < $1) \
                   AND endpoint_id IN (SELECT id FROM identity_webhook_endpoints WHERE disabled_at IS NULL) \
                 ORDER BY next_attempt_at, event_id LIMIT $2{}",
                db.backend().claim_rows_suffix()
            ))
            .bind(now)
            .bind(i64::try_from(max).unwrap_or(64));
        let rows = tx.fetch_all(q).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let delivery = Claimed {
                event_id: row.try_get("event_id")?,
                endpoint_id: row.try_get("endpoint_id")?,
                attempts: row.try_get("attempts")?,
                lease_until,
            };
            let q = tx
                .query("UPDATE identity_webhook_deliveries SET lease_until = $3 WHERE event_id = $1 AND endpoint_id = $2")
                .bind(&delivery.event_id)
                .bind(&delivery.endpoint_id)
                .bind(lease_until);
            tx.execute(q).await?;
            claimed.push(delivery);
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn attempt(&self, delivery: &Claimed) -> Result<Option<Outcome>, StoreError> {
        let now = self.identity.now_ms();
        let mut tx = self.identity.db().begin_read().await?;
        let q = tx
            .query("SELECT body FROM identity_events WHERE id = $1")
            .bind(&delivery.event_id);
        let Some(event) = tx.fetch_optional(q).await? else {
            return Ok(None);
        };
        let body: String = event.try_get("body")?;
        let q = tx
            .query("SELECT url, internal FROM identity_webhook_endpoints WHERE id = $1")
            .bind(&delivery.endpoint_id);
        let Some(endpoint) = tx.fetch_optional(q).await? else {
            return Ok(None);
        };
        let url: Option<String> = endpoint.try_get("url")?;
        let internal = endpoint.try_get::<i64, _>("internal")? != 0;
        let secrets =
            match endpoints::signing_secrets(&self.identity, &mut tx, &delivery.endpoint_id, now)
                .await
            {
                Ok(secrets) => secrets,
                Err(super::EndpointError::Store(error)) => return Err(error),
                Err(error) => return Ok(Some(failed_before_sending(error.to_string()))),
            };
        tx.commit().await?;

        let (client, target) = if internal {
            match &self.internal_base {
                Some(base) => (&self.internal, format!("{base}/api/webhooks/clerk")),
                None => {
                    return Ok(Some(failed_before_sending(
                        "no local receiver on this instance".to_owned(),
                    )));
                }
            }
        } else {
            let Some(url) = url else { return Ok(None) };
            (&self.public, url)
        };
        if !internal
            && !self.settings.allow_private_networks
            && let Ok(parsed) = url::Url::parse(&target)
            && let Err(reason) = client::refuse_private_literal(&parsed)
        {
            return Ok(Some(failed_before_sending(format!("refused: {reason}"))));
        }

        let timestamp = latchkey_protocol::time::now_secs();
        let signature = sign_all(&secrets, &delivery.event_id, timestamp, body.as_bytes());
        let started = Instant::now();
        let sent = client
            .post(&target)
            .header("content-type", "application/json")
            .header("svix-id", &delivery.event_id)
            .header("svix-timestamp", timestamp.to_string())
            .header("svix-signature", signature)
            .body(body)
            .send()
            .await;
        let outcome = match sent {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let mut kept = Vec::new();
                while kept.len() < RESPONSE_KEPT_BYTES {
                    match response.chunk().await {
                        Ok(Some(chunk)) => kept.extend_from_slice(
                            &chunk[..chunk.len().min(RESPONSE_KEPT_BYTES - kept.len())],
                        ),
                        Ok(None) | Err(_) => break,
                    }
                }
                Outcome {
                    status: Some(status),
                    // NUL is valid UTF-8 that Postgres text refuses (a UTF-16 or binary body
                    // would make the attempt unrecordable, and the delivery repeat forever).
                    body: Some(String::from_utf8_lossy(&kept).replace('\0', "\u{fffd}")),
                    error: None,
                    retry_after,
                    duration: started.elapsed(),
                }
            }
            Err(error) => Outcome {
                status: None,
                body: None,
                error: Some(describe(&error)),
                retry_after: None,
                duration: started.elapsed(),
            },
        };
        Ok(Some(outcome))
    }

    async fn record_attempt(
        &self,
        delivery: &Claimed,
        outcome: &Outcome,
    ) -> Result<(), StoreError> {
        let now = self.identity.now_ms();
        let attempt = delivery.attempts + 1;
        let mut tx = self.identity.db().begin().await?;
        let q = tx
            .query(
                "INSERT INTO identity_webhook_attempts (id, event_id, endpoint_id, attempted_at, response_status, \
                     duration_ms, response_body, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(latchkey_protocol::id::new_id(ATTEMPT_PREFIX))
            .bind(&delivery.event_id)
            .bind(&delivery.endpoint_id)
            .bind(now)
            .bind(outcome.status.map(i64::from))
            .bind(i64::try_from(outcome.duration.as_millis()).unwrap_or(i64::MAX))
            .bind(outcome.body.as_deref())
            .bind(outcome.error.as_deref());
        tx.execute(q).await?;

        let (status, next_attempt_at) = if outcome.succeeded() {
            (DeliveryStatus::Succeeded, now)
        } else {
            match next_delay(&self.settings.schedule, attempt, outcome.retry_after) {
                Some(delay) => (DeliveryStatus::Pending, retry_at(now, delay)),
                None => (DeliveryStatus::Failed, now),
            }
        };
        let q = tx
            .query(
                "UPDATE identity_webhook_deliveries SET status = $3, attempts = $4, next_attempt_at = $5, \
                     lease_until = NULL, last_attempt_at = $6, updated_at = $6 \
                 WHERE event_id = $1 AND endpoint_id = $2 AND lease_until = $7",
            )
            .bind(&delivery.event_id)
            .bind(&delivery.endpoint_id)
            .bind(status.as_str())
            .bind(attempt)
            .bind(next_attempt_at)
            .bind(now)
            .bind(delivery.lease_until);
        tx.execute(q).await?;

        if outcome.succeeded() {
            let q = tx
                .query("UPDATE identity_webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL")
                .bind(&delivery.endpoint_id);
            tx.execute(q).await?;
        } else {
            let q = tx
                .query("UPDATE identity_webhook_endpoints SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL")
                .bind(&delivery.endpoint_id)
                .bind(now);
            tx.execute(q).await?;
            let disable_before =
                now - i64::try_from(self.settings.disable_after.as_millis()).unwrap_or(i64::MAX);
            let q = tx
                .query(
                    "UPDATE identity_webhook_endpoints SET disabled_at = $2, updated_at = $2 \
                     WHERE id = $1 AND disabled_at IS NULL AND failing_since <= $3",
                )
                .bind(&delivery.endpoint_id)
                .bind(now)
                .bind(disable_before);
            if tx.execute(q).await? > 0 {
                tracing::warn!(endpoint.id = %delivery.endpoint_id, "webhook endpoint disabled after failing continuously");
            }
        }
        tx.commit().await?;
        tracing::info!(
            event.id = %delivery.event_id,
            endpoint.id = %delivery.endpoint_id,
            attempt,
            http.status = outcome.status,
            error = outcome.error.as_deref(),
            outcome = status.as_str(),
            "webhook attempt"
        );
        Ok(())
    }
}

fn failed_before_sending(error: String) -> Outcome {
    Outcome {
        status: None,
        body: None,
        error: Some(error),
        retry_after: None,
        duration: Duration::ZERO,
    }
}

/// A delivery error without its URL (which may hold a token in its query string).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_redirect() {
        "redirect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_has_jitter_and_an_end() {
        let schedule = DeliverySettings::default().schedule;
        for _ in 0..100 {
            let delay = next_delay(&schedule, 1, None).unwrap();
            assert!(
                delay >= Duration::from_secs(4) && delay <= Duration::from_secs(6),
                "{delay:?}"
            );
        }
        assert!(next_delay(&schedule, 7, None).unwrap() >= Duration::from_secs(28_800));
        assert_eq!(
            next_delay(&schedule, 8, None),
            None,
            "eight attempts in all"
        );
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let schedule = vec![Duration::from_secs(10)];
        assert_eq!(
            next_delay(&schedule, 1, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            next_delay(&schedule, 1, Some(Duration::from_secs(15))),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            next_delay(&schedule, 1, Some(Duration::from_secs(100))),
            Some(Duration::from_secs(20))
        );
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
