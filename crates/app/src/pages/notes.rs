//! `/dashboard/notes`: an example of app data owned by a user.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use latchkey_store::StoreError;
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use latchkey_web::pages::{html, see_other};
use serde::Deserialize;

use super::dashboard::unavailable;
use super::{Chrome, Notice, Shown, read, write};
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
pub(crate) struct NoteForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

impl ProtectedForm for NoteForm {
    const PAGE: &'static str = "/dashboard/notes";
}

/// The answer to a change of a note: back to the list with `notice`, or 404 if the note
/// (of this user) was not found.
fn changed(result: Result<bool, StoreError>, notice: &str) -> Response {
    match result {
        Ok(true) => see_other(&format!("/dashboard/notes?notice={notice}"), &[]),
        Ok(false) => (StatusCode::NOT_FOUND, "No such note.").into_response(),
        Err(_) => unavailable(),
    }
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
    shown: Shown<'_, NoteForm>,
) -> Response {
    let Ok((chrome, _)) = Chrome::build(state, headers, "Notes", Some(current)).await else {
        return unavailable();
    };
    let listed = read(state, async |tx| data::notes(tx, &current.user.id).await).await;
    let Ok(notes) = listed else {
        return unavailable();
    };
    let cookies = chrome.cookies();
    let draft = shown.input();
    let page = NotesPage {
        chrome,
        notice: shown.notice(),
        error: shown.problem(),
        notes,
        draft_title: draft.map_or("", |d| d.title.as_str()),
        draft_body: draft.map_or("", |d| d.body.as_str()),
    };
    html(shown.status(), page.render(), &cookies)
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
    render_list(&state, &headers, &current, Shown::Notice(notice)).await
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
    CsrfForm(form): CsrfForm<NoteForm>,
) -> Response {
    if let Some(problem) = check(&form) {
        let refused = Shown::Refused {
            problem,
            input: &form,
        };
        return render_list(&state, &headers, &current, refused).await;
    }
    let created = write(&state, async |tx| {
        let now = latchkey_protocol::time::now_ms();
        data::create_note(tx, &current.user.id, form.title.trim(), &form.body, now).await?;
        Ok(true)
    })
    .await;
    changed(created, "added")
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    let found = read(&state, async |tx| {
        data::note(tx, &current.user.id, &id).await
    })
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
    let updated = write(&state, async |tx| {
        let now = latchkey_protocol::time::now_ms();
        let title = form.title.trim();
        data::update_note(tx, &current.user.id, &id, title, &form.body, now).await
    })
    .await;
    changed(updated, "saved")
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoteForm>,
) -> Response {
    let deleted = write(&state, async |tx| {
        data::delete_note(tx, &current.user.id, &id).await
    })
    .await;
    changed(deleted, "deleted")
}
