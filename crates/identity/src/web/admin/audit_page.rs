//! `/admin/audit`: the audit log, newest first, a page at a time.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::audit;
use crate::state::Identity;
use crate::web::pages::{format_utc, html, unavailable};

/// Entries per page.
const PAGE: u32 = 100;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Cursor {
    /// Entries before this number.
    #[serde(default)]
    before: Option<i64>,
    /// Only entries about this account.
    #[serde(default)]
    user: String,
}

struct Row {
    seq: i64,
    at: String,
    actor_type: String,
    actor_id: String,
    action: String,
    subject: String,
    detail: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    user: &'a str,
    rows: Vec<Row>,
    next_href: Option<String>,
}

pub(crate) async fn list(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Query(cursor): Query<Cursor>,
) -> Response {
    let user = Some(cursor.user.trim()).filter(|u| !u.is_empty());
    let Ok(mut rows) = audit::page(&identity, cursor.before, user, PAGE + 1).await else {
        return unavailable("/admin/audit");
    };
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let next_href = more.then(|| rows.last()).flatten().map(|last| {
        let query = serde_urlencoded::to_string([
            ("before", last.seq.to_string()),
            ("user", cursor.user.clone()),
        ])
        .unwrap_or_default();
        format!("/admin/audit?{query}")
    });
    let issued = identity.csrf().issue(&headers);
    let page = AuditPage {
        title: "Audit log",
        csrf_token: &issued.token,
        user: &cursor.user,
        rows: rows
            .into_iter()
            .map(|row| Row {
                seq: row.seq,
                at: format_utc(row.occurred_at).1,
                actor_type: row.actor_type,
                actor_id: row.actor_id.unwrap_or_default(),
                action: row.action,
                subject: row.subject_id.unwrap_or_default(),
                detail: row.detail,
                ip: row.ip.unwrap_or_default(),
            })
            .collect(),
        next_href,
    };
    html(StatusCode::OK, page.render(), issued.set_cookie.as_slice())
}
