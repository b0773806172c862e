//! `/admin/webhooks`: the endpoints with their health (success rate, p50/p99 latency, backlog,
//! oldest pending delivery) over 24 hours and 7 days, charts of their attempts, the latest
//! attempts, and the actions: replay failed deliveries, resend one event, rotate the secret
//! (shown once), disable and enable. The app's own receiver (the all-in-one run's `internal`
//! endpoint) is shown but managed by latchkey.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use serde::Deserialize;

use super::chart::{self, Series};
use super::users::Plain;
use super::{Operator, needs_step_up};
use crate::audit::{self, Actor};
use crate::state::Identity;
use crate::web::pages::{format_utc, html, message, see_other, unavailable};
use crate::webhooks::endpoints::{self, Endpoint, EndpointError};
use crate::webhooks::health::{self, Window};
use crate::webhooks::replay;

struct Row {
    id: String,
    url: String,
    state: &'static str,
    day_rate: String,
    day_p99: String,
    backlog: i64,
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct ListPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    rows: Vec<Row>,
}

fn state(endpoint: &Endpoint) -> &'static str {
    if endpoint.disabled_at.is_some() {
        "disabled"
    } else if endpoint.failing_since.is_some() {
        "failing"
    } else {
        "healthy"
    }
}

fn rate(window: &Window) -> String {
    window
        .success_rate()
        .map_or_else(|| "—".to_owned(), |r| format!("{r:.1} %"))
}

fn millis(value: Option<i64>) -> String {
    value.map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms"))
}

fn url_of(endpoint: &Endpoint) -> String {
    endpoint
        .url
        .clone()
        .unwrap_or_else(|| "the app's own receiver".to_owned())
}

pub(crate) async fn list(State(identity): State<Identity>, headers: HeaderMap) -> Response {
    let Ok(found) = endpoints::list_endpoints(&identity).await else {
        return unavailable("/admin");
    };
    let mut rows = Vec::with_capacity(found.len());
    for endpoint in &found {
        let Ok(health) = health::health(&identity, &endpoint.id).await else {
            return unavailable("/admin");
        };
        rows.push(Row {
            id: endpoint.id.clone(),
            url: url_of(endpoint),
            state: state(endpoint),
            day_rate: rate(&health.day),
            day_p99: millis(health.day.p99_ms),
            backlog: health.backlog,
        });
    }
    let issued = identity.csrf().issue(&headers);
    let page = ListPage {
        title: "Webhooks",
        csrf_token: &issued.token,
        rows,
    };
    html(StatusCode::OK, page.render(), issued.set_cookie.as_slice())
}

struct WindowView {
    title: &'static str,
    attempts: i64,
    rate: String,
    p50: String,
    p99: String,
    svg: String,
}

struct AttemptView {
    at: String,
    event_id: String,
    status: String,
    duration: String,
    excerpt: String,
}

#[derive(Template)]
#[template(path = "admin/webhook.html")]
struct EndpointPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    secret: Option<&'a str>,
    id: &'a str,
    url: String,
    state: &'static str,
    internal: bool,
    disabled: bool,
    events: String,
    backlog: i64,
    oldest: String,
    windows: Vec<WindowView>,
    recent: Vec<AttemptView>,
}

fn window_view(title: &'static str, window: &Window, labels: &[String]) -> WindowView {
    let ok: Vec<i64> = window.series.iter().map(|(ok, _)| *ok).collect();
    let failed: Vec<i64> = window.series.iter().map(|(_, failed)| *failed).collect();
    WindowView {
        title,
        attempts: window.attempts,
        rate: rate(window),
        p50: millis(window.p50_ms),
        p99: millis(window.p99_ms),
        svg: chart::bars(
            title,
            labels,
            &[
                Series {
                    name: "succeeded",
                    colour: "var(--ok)",
                    values: &ok,
                },
                Series {
                    name: "failed",
                    colour: "var(--danger)",
                    values: &failed,
                },
            ],
        ),
    }
}

async fn render(
    identity: &Identity,
    headers: &HeaderMap,
    id: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    secret: Option<&str>,
) -> Response {
    let endpoint = match endpoints::get_endpoint(identity, id).await {
        Ok(Some(endpoint)) => endpoint,
        Ok(None) => return no_such_endpoint(),
        Err(_) => return unavailable("/admin/webhooks"),
    };
    let Ok(health) = health::health(identity, id).await else {
        return unavailable("/admin/webhooks");
    };
    let now = identity.now_ms();
    let hour = 60 * 60 * 1000;
    let hours: Vec<String> = (0..24)
        .map(|i| format_utc(now - (24 - i) * hour).1[11..16].to_owned())
        .collect();
    let days: Vec<String> = (0..7)
        .map(|i| format_utc(now - (7 - i) * 24 * hour).1[..10].to_owned())
        .collect();
    let issued = identity.csrf().issue(headers);
    let page = EndpointPage {
        title: "Webhook endpoint",
        csrf_token: &issued.token,
        notice,
        error,
        secret,
        id,
        url: url_of(&endpoint),
        state: state(&endpoint),
        internal: endpoint.internal,
        disabled: endpoint.disabled_at.is_some(),
        events: if endpoint.event_types.is_empty() {
            "every event".to_owned()
        } else {
            endpoint.event_types.join(", ")
        },
        backlog: health.backlog,
        oldest: health.oldest_pending_at.map_or_else(
            || "none pending".to_owned(),
            |at| format!("{} s old", (now - at).max(0) / 1000),
        ),
        windows: vec![
            window_view("Last 24 hours, by hour", &health.day, &hours),
            window_view("Last 7 days, by day", &health.week, &days),
        ],
        recent: health
            .recent
            .iter()
            .map(|a| AttemptView {
                at: format_utc(a.attempted_at).1,
                event_id: a.event_id.clone(),
                status: a
                    .status
                    .map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
                duration: format!("{} ms", a.duration_ms),
                excerpt: a.excerpt.clone(),
            })
            .collect(),
    };
    html(status, page.render(), issued.set_cookie.as_slice())
}

