//! Headers every response carries, whichever part or handler made it.
//!
//! Most responses hold personal data (users, sessions, addresses, codes), so the default is
//! that nothing may store them: a handler whose answer is public opts in by setting its own
//! `Cache-Control` (the stylesheet, the JWKS). And no response is ever content-sniffed, so a
//! JSON body holding user-supplied text cannot be read as HTML or script.

use axum::Router;
use axum::response::Response;
use http::HeaderValue;
use http::header::{CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};

/// Adds `X-Content-Type-Options: nosniff` to every response, and `Cache-Control: no-store` to
/// every response that does not set its own `Cache-Control`.
pub fn with_private_responses<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(axum::middleware::map_response(add_headers))
}

async fn add_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
