//! Static assets shared by every page: one stylesheet, served from memory.

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header;

/// The stylesheet every page links to.
pub const STYLESHEET_PATH: &str = "/assets/latchkey.css";
const STYLESHEET: &str = include_str!("../assets/latchkey.css");

/// `GET /assets/latchkey.css`.
pub fn router() -> Router {
    Router::new().route(STYLESHEET_PATH, get(stylesheet))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}
