//! The record of webhook messages received, by `svix-id`: the idempotency key that makes
//! at-least-once delivery apply exactly once.

use std::collections::HashSet;
use std::sync::LazyLock;

use latchkey_store::{Row as _, StoreError, Tx};

/// What became of a message; stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The event changed the app's data.
    Applied,
    /// The event was older than what the app holds; nothing changed.
    Stale,
    /// The event type is not one the app acts on.
    Ignored,
    /// The body was signed but is not a valid event; a resend may succeed.
    Failed,
}

impl Outcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Stale => "stale",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }
}

/// Claims `rows` messages in one statement: 4 parameters per row (`svix_id`, `event_type`,
/// expected outcome, time received). A message already processed is left alone and not
/// returned; one recorded as failed is claimed again, so a fixed sender's resend goes through.
fn claim_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO clerk_webhook_events (svix_id, event_type, outcome, detail, received_at, attempts) VALUES ",
    );
    for row in 0..rows {
        let p = row * 4;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, NULL, ${}, 1)",
            p + 1,
            p + 2,
            p + 3,
            p + 4
        ));
    }
    sql.push_str(CLAIM_ON_CONFLICT);
    sql.push_str(" RETURNING svix_id");
    sql
}

/// The rule of every claim: a message already processed is left alone (and not returned); one
/// recorded as failed is claimed again. Shared with the receiver's one-statement batch
/// (`super::group`).
pub(crate) const CLAIM_ON_CONFLICT: &str = " ON CONFLICT (svix_id) DO UPDATE SET \
     event_type = excluded.event_type, outcome = excluded.outcome, detail = NULL, \
     attempts = clerk_webhook_events.attempts + 1 \
     WHERE clerk_webhook_events.outcome = 'failed'";

/// [`claim_sql`] for one message, assembled once.
static CLAIM_ONE: LazyLock<String> = LazyLock::new(|| claim_sql(1));

/// Records `svix_id` with the outcome its processing is expected to have, unless it was
/// already processed. Returns `false` for a duplicate (nothing to do). A message recorded as
/// failed is claimed again, so a fixed sender's resend goes through.
///
/// # Errors
/// Database failures.
pub async fn claim(
    tx: &mut Tx,
    svix_id: &str,
    event_type: &str,
    expected: Outcome,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query_owned(CLAIM_ONE.clone())
        .bind(svix_id.to_owned())
        .bind(event_type.to_owned())
        .bind(expected.as_str())
        .bind(now_ms);
    Ok(tx.fetch_optional(q).await?.is_some())
}

/// [`claim`] for several messages `(svix_id, event_type)` in one statement, each expected to
/// be applied: which of them were claimed (the others are duplicates). The ids must be
/// distinct; callers order them so concurrent batches take locks in the same order.
///
/// # Errors
/// Database failures.
pub async fn claim_many(
    tx: &mut Tx,
    messages: &[(&str, &str)],
    now_ms: i64,
) -> Result<HashSet<String>, StoreError> {
    if messages.is_empty() {
        return Ok(HashSet::new());
    }
    let mut q = tx.query_owned(claim_sql(messages.len()));
    for (svix_id, event_type) in messages {
        q = q
            .bind((*svix_id).to_owned())
            .bind((*event_type).to_owned())
            .bind(Outcome::Applied.as_str())
            .bind(now_ms);
    }
    let mut claimed = HashSet::with_capacity(messages.len());
    for row in tx.fetch_all(q).await? {
        claimed.insert(row.try_get::<String, _>("svix_id")?);
    }
    Ok(claimed)
}

/// Marks messages claimed in this transaction as stale (their event was older than what the
/// app holds).
///
/// # Errors
/// Database failures.
pub async fn set_stale(tx: &mut Tx, svix_ids: &[&str]) -> Result<(), StoreError> {
    if svix_ids.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (1..=svix_ids.len()).map(|i| format!("${i}")).collect();
    let mut q = tx.query_owned(format!(
        "UPDATE clerk_webhook_events SET outcome = 'stale' WHERE svix_id IN ({})",
        placeholders.join(", ")
    ));
    for svix_id in svix_ids {
        q = q.bind((*svix_id).to_owned());
    }
    tx.execute(q).await?;
    Ok(())
}

/// Corrects the outcome of a message claimed in this transaction.
///
/// # Errors
/// Database failures.
pub async fn set_outcome(tx: &mut Tx, svix_id: &str, outcome: Outcome) -> Result<(), StoreError> {
    let q = tx
        .query("UPDATE clerk_webhook_events SET outcome = $2 WHERE svix_id = $1")
        .bind(svix_id)
        .bind(outcome.as_str());
    tx.execute(q).await?;
    Ok(())
}

/// Notes what became of a message claimed in this transaction beyond its outcome.
///
/// # Errors
/// Database failures.
pub async fn set_detail(tx: &mut Tx, svix_id: &str, detail: &str) -> Result<(), StoreError> {
    let q = tx
        .query("UPDATE clerk_webhook_events SET detail = $2 WHERE svix_id = $1")
        .bind(svix_id)
        .bind(detail);
    tx.execute(q).await?;
    Ok(())
}

/// Records that `svix_id` carried a body that is not a valid event, with the reason, unless the
/// message was already processed successfully. Returns `false` in that case.
///
/// # Errors
/// Database failures.
pub async fn record_failure(
    tx: &mut Tx,
    svix_id: &str,
    event_type: Option<&str>,
    reason: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query(
            "INSERT INTO clerk_webhook_events (svix_id, event_type, outcome, detail, received_at, attempts) \
             VALUES ($1, $2, 'failed', $3, $4, 1) \
             ON CONFLICT (svix_id) DO UPDATE SET event_type = excluded.event_type, \
                 detail = excluded.detail, attempts = clerk_webhook_events.attempts + 1 \
             WHERE clerk_webhook_events.outcome = 'failed' \
             RETURNING svix_id",
        )
        .bind(svix_id)
        .bind(event_type)
        .bind(reason)
        .bind(now_ms);
    Ok(tx.fetch_optional(q).await?.is_some())
}
