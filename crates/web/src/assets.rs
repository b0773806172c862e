//! Static assets, served from memory: the stylesheet every page links to, and the one script
//! (the WebAuthn calls of passkeys) that only the pages allowed to run it load.

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header;

/// The stylesheet every page links to.
pub const STYLESHEET_PATH: &str = "/assets/latchkey.css";
const STYLESHEET: &str = include_str!("../assets/latchkey.css");

/// The script of the pages with passkeys (sign-in and the account page).
pub const PASSKEYS_SCRIPT_PATH: &str = "/assets/passkeys.js";
const PASSKEYS_SCRIPT: &str = include_str!("../assets/passkeys.js");

/// `GET /assets/latchkey.css` and `GET /assets/passkeys.js`.
pub fn router() -> Router {
    Router::new()
        .route(STYLESHEET_PATH, get(stylesheet))
        .route(PASSKEYS_SCRIPT_PATH, get(passkeys_script))
}

async fn passkeys_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PASSKEYS_SCRIPT,
    )
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
