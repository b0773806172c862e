//! `/`, `/dashboard`, `/dashboard/settings` and `GET /api/me`.

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use latchkey_web::ApiError;
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use latchkey_web::pages::{html, see_other};
use serde::Deserialize;

use super::{Chrome, Notice, Shown, read, write};
use crate::AppState;
use crate::data::{self, LOCALES, Preferences, Theme};
use crate::session::{CurrentUser, MaybeUser};

/// The app's answer when its database is unavailable, for pages.
pub(crate) fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [("retry-after", "2")],
        "The app's database is unavailable; try again in a moment.",
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing {
    chrome: Chrome,
}

pub(crate) async fn landing(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeUser(current): MaybeUser,
) -> Response {
    let Ok((chrome, _)) = Chrome::build(&state, &headers, &state.app_name, current.as_ref()).await
    else {
        return unavailable();
    };
    let cookies = chrome.cookies();
    html(StatusCode::OK, Landing { chrome }.render(), &cookies)
}

pub(crate) struct Profile {
    id: String,
    clerk_user_id: String,
    email: String,
    name: String,
    username: String,
    public_metadata: String,
    source_updated: String,
    source_updated_iso: String,
    note_count: i64,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    profile: Profile,
}

pub(crate) async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
) -> Response {
    let Ok((chrome, _)) = Chrome::build(&state, &headers, "Dashboard", Some(&current)).await else {
        return unavailable();
    };
    let count = read(&state, async |tx| {
        data::note_count(tx, &current.user.id).await
    })
    .await;
    let Ok(note_count) = count else {
        return unavailable();
    };
    let user = &current.user;
    let (source_updated, source_updated_iso) = crate::pages::chrome_time(user.source_updated_at);
    let profile = Profile {
        id: user.id.clone(),
        clerk_user_id: user.clerk_user_id.clone(),
        email: user.email.clone().unwrap_or_default(),
        name: super::chrome::display_name(user),
        username: user.username.clone().unwrap_or_default(),
        public_metadata: user.public_metadata.to_string(),
        source_updated,
        source_updated_iso,
        note_count,
    };
    let cookies = chrome.cookies();
    html(
        StatusCode::OK,
        Dashboard { chrome, profile }.render(),
        &cookies,
    )
}

#[derive(Template)]
#[template(path = "settings.html")]
struct Settings<'a> {
    chrome: Chrome,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    themes: &'a [(&'a str, &'a str)],
    theme: &'a str,
    locales: &'a [(&'a str, &'a str)],
    locale: &'a str,
    time_zone: &'a str,
}

const THEMES: &[(&str, &str)] = &[
    ("system", "Follow my system"),
    ("light", "Light"),
    ("dark", "Dark"),
];

async fn render_settings(
    state: &AppState,
    headers: &HeaderMap,
    current: &CurrentUser,
    shown: Shown<'_, Preferences>,
) -> Response {
    let Ok((chrome, stored)) = Chrome::build(state, headers, "Settings", Some(current)).await
    else {
        return unavailable();
    };
    let preferences = shown.input().unwrap_or(&stored);
    let cookies = chrome.cookies();
    let page = Settings {
        chrome,
        notice: shown.notice(),
        error: shown.problem(),
        themes: THEMES,
        theme: preferences.theme.as_str(),
        locales: LOCALES,
        locale: &preferences.locale,
        time_zone: &preferences.time_zone,
    };
    html(shown.status(), page.render(), &cookies)
}

pub(crate) async fn settings_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
    Query(query): Query<Notice>,
) -> Response {
    let notice = (query.notice == "saved").then_some("Your settings were saved.");
    render_settings(&state, &headers, &current, Shown::Notice(notice)).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    theme: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    time_zone: String,
}

impl ProtectedForm for SettingsForm {
    const PAGE: &'static str = "/dashboard/settings";
}

pub(crate) async fn save_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> Response {
    let theme = Theme::parse(&form.theme);
    let locale_known = LOCALES.iter().any(|(code, _)| *code == form.locale);
    let time_zone = form.time_zone.trim().to_owned();
    let shown = Preferences {
        theme: theme.unwrap_or(Theme::System),
        locale: form.locale.clone(),
        time_zone: time_zone.clone(),
    };
    let problem = if theme.is_none() {
        Some("Choose light, dark or system.")
    } else if !locale_known {
        Some("Choose a language from the list.")
    } else if !data::valid_time_zone(&time_zone) {
        Some("Enter a time zone such as Europe/Paris or UTC.")
    } else {
        None
    };
    if let Some(problem) = problem {
        let refused = Shown::Refused {
            problem,
            input: &shown,
        };
        return render_settings(&state, &headers, &current, refused).await;
    }
    let saved = write(&state, async |tx| {
        let now = latchkey_protocol::time::now_ms();
        data::save_preferences(tx, &current.user.id, &shown, now).await
    })
    .await;
    match saved {
        Ok(()) => see_other("/dashboard/settings?notice=saved", &[]),
        Err(_) => unavailable(),
    }
}

/// `GET /api/session`: who is signed in, from the session middleware alone (no query beyond
/// what [`CurrentUser`] needs): the app's user and the session token's id and expiry, for a
/// script that needs to know when to fetch a fresh token, and its actor (the token's `act`:
/// someone acting as the user, `null` otherwise).
pub(crate) async fn session(current: CurrentUser) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user": current.user,
        "session": {
            "id": current.claims.sid,
            "issuer": current.claims.iss,
            "expires_at": current.claims.exp.saturating_mul(1000),
            "actor": current.claims.extra.get("act"),
        },
    }))
}

/// `GET /api/me`: the app's user, preferences and note count.
pub(crate) async fn me(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (preferences, note_count) = data::summary(&state.db, &current.user.id).await?;
    Ok(Json(serde_json::json!({
        "user": current.user,
        "preferences": preferences,
        "note_count": note_count,
    })))
}
