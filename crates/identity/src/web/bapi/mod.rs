//! The management API: a compatible subset of Clerk's Backend API (users, sessions, JWKS)
//! plus latchkey's event feed and webhook endpoints, authenticated with secret keys
//! (`Authorization: Bearer sk_live_…`), rate-limited per key, answering errors in Clerk's
//! `{"errors": [...]}` envelope, and described by the OpenAPI document at
//! `GET /v1/openapi.json`.
//!
//! It owns the HTTP face only: every change goes through the same use cases in `flows` (and so
//! emits the same events, in the same transaction) as the pages and the CLI. It never logs
//! secret keys, passwords or email addresses.

mod audit;
mod auth;
mod error;
mod params;
mod sessions;
mod users;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::MethodRouter;

pub use auth::{RATE_LIMIT, RateLimit};

use crate::state::Identity;

/// The OpenAPI 3.1 document describing every route below.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct Bapi {
    identity: Identity,
    keys: Arc<crate::secret_keys::KeyCache>,
    limiter: Arc<auth::RateLimiter>,
}

struct Route {
    method: &'static str,
    path: &'static str,
    handler: MethodRouter<Bapi>,
}

/// One route; the method is written once, for both the router and [`routes`].
macro_rules! route {
    ($method:ident $path:literal => $handler:expr) => {
        Route {
            method: stringify!($method),
            path: $path,
            handler: route!(@method $method)($handler),
        }
    };
    (@method GET) => { axum::routing::get };
    (@method POST) => { axum::routing::post };
    (@method PUT) => { axum::routing::put };
    (@method PATCH) => { axum::routing::patch };
    (@method DELETE) => { axum::routing::delete };
}

/// Every route that needs a secret key.
fn authenticated() -> Vec<Route> {
    vec![
        route!(GET "/v1/users" => users::list),
        route!(POST "/v1/users" => users::create),
        route!(GET "/v1/users/count" => users::count),
        route!(GET "/v1/users/{user_id}" => users::get_one),
        route!(PATCH "/v1/users/{user_id}" => users::update),
        route!(DELETE "/v1/users/{user_id}" => users::delete),
        route!(POST "/v1/users/{user_id}/ban" => users::ban),
        route!(POST "/v1/users/{user_id}/unban" => users::unban),
        route!(DELETE "/v1/users/{user_id}/mfa" => users::disable_mfa),
        route!(DELETE "/v1/users/{user_id}/external_accounts/{external_account_id}" => users::delete_external_account),
        route!(PUT "/v1/users/{user_id}/metadata" => users::replace_metadata),
        route!(PATCH "/v1/users/{user_id}/metadata" => users::merge_metadata),
        route!(GET "/v1/sessions" => sessions::list),
        route!(POST "/v1/sessions/{session_id}/revoke" => sessions::revoke),
        route!(GET "/v1/jwks" => sessions::jwks),
        route!(GET "/v1/events" => webhooks::feed),
        route!(GET "/v1/audit_logs" => audit::list),
        route!(GET "/v1/webhook_endpoints" => webhooks::list),
        route!(POST "/v1/webhook_endpoints" => webhooks::create),
        route!(DELETE "/v1/webhook_endpoints/{endpoint_id}" => webhooks::delete),
        route!(POST "/v1/webhook_endpoints/{endpoint_id}/rotate_secret" => webhooks::rotate_secret),
    ]
}

/// Routes anyone may call.
fn public() -> Vec<Route> {
    vec![route!(GET "/v1/openapi.json" => openapi)]
}

/// Every route this API serves, as (method, path template), for checking the OpenAPI
/// document against.
#[must_use]
pub fn routes() -> Vec<(&'static str, &'static str)> {
    authenticated()
        .into_iter()
        .chain(public())
        .map(|r| (r.method, r.path))
        .collect()
}

fn add(router: Router<Bapi>, routes: Vec<Route>) -> Router<Bapi> {
    routes
        .into_iter()
        .fold(router, |router, r| router.route(r.path, r.handler))
}

/// The management API's routes (all under `/v1`).
pub fn router(identity: Identity) -> Router {
    let state = Bapi {
        identity,
        keys: Arc::new(crate::secret_keys::KeyCache::default()),
        limiter: Arc::new(auth::RateLimiter::new(RATE_LIMIT)),
    };
    let protected = add(Router::new(), authenticated()).route_layer(
        axum::middleware::from_fn_with_state(state.clone(), auth::require_secret_key),
    );
    add(protected, public())
        .route_layer(axum::middleware::from_fn(refuse_control_characters))
        .with_state(state)
}

/// Ids and query values with control characters are nobody's; NUL would also fail in
/// Postgres text columns (a 500) where SQLite stores it.
async fn refuse_control_characters(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match params::check_request_target(request.uri()) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

async fn openapi() -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}
