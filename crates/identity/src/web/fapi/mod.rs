//! Clerk's Frontend API, the subset Clerk's own components call (`@clerk/clerk-js` 5 and 6
//! with `@clerk/ui`), under `/fapi/v1/…`: an app's `proxyUrl` of `<latchkey>/fapi` sends
//! every call there. Also the pinned scripts at `/npm/@clerk/…` (`scripts`).
//!
//! The conventions are Clerk's, as its SDK sends and reads them: form-encoded bodies, only GET
//! and POST on the wire with `_method` naming PATCH or DELETE, the `{response, client}`
//! envelope with the whole client after every change, Clerk's error envelope (`errors`), CORS
//! with credentials for the app's exact origin only. Every rule about accounts stays in
//! `flows`: these handlers call the same use cases as the hosted pages.
//!
//! - `errors`: the error envelope and the mapping of the flows' errors to Clerk's codes.
//! - `attempt`: the browser's in-progress sign-in or sign-up, in a signed `HttpOnly` cookie.
//! - `json`: Clerk's JSON for clients, sessions, users, sign-ins and sign-ups.
//! - `environment`, `client`, `sign_ins`, `sign_ups`, `sessions`, `me`, `handshake`: the
//!   routes.

mod attempt;
mod client;
mod environment;
mod errors;
mod handshake;
mod input;
mod json;
mod me;
pub mod scripts;
mod sessions;
mod sign_ins;
mod sign_ups;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, Method, StatusCode, header};
use tower::ServiceExt as _;

use crate::state::Identity;
pub(crate) use errors::FapiError;
pub(crate) use input::Input;

/// The path prefix of the Frontend API; an app's `proxyUrl` is `<latchkey>` + this.
pub const PREFIX: &str = "/fapi";

/// Whether `path` is the Frontend API's or the scripts' (no hosted-page cookie handling).
#[must_use]
pub fn is_fapi_path(path: &str) -> bool {
    path.starts_with("/fapi/") || path.starts_with("/npm/")
}

/// The Frontend API's routes under [`PREFIX`], and the pinned scripts.
pub fn router(identity: Identity) -> Router {
    let scripts = scripts::router(&identity);
    let api = Router::new()
        .route("/v1/environment", get(environment::get))
        .route(
            "/v1/client",
            get(client::get)
                .post(client::create)
                .patch(client::touch)
                .delete(client::destroy),
        )
        .route("/v1/client/handshake", get(handshake::handshake))
        .route("/v1/client/sign_ups", post(sign_ups::create))
        .route(
            "/v1/client/sign_ups/{id}",
            get(sign_ups::get).patch(sign_ups::update),
        )
        .route(
            "/v1/client/sign_ups/{id}/prepare_verification",
            post(sign_ups::prepare_verification),
        )
        .route(
            "/v1/client/sign_ups/{id}/attempt_verification",
            post(sign_ups::attempt_verification),
        )
        .route("/v1/client/sign_ins", post(sign_ins::create))
        .route("/v1/client/sign_ins/{id}", get(sign_ins::get))
        .route(
            "/v1/client/sign_ins/{id}/prepare_first_factor",
            post(sign_ins::prepare_first_factor),
        )
        .route(
            "/v1/client/sign_ins/{id}/attempt_first_factor",
            post(sign_ins::attempt_first_factor),
        )
        .route(
            "/v1/client/sign_ins/{id}/reset_password",
            post(sign_ins::reset_password),
        )
        .route(
            "/v1/client/sessions",
            axum::routing::delete(sessions::end_all),
        )
        .route("/v1/client/sessions/{id}", get(sessions::get))
        .route("/v1/client/sessions/{id}/touch", post(sessions::touch))
        .route("/v1/client/sessions/{id}/tokens", post(sessions::tokens))
        .route(
            "/v1/client/sessions/{id}/tokens/{template}",
            post(sessions::template_token),
        )
        .route("/v1/client/sessions/{id}/end", post(sessions::end))
        .route("/v1/client/sessions/{id}/remove", post(sessions::end))
        .route("/v1/me", get(me::get).patch(me::update).delete(me::delete))
        .route(
            "/v1/me/profile_image",
            post(me::profile_image).delete(me::profile_image),
        )
        .route("/v1/me/change_password", post(me::change_password))
        .route(
            "/v1/me/email_addresses",
            get(me::list_emails).post(me::add_email),
        )
        .route(
            "/v1/me/email_addresses/{id}",
            get(me::get_email).delete(me::remove_email),
        )
        .route(
            "/v1/me/email_addresses/{id}/prepare_verification",
            post(me::prepare_email),
        )
        .route(
            "/v1/me/email_addresses/{id}/attempt_verification",
            post(me::attempt_email),
        )
        .route("/v1/me/sessions/active", get(me::active_sessions))
        .route("/v1/me/sessions", get(me::active_sessions))
        .route("/v1/me/sessions/{id}/revoke", post(me::revoke_session))
        .route_service(scripts::ROUTE, scripts.clone())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(identity.clone(), cors))
        .with_state(identity);
    // `_method` must change the method before the routes are matched, so it wraps the
    // nested service rather than being a layer inside it. The outer router's layers (tracing,
    // metrics) see no matched route for a nested service: the routes report theirs.
    let api = latchkey_web::with_nested_routes(api).map_request(method_override);
    Router::new().nest_service(PREFIX, api).merge(scripts)
}

/// Clerk's scripts send PATCH, PUT and DELETE as POST with `?_method=…` (no CORS preflight),
/// and name some collections with a trailing slash (`/me/email_addresses/`).
fn method_override(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let rebuilt = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rebuilt.parse() {
            *request.uri_mut() = uri;
        }
    }
    if request.method() == Method::POST
        && let Some(query) = request.uri().query()
    {
        let wanted = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "_method")
            .map(|(_, v)| v.to_ascii_uppercase());
        match wanted.as_deref() {
            Some("PATCH") => *request.method_mut() = Method::PATCH,
            Some("PUT") => *request.method_mut() = Method::PUT,
            Some("DELETE") => *request.method_mut() = Method::DELETE,
            _ => {}
        }
    }
    request
}

/// CORS for the app's exact origins, with credentials. A request whose `Origin` is another
/// site's is refused before any handler runs (nothing read, nothing written); a write with no
/// `Origin` at all is refused too, since every browser sends one on a cross-origin or POST
/// fetch. Navigations (the handshake) and reads without one pass.
async fn cors(State(identity): State<Identity>, request: Request, next: Next) -> Response {
    // The scripts are public, for any page (`Access-Control-Allow-Origin: *`).
    if request.uri().path().starts_with("/npm/") {
        return next.run(request).await;
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allowed = origin
        .as_deref()
        .filter(|o| identity.config().fapi_origin_allowed(o))
        .map(str::to_owned);
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    if request.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Some(origin) = &allowed {
            preflight_headers(&mut response, origin);
        }
        return response;
    }
    if allowed.is_none() && (origin.is_some() || !is_read) {
        tracing::info!("frontend API call refused: origin not allowed");
        return FapiError::origin_not_allowed().into_response();
    }
    let mut response = next.run(request).await;
    if let Some(origin) = &allowed {
        allow_origin(&mut response, origin);
    }
    response
}

fn allow_origin(response: &mut Response, origin: &str) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn preflight_headers(response: &mut Response, origin: &str) {
    allow_origin(response, origin);
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PATCH, PUT, DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
}

async fn not_found() -> FapiError {
    FapiError::not_found()
}
