//! The identity's web face: the hosted pages, the operators' console, the management API, the
//! Clerk-facing JSON endpoints and the session cookies. Handlers read the request, call a use case in `flows`
//! (or `sessions`, `webhooks`, `users`) and render its outcome; no rule about accounts lives
//! here.

pub mod admin;
pub mod api;
pub mod bapi;
pub mod fapi;
pub mod pages;
pub mod session_cookies;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::Identity;

/// The identity's routes: pages and the JWKS.
pub fn router(identity: Identity) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/me", get(api::me))
        .route(
            "/v1/client/session-token",
            axum::routing::post(api::session_token),
        )
        .with_state(identity.clone())
        .merge(bapi::router(identity.clone()))
        .merge(fapi::router(identity.clone()))
        .merge(admin::router(identity.clone()))
        .merge(pages::router(identity))
}

async fn jwks(State(identity): State<Identity>) -> impl IntoResponse {
    (
        [(http::header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(identity.keys().jwks()),
    )
}
