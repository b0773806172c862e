//! The pull feed: events in order, after a cursor, for consumers that prefer polling to
//! webhooks (and for catching up without tunnels).

use latchkey_store::{Row as _, StoreError};
use serde_json::Value;

use crate::state::Identity;

/// Events younger than this are not served yet: a transaction that started earlier may still
/// commit an event with an earlier id, and a poller must not skip past it.
pub const SETTLE_MS: i64 = 2_000;

/// A page of the feed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedPage {
    /// Events as delivered to webhooks (the envelope), each with its `id` (the svix-id) added.
    pub data: Vec<Value>,
    /// The cursor to pass as `after` next time (the last event's id, or the one given).
    pub next: Option<String>,
    pub has_more: bool,
}

/// Up to `limit` events after `after` (an event id), oldest first.
///
/// # Errors
/// Database failures.
pub async fn events_after(
    identity: &Identity,
    after: Option<&str>,
    limit: u32,
) -> Result<FeedPage, StoreError> {
    let limit = i64::from(limit.clamp(1, 500));
    let settled = identity.now_ms() - SETTLE_MS;
    let mut tx = identity.db().begin_read().await?;
    let q = tx
        .query(
            "SELECT id, body FROM identity_events WHERE id > $1 AND created_at <= $2 ORDER BY id LIMIT $3",
        )
        .bind(after.unwrap_or(""))
        .bind(settled)
        .bind(limit + 1);
    let rows = tx.fetch_all(q).await?;
    tx.commit().await?;
    let has_more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    let mut data = Vec::new();
    for row in rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        let id: String = row.try_get("id")?;
        let body: String = row.try_get("body")?;
        let mut event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if let Some(object) = event.as_object_mut() {
            object.insert("id".to_owned(), Value::String(id));
        }
        data.push(event);
    }
    let next = data
        .last()
        .and_then(|e| e["id"].as_str().map(str::to_owned))
        .or_else(|| after.map(str::to_owned));
    Ok(FeedPage {
        data,
        next,
        has_more,
    })
}