fn no_such_endpoint() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No such endpoint",
        "There is no webhook endpoint with this id.",
        "/admin/webhooks",
        None,
    )
}

pub(crate) async fn show(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Query(notice): axum::extract::Query<super::users::Notice>,
) -> Response {
    let notice = match notice.text() {
        "replayed" => Some("Failed deliveries were queued again."),
        "resent" => Some("The event was queued again."),
        "disabled" => Some("Deliveries to this endpoint are stopped."),
        "enabled" => Some("Deliveries to this endpoint resume."),
        _ => None,
    };
    render(&identity, &headers, &id, StatusCode::OK, notice, None, None).await
}

fn endpoint_failed(error: &EndpointError) -> Response {
    match error {
        EndpointError::NotFound => no_such_endpoint(),
        _ => unavailable("/admin/webhooks"),
    }
}

/// Refuses changes to the app's own receiver, which latchkey manages.
async fn managed(identity: &Identity, id: &str) -> Option<Response> {
    match endpoints::get_endpoint(identity, id).await {
        Ok(Some(endpoint)) if endpoint.internal => Some(message(
            StatusCode::CONFLICT,
            "Managed by latchkey",
            "The app's own receiver is managed by latchkey; it cannot be changed here.",
            &format!("/admin/webhooks/{id}"),
            None,
        )),
        Ok(Some(_)) => None,
        Ok(None) => Some(no_such_endpoint()),
        Err(_) => Some(unavailable("/admin/webhooks")),
    }
}

pub(crate) async fn replay_failed(
    State(identity): State<Identity>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    CsrfForm(Plain {}): CsrfForm<Plain>,
) -> Response {
    let actor = Actor::Operator(operator.user.id.clone());
    let replay = replay::replay(&identity, &id, None, true);
    match audit::acting_for(actor, "replay_failed", replay).await {
        Ok(_) => see_other(&format!("/admin/webhooks/{id}?notice=replayed"), &[]),
        Err(error) => endpoint_failed(&error),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResendForm {
    #[serde(default)]
    event_id: String,
}

impl ProtectedForm for ResendForm {
    const PAGE: &'static str = "/admin/webhooks";
}

pub(crate) async fn resend(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ResendForm>,
) -> Response {
    let actor = Actor::Operator(operator.user.id.clone());
    let event_id = form.event_id.trim().to_owned();
    let resend = replay::resend(&identity, &event_id, &id);
    match audit::acting_for(actor, "resend", resend).await {
        Ok(()) => see_other(&format!("/admin/webhooks/{id}?notice=resent"), &[]),
        Err(EndpointError::NotFound) => {
            render(
                &identity,
                &headers,
                &id,
                StatusCode::NOT_FOUND,
                None,
                Some("There is no event with that id."),
                None,
            )
            .await
        }
        Err(error) => endpoint_failed(&error),
    }
}

pub(crate) async fn rotate_secret(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    CsrfForm(Plain {}): CsrfForm<Plain>,
) -> Response {
    if let Some(response) = needs_step_up(&identity, &operator) {
        return response;
    }
    if let Some(response) = managed(&identity, &id).await {
        return response;
    }
    let actor = Actor::Operator(operator.user.id.clone());
    let rotate = endpoints::rotate_endpoint_secret(&identity, &id);
    match audit::acting_as(actor, rotate).await {
        Ok(secret) => {
            let shown = secret.expose();
            render(
                &identity,
                &headers,
                &id,
                StatusCode::OK,
                Some("A new secret signs from now on; the old one keeps signing for 24 hours."),
                None,
                Some(&shown),
            )
            .await
        }
        Err(error) => endpoint_failed(&error),
    }
}

async fn set_disabled(
    identity: &Identity,
    operator: &Operator,
    id: &str,
    disable: bool,
) -> Response {
    if let Some(response) = needs_step_up(identity, operator) {
        return response;
    }
    if let Some(response) = managed(identity, id).await {
        return response;
    }
    let actor = Actor::Operator(operator.user.id.clone());
    let result = if disable {
        audit::acting_as(actor, endpoints::disable_endpoint(identity, id)).await
    } else {
        audit::acting_as(actor, endpoints::enable_endpoint(identity, id)).await
    };
    match result {
        Ok(()) => see_other(
            &format!(
                "/admin/webhooks/{id}?notice={}",
                if disable { "disabled" } else { "enabled" }
            ),
            &[],
        ),
        Err(error) => endpoint_failed(&error),
    }
}

pub(crate) async fn disable(
    State(identity): State<Identity>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    CsrfForm(Plain {}): CsrfForm<Plain>,
) -> Response {
    set_disabled(&identity, &operator, &id, true).await
}

pub(crate) async fn enable(
    State(identity): State<Identity>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    CsrfForm(Plain {}): CsrfForm<Plain>,
) -> Response {
    set_disabled(&identity, &operator, &id, false).await
}
