//! What `/metrics` reads from the identity when scraped: the outbox, mail, active sessions
//! and the password hasher. One read transaction of aggregate queries; nothing per request.

use latchkey_store::{Row as _, StoreError};

use crate::state::Identity;

/// The identity's gauges at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Webhook deliveries by status (`pending`, `succeeded`, `failed`).
    pub deliveries: Vec<(String, i64)>,
    /// When the oldest delivery still pending was written (Unix ms).
    pub oldest_pending_at: Option<i64>,
    /// Mail by status (`pending`, `sent`, `failed`).
    pub mail: Vec<(String, i64)>,
    pub active_sessions: i64,
    pub hasher_queue: usize,
    pub hasher_refusals: u64,
}

/// Reads the gauges.
///
/// # Errors
/// Database failures.
pub async fn snapshot(identity: &Identity) -> Result<Snapshot, StoreError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin_read().await?;
    let by_status = async |tx: &mut latchkey_store::Tx, sql: &'static str| {
        let rows = tx.fetch_all(tx.query(sql)).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
            .collect::<Result<Vec<(String, i64)>, StoreError>>()
    };
    let deliveries = by_status(
        &mut tx,
        "SELECT status, count(*) AS n FROM identity_webhook_deliveries GROUP BY status ORDER BY status",
    )
    .await?;
    let mail = by_status(
        &mut tx,
        "SELECT status, count(*) AS n FROM identity_mail_outbox GROUP BY status ORDER BY status",
    )
    .await?;
    let q = tx.query(
        "SELECT min(created_at) AS oldest FROM identity_webhook_deliveries WHERE status = 'pending'",
    );
    let oldest_pending_at: Option<i64> = tx.fetch_one(q).await?.try_get("oldest")?;
    let q = tx
        .query(
            "SELECT count(*) AS n FROM identity_sessions WHERE status = 'active' AND expire_at > $1",
        )
        .bind(now);
    let active_sessions: i64 = tx.fetch_one(q).await?.try_get("n")?;
    tx.commit().await?;
    Ok(Snapshot {
        deliveries,
        oldest_pending_at,
        mail,
        active_sessions,
        hasher_queue: identity.hasher().queue_depth(),
        hasher_refusals: identity.hasher().refusals(),
    })
}
