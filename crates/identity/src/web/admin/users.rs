//! `/admin/users`: finding accounts, one account's page, and the actions on it.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use serde::Deserialize;
use serde_json::Value;

use super::{Operator, needs_step_up};
use crate::audit::{self, Actor};
use crate::flows::account;
use crate::flows::admin::{self, AdminError};
use crate::flows::admin_changes::{self, MetadataChange};
use crate::flows::console::{self, ImpersonateError};
use crate::sessions::{self, lifecycle};
use crate::state::Identity;
use crate::users::ConsoleFilters;
use crate::users::metadata::MAX_METADATA_BYTES;
use crate::web::pages::{format_utc, html, message, request_context, see_other, unavailable};
use crate::web::session_cookies;

/// The search form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
    /// `banned`, `unverified`, `mfa`, `no-mfa` or empty.
    #[serde(default)]
    filter: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    to: String,
    /// The last account of the previous page.
    #[serde(default)]
    after: String,
}

struct Row {
    id: String,
    email: String,
    name: String,
    created: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    search: &'a Search,
    error: Option<&'a str>,
    rows: Vec<Row>,
    next_href: Option<String>,
}

/// A date field as Unix ms at the start of that day (UTC); `end` gives the day after.
fn day(text: &str, end: bool) -> Result<Option<i64>, ()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date: jiff::civil::Date = text.parse().map_err(|_| ())?;
    let date = if end {
        date.tomorrow().map_err(|_| ())?
    } else {
        date
    };
    let ts = date.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| ())?;
    Ok(Some(ts.timestamp().as_millisecond()))
}

