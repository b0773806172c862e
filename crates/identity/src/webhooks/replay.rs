//! Sending events again, without tunnels: every event since a time (or only the failed ones)
//! to one endpoint, or one event; and the delivery history operators look at.

use latchkey_store::{RowExt as _, StoreError};
use serde::Serialize;

use super::{DeliveryStatus, EndpointError};
use crate::state::Identity;
use crate::webhooks::endpoints;

/// A delivery as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// Queues every event since `since_ms` (all of them if `None`) that the endpoint
/// subscribes to; with `failed_only`, only those whose delivery had failed for good.
/// Returns how many were queued.
///
/// # Errors
/// [`EndpointError::NotFound`] or database failures.
pub async fn replay(
    identity: &Identity,
    endpoint_id: &str,
    since_ms: Option<i64>,
    failed_only: bool,
) -> Result<u64, EndpointError> {
    let Some(endpoint) = endpoints::get_endpoint(identity, endpoint_id).await? else {
        return Err(EndpointError::NotFound);
    };
    let now = identity.now_ms();
    let since = since_ms.unwrap_or(0);
    let mut tx = identity.db().begin().await?;
    let queued = if failed_only {
        let q = tx
            .query(
                "UPDATE identity_webhook_deliveries SET status = $4, attempts = 0, next_attempt_at = $2, \
                     lease_until = NULL, updated_at = $2 \
                 WHERE endpoint_id = $1 AND status = $5 \
                   AND event_id IN (SELECT id FROM identity_events WHERE created_at >= $3)",
            )
            .bind(endpoint_id)
            .bind(now)
            .bind(since)
            .bind(DeliveryStatus::Pending.as_str())
            .bind(DeliveryStatus::Failed.as_str());
        tx.execute(q).await?
    } else {
        let q = tx
            .query("SELECT id, event_type FROM identity_events WHERE created_at >= $1 ORDER BY id")
            .bind(since);
        let events = tx.fetch_all(q).await?;
        let mut queued = 0;
        for event in events {
            let event_type: String = event.col("event_type")?;
            if !endpoint.event_types.is_empty() && !endpoint.event_types.contains(&event_type) {
                continue;
            }
            let event_id: String = event.col("id")?;
            queued += queue(&mut tx, &event_id, endpoint_id, now).await?;
        }
        queued
    };
    identity.outbox().after_commit(&mut tx);
    tx.commit().await?;
    tracing::info!(endpoint.id = %endpoint_id, queued, failed_only, "webhook replay queued");
    Ok(queued)
}

/// Queues one event for one endpoint again.
///
/// # Errors
/// [`EndpointError::NotFound`] if either is unknown, or database failures.
pub async fn resend(
    identity: &Identity,
    event_id: &str,
    endpoint_id: &str,
) -> Result<(), EndpointError> {
    if endpoints::get_endpoint(identity, endpoint_id)
        .await?
        .is_none()
    {
        return Err(EndpointError::NotFound);
    }
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let q = tx
        .query("SELECT id FROM identity_events WHERE id = $1")
        .bind(event_id);
    if tx.fetch_optional(q).await?.is_none() {
        return Err(EndpointError::NotFound);
    }
    queue(&mut tx, event_id, endpoint_id, now).await?;
    identity.outbox().after_commit(&mut tx);
    tx.commit().await?;
    Ok(())
}

/// The most recent deliveries to an endpoint, newest first.
///
/// # Errors
/// Database failures.
pub async fn deliveries(
    identity: &Identity,
    endpoint_id: &str,
    limit: i64,
) -> Result<Vec<DeliveryView>, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let q = tx
        .query(
            "SELECT d.event_id, e.event_type, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, \
                 (SELECT a.response_status FROM identity_webhook_attempts a \
                    WHERE a.event_id = d.event_id AND a.endpoint_id = d.endpoint_id \
                    ORDER BY a.attempted_at DESC, a.id DESC LIMIT 1) AS last_status, \
                 (SELECT a.error FROM identity_webhook_attempts a \
                    WHERE a.event_id = d.event_id AND a.endpoint_id = d.endpoint_id \
                    ORDER BY a.attempted_at DESC, a.id DESC LIMIT 1) AS last_error \
             FROM identity_webhook_deliveries d JOIN identity_events e ON e.id = d.event_id \
             WHERE d.endpoint_id = $1 ORDER BY d.event_id DESC LIMIT $2",
        )
        .bind(endpoint_id)
        .bind(limit.clamp(1, 1000));
    let rows = tx.fetch_all(q).await?;
    tx.commit().await?;
    rows.iter()
        .map(|row| {
            Ok(DeliveryView {
                event_id: row.col("event_id")?,
                event_type: row.col("event_type")?,
                status: row.col("status")?,
                attempts: row.col("attempts")?,
                next_attempt_at: row.col("next_attempt_at")?,
                last_attempt_at: row.col("last_attempt_at")?,
                last_status: row.col("last_status")?,
                last_error: row.col("last_error")?,
            })
        })
        .collect()
}

/// Makes a delivery pending now, whatever its state was; returns 1.
async fn queue(
    tx: &mut latchkey_store::Tx,
    event_id: &str,
    endpoint_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let q = tx
        .query(
            "INSERT INTO identity_webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, \
                 lease_until, last_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $4, 0, $3, NULL, NULL, $3, $3) \
             ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = excluded.status, attempts = 0, \
                 next_attempt_at = excluded.next_attempt_at, lease_until = NULL, updated_at = excluded.updated_at",
        )
        .bind(event_id)
        .bind(endpoint_id)
        .bind(now)
        .bind(DeliveryStatus::Pending.as_str());
    tx.execute(q).await?;
    Ok(1)
}
