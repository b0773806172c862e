//! Applying one verified event: record its id and change the app's data in one transaction.

use latchkey_protocol::clerk::{Event, EventData, EventType};
use latchkey_store::{Db, StoreError};

use super::inbox::{self, Outcome};
use super::shadow::{self, Change, Shadow};
use crate::session::{Revocation, Revocations};
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

/// What applying an event writes to besides the app's users table.
#[derive(Debug, Clone, Copy)]
pub struct Targets<'a> {
    /// Where ended sessions and bans are recorded.
    pub revocations: &'a Revocations,
    /// The second copy of the accounts in shadow mode (see [`super::shadow`]).
    pub shadow: Option<&'a dyn Shadow>,
}

/// Applies `event` (message `svix_id`) exactly once; an ended session or a ban is recorded in
/// the revocations, and a user change handed to the shadow copy, in the same transaction.
///
/// # Errors
/// Database failures that persisted through the retries.
pub async fn apply(
    db: &Db,
    targets: Targets<'_>,
    svix_id: &str,
    event: &Event,
) -> Result<Delivery, StoreError> {
    let mut attempt = 1;
    loop {
        match apply_once(db, targets, svix_id, event).await {
            Err(StoreError::Conflict(_)) if attempt < ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
}

/// What `event` asks the app to refuse: the session of `session.ended`, `.revoked` or
/// `.removed` (docs/PROTOCOLS.md §3.7), or the user of a `user.*` event carrying
/// `banned: true`, up to the version's `updated_at` (or the event's time, if later).
#[must_use]
pub fn revocation(event: &Event) -> Option<Revocation> {
    match &event.data {
        EventData::Session(session)
            if matches!(
                event.kind,
                EventType::SessionEnded | EventType::SessionRevoked | EventType::SessionRemoved
            ) && !session.id.is_empty() =>
        {
            Some(Revocation::Session(session.id.clone()))
        }
        EventData::User(user) if user.banned => Some(Revocation::User {
            id: user.id.clone(),
            not_after_ms: user.updated_at.max(event.timestamp_ms.unwrap_or(0)),
        }),
        _ => None,
    }
}

async fn apply_once(
    db: &Db,
    targets: Targets<'_>,
    svix_id: &str,
    event: &Event,
) -> Result<Delivery, StoreError> {
    let now = latchkey_protocol::time::now_ms();
    let revoke = revocation(event);
    let expected = match event.data {
        EventData::User(_) | EventData::UserDeleted(_) => Outcome::Applied,
        EventData::Session(_) if revoke.is_some() => Outcome::Applied,
        EventData::Session(_) | EventData::Other(_) => Outcome::Ignored,
    };
    let mut tx = db.begin().await?;
    if !inbox::claim(&mut tx, svix_id, event.kind.as_str(), expected, now).await? {
        return Ok(Delivery::Duplicate);
    }
    let (outcome, change) = match &event.data {
        EventData::User(user) => match users::upsert_from_source(&mut tx, user, now).await? {
            Upserted::Inserted | Upserted::Updated => {
                (Outcome::Applied, Some(Change::Upsert(user)))
            }
            Upserted::Stale | Upserted::Tombstoned => (Outcome::Stale, None),
        },
        EventData::UserDeleted(stub) => {
            let id = stub.id.as_deref().unwrap_or_default();
            let deleted_at = event.timestamp_ms.unwrap_or(now);
            match users::tombstone(&mut tx, id, deleted_at, now).await? {
                Tombstoned::Deleted | Tombstoned::Recorded => {
                    (Outcome::Applied, Some(Change::Remove(id)))
                }
                Tombstoned::AlreadyDeleted => (Outcome::Stale, None),
            }
        }
        EventData::Session(_) | EventData::Other(_) => (expected, None),
    };
    if outcome != expected {
        inbox::set_outcome(&mut tx, svix_id, outcome).await?;
    }
    if let (Some(shadow), Some(change)) = (targets.shadow, change)
        && let Some(reason) = shadow::hand_on(&mut tx, shadow, change).await?
    {
        tracing::warn!(event.id = %svix_id, "the identity's shadow copy refused an account; see `latchkey sync check --issuer clerk --against identity`");
        inbox::set_detail(&mut tx, svix_id, &format!("identity shadow: {reason}")).await?;
    }
    // Last, so the lock that orders revocations (see `Revocations::record`) is held only for
    // the commit.
    if let Some(revoke) = revoke {
        targets.revocations.record(&mut tx, revoke).await?;
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
