//! The app's pages: the seed's layout (a header with the app's name and a Sign in button or a
//! user button), a landing page, the protected dashboard with settings and notes, and
//! `GET /api/me`. Server-rendered, no JavaScript, every form protected against CSRF.

mod chrome;
mod dashboard;
mod notes;

use axum::Router;
use axum::routing::{get, post};
use http::StatusCode;
use latchkey_store::{StoreError, Tx};
use serde::Deserialize;

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

/// A page's `?notice=…`, naming what was just done.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Notice {
    #[serde(default)]
    notice: String,
}

/// What a page with a form shows besides its own data: the notice of a change just made, or
/// input that was refused (`F`, shown again) with what is wrong with it.
pub(crate) enum Shown<'a, F> {
    Notice(Option<&'static str>),
    Refused { problem: &'static str, input: &'a F },
}

impl<'a, F> Shown<'a, F> {
    /// 422 for refused input, 200 otherwise.
    fn status(&self) -> StatusCode {
        match self {
            Self::Notice(_) => StatusCode::OK,
            Self::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn notice(&self) -> Option<&'static str> {
        match self {
            Self::Notice(notice) => *notice,
            Self::Refused { .. } => None,
        }
    }

    fn problem(&self) -> Option<&'static str> {
        match self {
            Self::Notice(_) => None,
            Self::Refused { problem, .. } => Some(problem),
        }
    }

    fn input(&self) -> Option<&'a F> {
        match self {
            Self::Notice(_) => None,
            Self::Refused { input, .. } => Some(input),
        }
    }
}

/// `work` in one read transaction of the app's database.
async fn read<T>(
    state: &AppState,
    work: impl AsyncFnOnce(&mut Tx) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    committed(state.db.begin_read().await?, work).await
}

/// `work` in one write transaction of the app's database.
async fn write<T>(
    state: &AppState,
    work: impl AsyncFnOnce(&mut Tx) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    committed(state.db.begin().await?, work).await
}

/// `work` in `tx`, then committed.
async fn committed<T>(
    mut tx: Tx,
    work: impl AsyncFnOnce(&mut Tx) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let value = work(&mut tx).await?;
    tx.commit().await?;
    Ok(value)
}
