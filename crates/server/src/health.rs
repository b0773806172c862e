//! `/healthz` (the process is up) and `/readyz` (it can reach its database).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use latchkey_store::Db;
use serde_json::json;

/// How long `/readyz` waits for the database before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(db): State<Db>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, db.ping()).await {
        Ok(Ok(())) => Json(json!({ "status": "ready", "database": "ok" })).into_response(),
        Ok(Err(error)) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "readiness check failed");
            unready()
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            unready()
        }
    }
}

fn unready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "database": "unreachable" })),
    )
        .into_response()
}
