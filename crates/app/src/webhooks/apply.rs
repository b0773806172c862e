//! Applying one verified event: record its id and change the app's data in one transaction.

use latchkey_protocol::clerk::{Event, EventData};
use latchkey_store::{Db, StoreError};

use super::inbox::{self, Outcome};
use crate::users::{self, Tombstoned, Upserted};

/// How many times a transaction that lost a race is retried before the sender is told to retry.
const ATTEMPTS: u32 = 3;

/// What the receiver answers for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// First time seen; processed with this outcome.
    Processed(Outcome),
    /// Seen before; nothing done.
    Duplicate,
}

/// Applies `event` (message `svix_id`) exactly once.
///
/// # Errors
/// Database failures that persisted through the retries.
pub async fn apply(db: &Db, svix_id: &str, event: &Event) -> Result<Delivery, StoreError> {
    let mut attempt = 1;
    loop {
        match apply_once(db, svix_id, event).await {
            Err(StoreError::Conflict(_)) if attempt < ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
}

async fn apply_once(db: &Db, svix_id: &str, event: &Event) -> Result<Delivery, StoreError> {
    let now = latchkey_protocol::time::now_ms();
    let expected = match event.data {
        EventData::User(_) | EventData::UserDeleted(_) => Outcome::Applied,
        EventData::Session(_) | EventData::Other(_) => Outcome::Ignored,
    };
    let mut tx = db.begin().await?;
    if !inbox::claim(&mut tx, svix_id, event.kind.as_str(), expected, now).await? {
        return Ok(Delivery::Duplicate);
    }
    let outcome = match &event.data {
        EventData::User(user) => match users::upsert_from_source(&mut tx, user, now).await? {
            Upserted::Inserted | Upserted::Updated => Outcome::Applied,
            Upserted::Stale | Upserted::Tombstoned => Outcome::Stale,
        },
        EventData::UserDeleted(stub) => {
            let id = stub.id.as_deref().unwrap_or_default();
            let deleted_at = event.timestamp_ms.unwrap_or(now);
            match users::tombstone(&mut tx, id, deleted_at, now).await? {
                Tombstoned::Deleted | Tombstoned::Recorded => Outcome::Applied,
                Tombstoned::AlreadyDeleted => Outcome::Stale,
            }
        }
        EventData::Session(_) | EventData::Other(_) => Outcome::Ignored,
    };
    if outcome != expected {
        inbox::set_outcome(&mut tx, svix_id, outcome).await?;
    }
    tx.commit().await?;
    Ok(Delivery::Processed(outcome))
}

/// Records that `svix_id` was signed but not a valid event.
///
/// # Errors
/// Database failures.
pub async fn record_invalid(
    db: &Db,
    svix_id: &str,
    event_type: Option<&str>,
    reason: &str,
) -> Result<Delivery, StoreError> {
    let mut tx = db.begin().await?;
    let recorded = inbox::record_failure(
        &mut tx,
        svix_id,
        event_type,
        reason,
        latchkey_protocol::time::now_ms(),
    )
    .await?;
    tx.commit().await?;
    Ok(if recorded {
        Delivery::Processed(Outcome::Failed)
    } else {
        Delivery::Duplicate
    })
}
