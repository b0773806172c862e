//! The events the identity part emits, exactly as Clerk shapes them, written into the outbox in
//! the transaction that makes the change they describe: an event exists if and only if its
//! change committed. Each event fans out to a delivery row per subscribed endpoint, which the
//! delivery worker picks up.

use latchkey_protocol::clerk::{EventAttributes, EventType};
use latchkey_store::{Row as _, StoreError, Tx};
use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::lockout;
use crate::sessions::{self, SessionRecord};
use crate::state::Identity;
use crate::users::{self, UserRecord};
use crate::webhooks::DeliveryStatus;

/// Prefix of event ids, which are the `svix-id` of every delivery of the event.
pub const EVENT_PREFIX: &str = "msg";

/// How a session event is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    Created,
    Ended,
    Revoked,
    Removed,
}

impl SessionEvent {
    fn kind(self) -> EventType {
        match self {
            Self::Created => EventType::SessionCreated,
            Self::Ended => EventType::SessionEnded,
            Self::Revoked => EventType::SessionRevoked,
            Self::Removed => EventType::SessionRemoved,
        }
    }
}

fn attributes(ctx: Option<&RequestContext>) -> EventAttributes {
    let mut attributes = EventAttributes::default();
    if let Some(ctx) = ctx {
        attributes.http_request.client_ip = ctx.ip_text().unwrap_or_default();
        attributes.http_request.user_agent = ctx.user_agent.clone().unwrap_or_default();
    }
    attributes
}

/// Writes one event with `data` and its deliveries.
///
/// # Errors
/// Database failures (the caller's transaction then must not commit).
pub(crate) async fn emit(
    identity: &Identity,
    tx: &mut Tx,
    kind: EventType,
    data: Value,
    ctx: Option<&RequestContext>,
) -> Result<String, StoreError> {
    let now = identity.now_ms();
    let id = latchkey_protocol::id::new_id(EVENT_PREFIX);
    // The user it concerns, for the audit log: a session event's user, or the user itself.
    let subject = data
        .get("user_id")
        .or_else(|| data.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = json!({
        "data": data,
        "event_attributes": attributes(ctx),
        "instance_id": identity.instance_id(),
        "object": "event",
        "timestamp": now,
        "type": kind,
    })
    .to_string();
    let q = tx
        .query("INSERT INTO identity_events (id, event_type, body, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(kind.as_str())
        .bind(body)
        .bind(now);
    tx.execute(q).await?;
    crate::audit::record_event(identity, tx, kind.as_str(), subject.as_deref(), &id).await?;

    let q = tx
        .query("SELECT id, event_types FROM identity_webhook_endpoints WHERE disabled_at IS NULL");
    let endpoints = tx.fetch_all(q).await?;
    for endpoint in endpoints {
        let types: String = endpoint.try_get("event_types")?;
        if !subscribed(&types, kind.as_str()) {
            continue;
        }
        let endpoint_id: String = endpoint.try_get("id")?;
        let q = tx
            .query(
                "INSERT INTO identity_webhook_deliveries (event_id, endpoint_id, status, attempts, \
                     next_attempt_at, lease_until, last_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $4, 0, $3, NULL, NULL, $3, $3)",
            )
            .bind(&id)
            .bind(endpoint_id)
            .bind(now)
            .bind(DeliveryStatus::Pending.as_str());
        tx.execute(q).await?;
    }
    // Woken once the deliveries are there to claim, not before.
    identity.outbox().after_commit(tx);
    Ok(id)
}

/// `user.created` or `user.updated` with the user as it now is in `tx`.
///
/// # Errors
/// Database failures.
pub(crate) async fn emit_user(
    identity: &Identity,
    tx: &mut Tx,
    kind: EventType,
    user_id: &str,
    ctx: Option<&RequestContext>,
) -> Result<(), StoreError> {
    let Some(user) = users::get(tx, user_id).await? else {
        return Ok(());
    };
    let lockout = lockout::lockout_of(identity, tx, &user).await?;
    let data = serde_json::to_value(users::to_clerk(&user, lockout)).unwrap_or(Value::Null);
    emit(identity, tx, kind, data, ctx).await.map(|_| ())
}

/// `user.deleted`: only the id (and external id) survive, as in Clerk's stub.
///
/// # Errors
/// Database failures.
/// Moves the user's `updated_at` forward and records `user.updated`, in `tx`: a change to
/// something the User JSON shows that is not a column of the user row.
pub(crate) async fn user_updated(
    identity: &Identity,
    tx: &mut Tx,
    user_id: &str,
    ctx: Option<&RequestContext>,
    now: i64,
) -> Result<(), StoreError> {
    users::touch_updated(tx, user_id, now).await?;
    emit_user(identity, tx, EventType::UserUpdated, user_id, ctx).await
}

pub(crate) async fn emit_user_deleted(
    identity: &Identity,
    tx: &mut Tx,
    user: &UserRecord,
    ctx: Option<&RequestContext>,
) -> Result<(), StoreError> {
    let mut data = json!({"deleted": true, "id": user.id, "object": "user"});
    if let Some(external_id) = &user.external_id {
        data["external_id"] = Value::String(external_id.clone());
    }
    emit(identity, tx, EventType::UserDeleted, data, ctx)
        .await
        .map(|_| ())
}

/// One session event per session, each carrying the full user.
///
/// # Errors
/// Database failures.
pub(crate) async fn emit_sessions(
    identity: &Identity,
    tx: &mut Tx,
    kind: SessionEvent,
    sessions: &[SessionRecord],
    user: Option<&UserRecord>,
    ctx: Option<&RequestContext>,
) -> Result<(), StoreError> {
    if sessions.is_empty() {
        return Ok(());
    }
    let now = identity.now_ms();
    let loaded;
    let user = match user {
        Some(user) => Some(user),
        None => {
            loaded = users::get(tx, &sessions[0].user_id).await?;
            loaded.as_ref()
        }
    };
    let clerk_user = match user {
        Some(user) => {
            let lockout = lockout::lockout_of(identity, tx, user).await?;
            Some(users::to_clerk(user, lockout))
        }
        None => None,
    };
    for session in sessions {
        let data = serde_json::to_value(sessions::to_clerk(session, clerk_user.clone(), now))
            .unwrap_or(Value::Null);
        emit(identity, tx, kind.kind(), data, ctx).await?;
    }
    Ok(())
}

/// Whether an endpoint with `types` (comma-separated; empty for all) wants `kind`.
fn subscribed(types: &str, kind: &str) -> bool {
    let types = types.trim();
    types.is_empty() || types.split(',').any(|t| t.trim() == kind)
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoints_without_filters_get_everything() {
        assert!(super::subscribed("", "user.created"));
        assert!(super::subscribed(
            "user.created, user.deleted",
            "user.deleted"
        ));
        assert!(!super::subscribed("user.created", "user.updated"));
    }
}
