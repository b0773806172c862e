//! `/dashboard/notes`: an example of app data owned by a user.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use latchkey_web::pages::{html, see_other};
use serde::Deserialize;

use super::Chrome;
use super::dashboard::unavailable;
use crate::AppState;
use crate::data::{self, Note};
use crate::session::CurrentUser;

const MAX_TITLE: usize = 200;
const MAX_BODY: usize = 10_000;

#[derive(Template)]
#[template(path = "notes.html")]
struct NotesPage<'a> {
    chrome: Chrome,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    notes: Vec<Note>,
    draft_title: &'a str,
    draft_body: &'a str,
}

#[derive(Template)]
#[template(path = "note_edit.html")]
struct EditPage<'a> {
    chrome: Chrome,
    error: Option<&'a str>,
    note_id: &'a str,
    title: &'a str,
    body: &'a str,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Notice {
    #[serde(default)]
    notice: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NoteForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

impl ProtectedForm for NoteForm {
    const PAGE: &'static str = "/dashboard/notes";
}

/// The problem with a note's fields, if any.
fn check(form: &NoteForm) -> Option<&'static str> {
    let title = form.title.trim();
    if title.is_empty() {
        Some("Give the note a title.")
    } else if title.chars().count() > MAX_TITLE {
        Some("Titles are at most 200 characters.")
    } else if form.body.chars().count() > MAX_BODY {
        Some("Notes are at most 10,000 characters.")
    } else if title.chars().any(char::is_control)
        || form
            .body
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        // NUL among them: Postgres text refuses it where SQLite would store it.
        Some("Notes cannot contain control characters.")
    } else {
        None
    }
}

async fn render_list(
    state: &AppState,
    headers: &HeaderMap,
    current: &CurrentUser,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    draft: Option<&NoteForm>,
) -> Response {
    let Ok((chrome, _)) = Chrome::build(state, headers, "Notes", Some(current)).await else {
        return unavailable();
    };
    let listed = async {
        let mut tx = state.db.begin_read().await?;
        let notes = data::notes(&mut tx, &current.user.id).await?;
        tx.commit().await?;
        Ok::<_, latchkey_store::StoreError>(notes)
    }
    .await;
    let Ok(notes) = listed else {
        return unavailable();
    };
    let cookies = chrome.cookies();
    let page = NotesPage {
        chrome,
        notice,
        error,
        notes,
        draft_title: draft.map_or("", |d| d.title.as_str()),
        draft_body: draft.map_or("", |d| d.body.as_str()),
    };
    html(status, page.render(), &cookies)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
    Query(query): Query<Notice>,
) -> Response {
    let notice = match query.notice.as_str() {
        "added" => Some("Note added."),
        "saved" => Some("Note saved."),
        "deleted" => Some("Note deleted."),
        _ => None,
    };
    render_list(
        &state,
        &headers,
        &current,
        StatusCode::OK,
        notice,
        None,
        None,
    )
    .await
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
    CsrfForm(form): CsrfForm<NoteForm>,
) -> Response {
    if let Some(problem) = check(&form) {
        return render_list(
            &state,
            &headers,
            &current,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(problem),
            Some(&form),
        )
        .await;
    }
    let created = async {
        let mut tx = state.db.begin().await?;
        data::create_note(
            &mut tx,
            &current.user.id,
            form.title.trim(),
            &form.body,
            latchkey_protocol::time::now_ms(),
        )
        .await?;
        tx.commit().await
    }
    .await;
    match created {
        Ok(()) => see_other("/dashboard/notes?notice=added", &[]),
        Err(_) => unavailable(),
    }
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    let found = async {
        let mut tx = state.db.begin_read().await?;
        let note = data::note(&mut tx, &current.user.id, &id).await?;
        tx.commit().await?;
        Ok::<_, latchkey_store::StoreError>(note)
    }
    .await;
    let note = match found {
        Ok(Some(note)) => note,
        Ok(None) => return (StatusCode::NOT_FOUND, "No such note.").into_response(),
        Err(_) => return unavailable(),
    };
    let Ok((chrome, _)) = Chrome::build(&state, &headers, "Edit note", Some(&current)).await else {
        return unavailable();
    };
    let cookies = chrome.cookies();
    let page = EditPage {
        chrome,
        error: None,
        note_id: &note.id,
        title: &note.title,
        body: &note.body,
    };
    html(StatusCode::OK, page.render(), &cookies)
}

pub(crate) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<NoteForm>,
) -> Response {
    if let Some(problem) = check(&form) {
        let Ok((chrome, _)) = Chrome::build(&state, &headers, "Edit note", Some(&current)).await
        else {
            return unavailable();
        };
        let cookies = chrome.cookies();
        let page = EditPage {
            chrome,
            error: Some(problem),
            note_id: &id,
            title: &form.title,
            body: &form.body,
        };
        return html(StatusCode::UNPROCESSABLE_ENTITY, page.render(), &cookies);
    }
    let updated = async {
        let mut tx = state.db.begin().await?;
        let found = data::update_note(
            &mut tx,
            &current.user.id,
            &id,
            form.title.trim(),
            &form.body,
            latchkey_protocol::time::now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, latchkey_store::StoreError>(found)
    }
    .await;
    match updated {
        Ok(true) => see_other("/dashboard/notes?notice=saved", &[]),
        Ok(false) => (StatusCode::NOT_FOUND, "No such note.").into_response(),
        Err(_) => unavailable(),
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoteForm>,
) -> Response {
    let deleted = async {
        let mut tx = state.db.begin().await?;
        let found = data::delete_note(&mut tx, &current.user.id, &id).await?;
        tx.commit().await?;
        Ok::<_, latchkey_store::StoreError>(found)
    }
    .await;
    match deleted {
        Ok(true) => see_other("/dashboard/notes?notice=deleted", &[]),
        Ok(false) => (StatusCode::NOT_FOUND, "No such note.").into_response(),
        Err(_) => unavailable(),
    }
}
