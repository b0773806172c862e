//! `/metrics` on its own listener (`LATCHKEY_METRICS_ADDR`, off by default): Prometheus' text
//! format, from the process's counters (`latchkey_web::metrics`, the pool's) and gauges read
//! when scraped (the identity's outbox, mail, sessions and hasher; the pool's connections).
//! Nothing here names a user, an address or a token. While it is off, requests are not timed.

use std::fmt::Write as _;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use latchkey_identity::Identity;
use latchkey_web::metrics::{self, REQUESTS, TOKEN_VERIFICATIONS, family, sample};

/// Records each request's matched route, status and duration (see
/// [`latchkey_web::metrics::Requests`]); a nested router's route as it reports it
/// ([`latchkey_web::with_nested_routes`]).
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = latchkey_web::matched_route(matched.as_ref(), &response).unwrap_or("unmatched");
    REQUESTS.record(
        &method,
        route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The metrics listener's routes.
pub fn router(identity: Identity) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(identity)
}

async fn scrape(State(identity): State<Identity>) -> Response {
    let snapshot = match latchkey_identity::stats::snapshot(&identity).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "metrics: the database could not be read");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
        }
    };
    let mut out = String::with_capacity(16 * 1024);
    REQUESTS.render(&mut out);
    TOKEN_VERIFICATIONS.render(&mut out);

    let by_status = |out: &mut String, name: &str, help: &str, rows: &[(String, i64)]| {
        family(out, name, help, "gauge");
        for (status, n) in rows {
            let _ = writeln!(out, "{name}{{status=\"{}\"}} {n}", metrics::escape(status));
        }
    };
    by_status(
        &mut out,
        "latchkey_webhook_deliveries",
        "Webhook deliveries in the outbox, by status (pending ones are the backlog).",
        &snapshot.deliveries,
    );
    let backlog: i64 = snapshot
        .deliveries
        .iter()
        .filter(|(status, _)| status == "pending")
        .map(|(_, n)| n)
        .sum();
    family(
        &mut out,
        "latchkey_outbox_backlog",
        "Webhook deliveries not yet made.",
        "gauge",
    );
    sample(&mut out, "latchkey_outbox_backlog", backlog);
    family(
        &mut out,
        "latchkey_outbox_oldest_pending_age_seconds",
        "Age of the oldest delivery not yet made (0 when none is).",
        "gauge",
    );
    let age_ms = snapshot
        .oldest_pending_at
        .map_or(0, |at| (identity.now_ms() - at).max(0));
    sample(
        &mut out,
        "latchkey_outbox_oldest_pending_age_seconds",
        age_ms / 1000,
    );
    by_status(
        &mut out,
        "latchkey_mail",
        "Mail in the outbox, by status.",
        &snapshot.mail,
    );
    family(
        &mut out,
        "latchkey_active_sessions",
        "Sessions active now.",
        "gauge",
    );
    sample(
        &mut out,
        "latchkey_active_sessions",
        snapshot.active_sessions,
    );
    family(
        &mut out,
        "latchkey_password_hasher_queue_depth",
        "Password hashes waiting for a worker.",
        "gauge",
    );
    sample(
        &mut out,
        "latchkey_password_hasher_queue_depth",
        snapshot.hasher_queue,
    );
    let (batches, batched) = latchkey_app::webhooks::group::totals();
    family(
        &mut out,
        "latchkey_webhook_receiver_batches_total",
        "Transactions the webhook receiver committed user events in together (group commit).",
        "counter",
    );
    sample(&mut out, "latchkey_webhook_receiver_batches_total", batches);
    family(
        &mut out,
        "latchkey_webhook_receiver_batched_events_total",
        "User events committed in those transactions; divided by the batches, the mean batch size.",
        "counter",
    );
    sample(
        &mut out,
        "latchkey_webhook_receiver_batched_events_total",
        batched,
    );
    family(
        &mut out,
        "latchkey_password_hasher_refusals_total",
        "Password hashes refused because the queue was full (answered 503).",
        "counter",
    );
    sample(
        &mut out,
        "latchkey_password_hasher_refusals_total",
        snapshot.hasher_refusals,
    );
    family(
        &mut out,
        "latchkey_db_connections_in_use",
        "Database connections lent out now.",
        "gauge",
    );
    sample(
        &mut out,
        "latchkey_db_connections_in_use",
        identity.db().connections_in_use(),
    );
    let pool = &latchkey_store::POOL_STATS;
    family(
        &mut out,
        "latchkey_db_connection_waits_total",
        "Times every database connection was busy and a request waited for one.",
        "counter",
    );
    sample(&mut out, "latchkey_db_connection_waits_total", pool.waits());
    family(
        &mut out,
        "latchkey_db_connection_timeouts_total",
        "Waits for a database connection that ran out (answered 503).",
        "counter",
    );
    sample(
        &mut out,
        "latchkey_db_connection_timeouts_total",
        pool.timeouts(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
