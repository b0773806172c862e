//! `/v1/sessions…` and `/v1/jwks`: a user's sessions as Clerk's Session JSON, revoking one by
//! id (with its `session.revoked` event, as when the user revokes it from the account page),
//! and the published signing keys.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::Value;

use super::Bapi;
use super::error::BapiError;
use super::params::Query;
use crate::sessions;
use crate::sessions::lifecycle;

type Answer = Result<Json<Value>, BapiError>;

/// Clerk's session statuses, for the `status` filter.
const STATUSES: &[&str] = &[
    "abandoned",
    "active",
    "ended",
    "expired",
    "removed",
    "replaced",
    "revoked",
    "pending",
];
/// Most sessions of one user looked at when filtering by status.
const SCAN_LIMIT: i64 = 10_000;

/// `GET /v1/sessions?user_id=…[&status=…][&limit=…][&offset=…]`: a bare array, newest first.
pub(crate) async fn list(State(bapi): State<Bapi>, RawQuery(raw): RawQuery) -> Answer {
    let query = Query::parse(raw.as_deref());
    query.only(&["user_id", "status", "limit", "offset", "paginated"])?;
    let user_id = query
        .first("user_id")
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| BapiError::missing("user_id"))?
        .to_owned();
    let status = query
        .first("status")
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(status) = status
        && !STATUSES.contains(&status)
    {
        return Err(BapiError::invalid_value(
            "status",
            format!(
                "{status} does not match one of the allowed values for parameter status: {}",
                STATUSES.join(", ")
            ),
        ));
    }
    let limit = usize::try_from(query.integer("limit", 1, 500, 10)?).unwrap_or(usize::MAX);
    let offset = usize::try_from(query.integer("offset", 0, u32::MAX, 0)?).unwrap_or(usize::MAX);
    let fetch = if status.is_some() {
        SCAN_LIMIT
    } else {
        i64::try_from(offset.saturating_add(limit)).unwrap_or(SCAN_LIMIT)
    };
    let mut tx = bapi.identity.db().begin_read().await?;
    let records = sessions::list_all(&mut tx, &user_id, fetch).await?;
    tx.commit().await?;
    let now = bapi.identity.now_ms();
    let page: Vec<_> = records
        .iter()
        .map(|s| sessions::to_clerk(s, None, now))
        .filter(|s| status.is_none_or(|wanted| s.status == wanted))
        .skip(offset)
        .take(limit)
        .collect();
    Ok(Json(
        serde_json::to_value(page).map_err(|e| BapiError::internal(&e))?,
    ))
}

/// `POST /v1/sessions/{session_id}/revoke`: the session, now `revoked`.
pub(crate) async fn revoke(State(bapi): State<Bapi>, Path(id): Path<String>) -> Answer {
    let mut tx = bapi.identity.db().begin_read().await?;
    let session = sessions::get(&mut tx, &id).await?;
    tx.commit().await?;
    let session = session.ok_or_else(|| BapiError::not_found("session", &id))?;
    if session.status != "active" {
        return Err(BapiError::bad_request(format!(
            "The session is {} and cannot be revoked; only active sessions can.",
            session.status
        )));
    }
    let revoked = match lifecycle::revoke_session(&bapi.identity, &session.user_id, &id).await {
        Ok(Some(revoked)) => revoked,
        // Ended by someone else between the read and the revocation.
        Ok(None) => {
            return Err(BapiError::bad_request(
                "The session is no longer active and cannot be revoked.",
            ));
        }
        Err(other) => return Err(other.into()),
    };
    tracing::info!(session.id = %id, "session revoked by an operator");
    let session = sessions::to_clerk(&revoked, None, bapi.identity.now_ms());
    Ok(Json(
        serde_json::to_value(session).map_err(|e| BapiError::internal(&e))?,
    ))
}

/// `GET /v1/jwks`: the same keys as `/.well-known/jwks.json`.
pub(crate) async fn jwks(State(bapi): State<Bapi>) -> Answer {
    Ok(Json(
        serde_json::to_value(bapi.identity.keys().jwks()).map_err(|e| BapiError::internal(&e))?,
    ))
}
