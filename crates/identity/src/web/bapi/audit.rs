//! `GET /v1/audit_logs`: the audit log, newest first, paged by entry number.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};

use super::Bapi;
use super::error::BapiError;
use super::params::Query;
use crate::audit::{self, AuditRow};

/// `GET /v1/audit_logs?limit=N&before=<seq>&user_id=<id>`.
pub(crate) async fn list(
    State(bapi): State<Bapi>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, BapiError> {
    let query = Query::parse(raw.as_deref());
    query.only(&["limit", "before", "user_id"])?;
    let limit = query.integer("limit", 1, 500, 50)?;
    let before =
        match query.first("before").map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse::<i64>().ok().filter(|seq| *seq > 0).ok_or_else(
                || BapiError::invalid_format("before", "before must be the `next` of a page"),
            )?),
        };
    let user_id = query.first("user_id").filter(|id| !id.is_empty());
    // One more than asked, to tell whether another page follows.
    let mut rows = audit::page(&bapi.identity, before, user_id, limit + 1).await?;
    let has_more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = has_more
        .then(|| rows.last().map(|row| row.seq.to_string()))
        .flatten();
    Ok(Json(json!({
        "object": "list",
        "data": rows.iter().map(entry_json).collect::<Vec<_>>(),
        "next": next,
        "has_more": has_more,
    })))
}

fn entry_json(row: &AuditRow) -> Value {
    json!({
        "object": "audit_log_entry",
        "id": row.id,
        "seq": row.seq,
        "occurred_at": row.occurred_at,
        "actor": { "type": row.actor_type, "id": row.actor_id },
        "action": row.action,
        "subject_id": row.subject_id,
        "detail": serde_json::from_str::<Value>(&row.detail).unwrap_or(Value::Null),
        "ip": row.ip,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    })
}
