//! `/v1/events` (the pull feed) and `/v1/webhook_endpoints…` (where events are pushed): the
//! management API's face of the identity's webhooks. Endpoint secrets are shown once, when an
//! endpoint is made or its secret rotated. The app's own receiver (the `internal` endpoint) is
//! managed by latchkey itself and cannot be removed or rotated here.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};

use super::Bapi;
use super::error::BapiError;
use super::params::{Body, Query};
use crate::webhooks::Endpoint;
use crate::webhooks::endpoints;
use crate::webhooks::feed;

type Answer = Result<Json<Value>, BapiError>;

/// `GET /v1/events?after=<cursor>&limit=N`: settled events after the cursor, oldest first.
pub(crate) async fn feed(State(bapi): State<Bapi>, RawQuery(raw): RawQuery) -> Answer {
    let query = Query::parse(raw.as_deref());
    query.only(&["after", "limit"])?;
    let limit = query.integer("limit", 1, 500, 100)?;
    let after = query
        .first("after")
        .map(str::trim)
        .filter(|a| !a.is_empty());
    let page = feed::events_after(&bapi.identity, after, limit).await?;
    Ok(Json(
        serde_json::to_value(page).map_err(|e| BapiError::internal(&e))?,
    ))
}

fn endpoint_json(endpoint: &Endpoint) -> Value {
    json!({
        "object": "webhook_endpoint",
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.event_types,
        "internal": endpoint.internal,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "failing_since": endpoint.failing_since,
        "disabled_at": endpoint.disabled_at,
    })
}

/// `GET /v1/webhook_endpoints`: a bare array, oldest first.
pub(crate) async fn list(State(bapi): State<Bapi>) -> Answer {
    let endpoints = endpoints::list_endpoints(&bapi.identity).await?;
    Ok(Json(Value::Array(
        endpoints.iter().map(endpoint_json).collect(),
    )))
}

/// `POST /v1/webhook_endpoints` with `{"url", "events"}`: the endpoint and its `secret`.
pub(crate) async fn create(
    State(bapi): State<Bapi>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = Body::read(bytes)?;
    let url = body
        .string("url")?
        .flatten()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| BapiError::missing("url"))?;
    let events = body.strings("events")?;
    let (endpoint, secret) = endpoints::add_endpoint(&bapi.identity, &url, &events).await?;
    let mut answer = endpoint_json(&endpoint);
    answer["secret"] = Value::String(secret.expose());
    Ok(Json(answer))
}

/// The endpoint `id`, refusing the internal one.
async fn external(bapi: &Bapi, id: &str) -> Result<Endpoint, BapiError> {
    let endpoint = endpoints::get_endpoint(&bapi.identity, id)
        .await?
        .ok_or_else(|| BapiError::not_found("webhook endpoint", id))?;
    if endpoint.internal {
        return Err(BapiError::bad_request(
            "This is the app's own receiver, managed by latchkey; it cannot be changed through the API.",
        ));
    }
    Ok(endpoint)
}

/// `DELETE /v1/webhook_endpoints/{endpoint_id}`.
pub(crate) async fn delete(State(bapi): State<Bapi>, Path(id): Path<String>) -> Answer {
    external(&bapi, &id).await?;
    endpoints::remove_endpoint(&bapi.identity, &id)
        .await
        .map_err(|e| match e {
            crate::webhooks::EndpointError::NotFound => {
                BapiError::not_found("webhook endpoint", &id)
            }
            other => other.into(),
        })?;
    Ok(Json(
        json!({"object": "webhook_endpoint", "id": id, "deleted": true}),
    ))
}

/// `POST /v1/webhook_endpoints/{endpoint_id}/rotate_secret`: the new secret; the old one keeps
/// signing beside it for a day.
pub(crate) async fn rotate_secret(State(bapi): State<Bapi>, Path(id): Path<String>) -> Answer {
    external(&bapi, &id).await?;
    let secret = endpoints::rotate_endpoint_secret(&bapi.identity, &id)
        .await
        .map_err(|e| match e {
            crate::webhooks::EndpointError::NotFound => {
                BapiError::not_found("webhook endpoint", &id)
            }
            other => other.into(),
        })?;
    Ok(Json(json!({
        "object": "webhook_endpoint_secret",
        "endpoint_id": id,
        "secret": secret.expose(),
    })))
}