pub(crate) async fn list(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Response {
    let mut filters = ConsoleFilters::default();
    match search.filter.as_str() {
        "banned" => filters.banned = Some(true),
        "unverified" => filters.unverified = true,
        "mfa" => filters.second_factor = Some(true),
        "no-mfa" => filters.second_factor = Some(false),
        _ => {}
    }
    let dates = day(&search.from, false).and_then(|from| Ok((from, day(&search.to, true)?)));
    let (error, found) = match dates {
        Err(()) => (Some("Dates are written YYYY-MM-DD."), None),
        Ok((from, before)) => {
            filters.created_from = from;
            filters.created_before = before;
            let text = Some(search.q.trim()).filter(|q| !q.is_empty());
            let after = Some(search.after.as_str()).filter(|a| !a.is_empty());
            match console::find(&identity, text, filters, after).await {
                Ok(found) => (None, Some(found)),
                Err(_) => return unavailable("/admin/users"),
            }
        }
    };
    let (rows, next) = found.map_or_else(
        || (Vec::new(), None),
        |found| {
            let rows = found
                .users
                .iter()
                .map(|u| Row {
                    id: u.id.clone(),
                    email: u
                        .primary_email()
                        .map_or_else(String::new, |e| e.email_address.clone()),
                    name: u.display_name(),
                    created: format_utc(u.created_at).1,
                    state: if u.banned_at.is_some() { "banned" } else { "" },
                })
                .collect();
            (rows, found.next)
        },
    );
    let next_href = next.map(|after| {
        let query = serde_urlencoded::to_string([
            ("q", search.q.as_str()),
            ("filter", search.filter.as_str()),
            ("from", search.from.as_str()),
            ("to", search.to.as_str()),
            ("after", after.as_str()),
        ])
        .unwrap_or_default();
        format!("/admin/users?{query}")
    });
    let issued = identity.csrf().issue(&headers);
    let page = UsersPage {
        title: "Users",
        csrf_token: &issued.token,
        search: &search,
        error,
        rows,
        next_href,
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    html(status, page.render(), issued.set_cookie.as_slice())
}

struct EmailRow {
    id: String,
    address: String,
    primary: bool,
    verified: bool,
}

struct SessionRow {
    browser: String,
    ip: String,
    last_active: String,
    status: String,
}

struct ConnectedRow {
    provider: String,
    email: String,
    since: String,
}

struct AuditRowView {
    at: String,
    actor: String,
    action: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    id: &'a str,
    name: String,
    created: String,
    last_sign_in: String,
    banned: bool,
    operator: bool,
    second_factor: bool,
    emails: Vec<EmailRow>,
    connected: Vec<ConnectedRow>,
    sessions: Vec<SessionRow>,
    public_metadata: String,
    private_metadata: String,
    unsafe_metadata: String,
    audit: Vec<AuditRowView>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Notice {
    #[serde(default)]
    notice: String,
}

impl Notice {
    /// The `notice` parameter (a code the page turns into a sentence).
    pub(crate) fn text(&self) -> &str {
        &self.notice
    }
}

pub(crate) async fn show(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    Query(notice): Query<Notice>,
) -> Response {
    let notice = match notice.text() {
        "banned" => Some("The account is banned and its sessions ended."),
        "unbanned" => Some("The ban was lifted."),
        "revoked" => Some("Every session of the account was ended."),
        "verified" => Some("The address is marked verified."),
        "metadata" => Some("The metadata was saved."),
        _ => None,
    };
    render(&identity, &headers, &user_id, StatusCode::OK, notice, None).await
}

async fn render(
    identity: &Identity,
    headers: &HeaderMap,
    user_id: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let detail = match console::detail(identity, user_id).await {
        Ok(Some(detail)) => detail,
        Ok(None) => return no_such_user(),
        Err(_) => return unavailable("/admin/users"),
    };
    let user = &detail.user;
    let now = identity.now_ms();
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let issued = identity.csrf().issue(headers);
    let page = UserPage {
        title: "User",
        csrf_token: &issued.token,
        notice,
        error,
        id: &user.id,
        name: user.display_name(),
        created: format_utc(user.created_at).1,
        last_sign_in: user
            .last_sign_in_at
            .map_or_else(|| "never".to_owned(), |at| format_utc(at).1),
        banned: user.banned_at.is_some(),
        operator: detail.operator,
        second_factor: user.totp_enabled_at.is_some(),
        emails: user
            .emails
            .iter()
            .map(|e| EmailRow {
                id: e.id.clone(),
                address: e.email_address.clone(),
                primary: user.primary_email_address_id.as_deref() == Some(e.id.as_str()),
                verified: e.verification_status == "verified",
            })
            .collect(),
        connected: user
            .external_accounts
            .iter()
            .map(|a| ConnectedRow {
                provider: a.profile.provider.clone(),
                email: a.profile.email_address.clone().unwrap_or_default(),
                since: format_utc(a.created_at).1,
            })
            .collect(),
        sessions: detail
            .sessions
            .iter()
            .map(|s| SessionRow {
                browser: s.user_agent.as_deref().map_or_else(
                    || "Unknown browser".to_owned(),
                    |ua| {
                        let agent = sessions::describe_agent(ua);
                        format!("{} on {}", agent.browser, agent.os)
                    },
                ),
                ip: s.ip_address.clone().unwrap_or_else(|| "unknown".to_owned()),
                last_active: format_utc(s.last_active_at).1,
                status: if s.is_active(now) {
                    "active".to_owned()
                } else {
                    s.status.clone()
                },
            })
            .collect(),
        public_metadata: pretty(&user.public_metadata),
        private_metadata: pretty(&user.private_metadata),
        unsafe_metadata: pretty(&user.unsafe_metadata),
        audit: detail
            .audit
            .iter()
            .map(|row| AuditRowView {
                at: format_utc(row.occurred_at).1,
                actor: match &row.actor_id {
                    Some(id) => format!("{} {id}", row.actor_type),
                    None => row.actor_type.clone(),
                },
                action: row.action.clone(),
                detail: row.detail.clone(),
            })
            .collect(),
    };
    html(status, page.render(), issued.set_cookie.as_slice())
}

fn no_such_user() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No such user",
        "There is no account with this id; it may have been deleted.",
        "/admin/users",
        None,
    )
}

fn done(user_id: &str, notice: &str) -> Response {
    see_other(&format!("/admin/users/{user_id}?notice={notice}"), &[])
}

fn failed(error: &AdminError) -> Response {
    match error {
        AdminError::NotFound => no_such_user(),
        _ => unavailable("/admin/users"),
    }
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Plain {}

impl ProtectedForm for Plain {
    const PAGE: &'static str = "/admin/users";
}

async fn set_banned(
    identity: &Identity,
    operator: &Operator,
    user_id: &str,
    ban: bool,
) -> Response {
    if let Some(response) = needs_step_up(identity, operator) {
        return response;
    }
    let operation = if ban { "ban" } else { "unban" };
    let actor = Actor::Operator(operator.user.id.clone());
    match audit::acting_for(actor, operation, admin::set_banned(identity, user_id, ban)).await {
        Ok(_) => done(user_id, if ban { "banned" } else { "unbanned" }),
        Err(error) => failed(&error),
    }
}

pub(crate) async fn ban(
    State(identity): State<Identity>,
    Extension(operator): Extension<Operator>,
    Path(user_id): Path<String>,
    CsrfForm(Plain {}): CsrfForm<Plain>,
) -> Response {
    set_banned(&identity, &operator, &user_id, true).await
}

pub(crate) async fn unban(
    State(identity): State<Identity>,
    Extension(operator): Extension<Operator>,
    Path(user_id): Path<String>,
    CsrfForm(Plain {}): CsrfForm<Plain>,
) -> Response {
    set_banned(&identity, &operator, &user_id, false).await
}

pub(crate) async fn revoke_sessions(
    State(identity): State<Identity>,
    Extension(operator): Extension<Operator>,
    Path(user_id): Path<String>,
    CsrfForm(Plain {}): CsrfForm<Plain>,
) -> Response {
    if let Some(response) = needs_step_up(&identity, &operator) {
        return response;
    }
    let actor = Actor::Operator(operator.user.id.clone());
    let revoke = lifecycle::revoke_other_sessions(&identity, &user_id, None);
    match audit::acting_for(actor, "revoke_sessions", revoke).await {
        Ok(_) => done(&user_id, "revoked"),
        Err(_) => unavailable("/admin/users"),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct VerifyForm {
    #[serde(default)]
    email_id: String,
}

impl ProtectedForm for VerifyForm {
    const PAGE: &'static str = "/admin/users";
}

pub(crate) async fn verify_email(
    State(identity): State<Identity>,
    Extension(operator): Extension<Operator>,
    Path(user_id): Path<String>,
    CsrfForm(form): CsrfForm<VerifyForm>,
) -> Response {
    let actor = Actor::Operator(operator.user.id.clone());
    let verify = console::verify_address(&identity, &user_id, &form.email_id);
    match audit::acting_for(actor, "verify_email", verify).await {
        Ok(_) => done(&user_id, "verified"),
        Err(error) => failed(&error),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct MetadataForm {
    #[serde(default)]
    public_metadata: String,
    #[serde(default)]
    private_metadata: String,
    #[serde(default)]
    unsafe_metadata: String,
}

impl ProtectedForm for MetadataForm {
    const PAGE: &'static str = "/admin/users";
}

/// One metadata field: a JSON object of at most 8 KB (empty: `{}`).
fn metadata_field(name: &str, text: &str) -> Result<Value, String> {
    let text = text.trim();
    let value: Value = if text.is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_str(text).map_err(|e| format!("{name} is not valid JSON: {e}"))?
    };
    if !value.is_object() {
        return Err(format!("{name} must be a JSON object"));
    }
    if value.to_string().len() > MAX_METADATA_BYTES {
        return Err(format!(
            "{name} is larger than {} KB",
            MAX_METADATA_BYTES / 1024
        ));
    }
    Ok(value)
}

pub(crate) async fn metadata(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Extension(operator): Extension<Operator>,
    Path(user_id): Path<String>,
    CsrfForm(form): CsrfForm<MetadataForm>,
) -> Response {
    let fields = metadata_field("public_metadata", &form.public_metadata).and_then(|public| {
        Ok(MetadataChange {
            public: Some(public),
            private: Some(metadata_field("private_metadata", &form.private_metadata)?),
            unsafe_: Some(metadata_field("unsafe_metadata", &form.unsafe_metadata)?),
        })
    });
    let change = match fields {
        Ok(change) => change,
        Err(problem) => {
            return render(
                &identity,
                &headers,
                &user_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(&format!("Nothing was saved: {problem}.")),
            )
            .await;
        }
    };
    let actor = Actor::Operator(operator.user.id.clone());
    let save = admin_changes::change_metadata(&identity, &user_id, change, false);
    match audit::acting_for(actor, "edit_metadata", save).await {
        Ok(_) => done(&user_id, "metadata"),
        Err(error) => failed(&error),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeleteForm {
    #[serde(default)]
    confirmation: String,
}

impl ProtectedForm for DeleteForm {
    const PAGE: &'static str = "/admin/users";
}

pub(crate) async fn delete(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Extension(operator): Extension<Operator>,
    Path(user_id): Path<String>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Response {
    if let Some(response) = needs_step_up(&identity, &operator) {
        return response;
    }
    if form.confirmation.trim() != user_id {
        return render(
            &identity,
            &headers,
            &user_id,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Nothing was deleted: type the account's id exactly to confirm."),
        )
        .await;
    }
    let actor = Actor::Operator(operator.user.id.clone());
    let delete = account::delete_account(&identity, &user_id);
    match audit::acting_for(actor, "delete", delete).await {
        Ok(()) => see_other("/admin/users?deleted=1", &[]),
        Err(account::ChangeError::NotFound) => no_such_user(),
        Err(_) => unavailable("/admin/users"),
    }
}

/// Signs the operator's browser in as the account for an hour; see [`console::impersonate`].
pub(crate) async fn impersonate(
    State(identity): State<Identity>,
    headers: HeaderMap,
    peer: crate::context::Peer,
    Extension(operator): Extension<Operator>,
    Path(user_id): Path<String>,
    CsrfForm(Plain {}): CsrfForm<Plain>,
) -> Response {
    if let Some(response) = needs_step_up(&identity, &operator) {
        return response;
    }
    let ctx = request_context(&identity, &headers, peer);
    match console::impersonate(&identity, &operator.session, &user_id, &ctx).await {
        Ok(signed) => see_other("/", &session_cookies::sign_in_cookies(&identity, &signed)),
        Err(ImpersonateError::NotFound) => no_such_user(),
        Err(refused @ (ImpersonateError::Banned | ImpersonateError::Operator)) => {
            let text = format!("Nobody was signed in: {refused}.");
            render(
                &identity,
                &headers,
                &user_id,
                StatusCode::CONFLICT,
                None,
                Some(&text),
            )
            .await
        }
        Err(ImpersonateError::Store(_)) => unavailable("/admin/users"),
    }
}
