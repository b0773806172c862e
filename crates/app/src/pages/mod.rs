//! The app's pages: the seed's layout (a header with the app's name and a Sign in button or a
//! user button), a landing page, the protected dashboard with settings and notes, and
//! `GET /api/me`. Server-rendered, no JavaScript, every form protected against CSRF.

mod chrome;
mod dashboard;
mod notes;

use axum::Router;
use axum::routing::{get, post};

pub(crate) use chrome::Chrome;
pub(crate) use latchkey_web::time::format_utc as chrome_time;

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::landing))
        .route("/dashboard", get(dashboard::dashboard))
        .route(
            "/dashboard/settings",
            get(dashboard::settings_page).post(dashboard::save_settings),
        )
        .route("/dashboard/notes", get(notes::list).post(notes::create))
        .route("/dashboard/notes/{id}", post(notes::update))
        .route("/dashboard/notes/{id}/edit", get(notes::edit))
        .route("/dashboard/notes/{id}/delete", post(notes::delete))
        .route("/api/me", get(dashboard::me))
        .route("/api/session", get(dashboard::session))
}
