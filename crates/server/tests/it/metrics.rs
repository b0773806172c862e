//! `/metrics` on its own listener: the text parses with the Prometheus client library's own
//! parser (Python's `prometheus_client`), and its counters move with the traffic. Counters
//! are the process's, shared by the tests running beside this one, so only growth is checked.

use latchkey_testkit::{TestApp, TestContext, interop};
use serde_json::Value;

use crate::fapi::{self, Page};
use crate::identity::sign_up;

async fn scrape(app: &TestApp) -> Value {
    let addr = app.metrics_addr.expect("metrics are on");
    let reply = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = reply.text().await.unwrap();
    let parsed = interop::python("prometheus-parse.py", &[], text.as_bytes()).await;
    serde_json::from_str(&parsed).unwrap()
}

/// The value of the sample `name` whose labels include `labels` (0 when there is none).
fn value(families: &Value, family: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    families[family]["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s[0] == name)
        .filter(|s| labels.iter().all(|(k, v)| s[1][*k] == *v))
        .map(|s| s[2].as_f64().unwrap())
        .sum()
}

pub async fn metrics_parse_with_the_prometheus_parser_and_move_with_the_traffic(ctx: TestContext) {
    let app = ctx
        .spawn_with(|config| config.metrics_addr = Some("127.0.0.1:0".parse().unwrap()))
        .await;
    // Not on the public listener.
    app.get("/metrics").expect(404).await;
    let before = scrape(&app).await;

    let mut browser = sign_up(&app, "metered@example.com").await;
    browser.get("/api/me", 200).await;
    browser.get("/api/me", 200).await;
    app.get("/api/me").expect(401).await;

    let after = scrape(&app).await;
    let requests = |families: &Value, status: &str| {
        value(
            families,
            "latchkey_http_request_duration_seconds",
            "latchkey_http_request_duration_seconds_count",
            &[("route", "/api/me"), ("method", "GET"), ("status", status)],
        )
    };
    assert!(requests(&after, "200") >= requests(&before, "200") + 2.0);
    assert!(requests(&after, "401") >= requests(&before, "401") + 1.0);
    assert_eq!(
        after["latchkey_http_request_duration_seconds"]["type"],
        "histogram"
    );
    let verified = |families: &Value, outcome: &str| {
        value(
            families,
            "latchkey_session_token_verifications",
            "latchkey_session_token_verifications_total",
            &[("outcome", outcome)],
        )
    };
    assert!(verified(&after, "verified") >= verified(&before, "verified") + 2.0);
    assert!(verified(&after, "signed_out") >= verified(&before, "signed_out") + 1.0);
    let gauge = |name: &str| value(&after, name, name, &[]);
    assert!(gauge("latchkey_active_sessions") >= 1.0);
    assert!(gauge("latchkey_db_connections_in_use") >= 0.0);
    // The sign-up's events went to the app's own receiver through the outbox.
    assert!(
        value(
            &after,
            "latchkey_webhook_deliveries",
            "latchkey_webhook_deliveries",
            &[]
        ) >= 1.0,
        "{after}"
    );
    for family in [
        "latchkey_outbox_backlog",
        "latchkey_outbox_oldest_pending_age_seconds",
        "latchkey_password_hasher_queue_depth",
        "latchkey_password_hasher_refusals",
        "latchkey_db_connection_waits",
        "latchkey_db_connection_timeouts",
        "latchkey_mail",
        "latchkey_webhook_receiver_batches",
        "latchkey_webhook_receiver_batched_events",
    ] {
        assert!(after[family].is_object(), "{family} is exported: {after}");
    }
    // No personal data in any label.
    assert!(!after.to_string().contains("metered@example.com"));
}

/// The Frontend API is a nested service (`_method` and trailing slashes are rewritten before
/// its routes match), yet its requests are counted by their route template, never their path.
pub async fn frontend_api_requests_are_counted_by_their_route_template(ctx: TestContext) {
    let app = ctx
        .spawn_with(|config| {
            config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
            config.fapi.allowed_origins = vec![fapi::APP.to_owned()];
            config.fapi.frontend_api_host = Some(fapi::FRONTEND_API_HOST.to_owned());
        })
        .await;
    let before = scrape(&app).await;

    let mut page = Page::new(&app);
    let created: Value = page
        .call(
            "POST",
            "/client/sign_ins",
            &[("identifier", "metered-fapi@example.com")],
            200,
        )
        .await
        .json();
    let id = created["response"]["id"].as_str().unwrap().to_owned();
    page.call("GET", &format!("/client/sign_ins/{id}"), &[], 200)
        .await;
    page.call(
        "POST",
        &format!("/client/sign_ins/{id}/attempt_first_factor"),
        &[("strategy", "web3_wallet")],
        422,
    )
    .await;
    // `_method`: on the wire a POST, routed as the PATCH it names.
    page.call("PATCH", "/client", &[], 200).await;
    // A trailing slash, as clerk-js names some collections.
    page.call("GET", "/me/email_addresses/", &[], 401).await;
    page.call("GET", "/no/such/route", &[], 404).await;

    let after = scrape(&app).await;
    let grew = |method: &str, route: &str, status: &str| {
        let count = |families: &Value| {
            value(
                families,
                "latchkey_http_request_duration_seconds",
                "latchkey_http_request_duration_seconds_count",
                &[("route", route), ("method", method), ("status", status)],
            )
        };
        count(&after) - count(&before)
    };
    for (method, route, status) in [
        ("POST", "/fapi/v1/client/sign_ins", "200"),
        ("GET", "/fapi/v1/client/sign_ins/{id}", "200"),
        (
            "POST",
            "/fapi/v1/client/sign_ins/{id}/attempt_first_factor",
            "422",
        ),
        ("POST", "/fapi/v1/client", "200"),
        ("GET", "/fapi/v1/me/email_addresses", "401"),
        ("GET", "unmatched", "404"),
    ] {
        assert!(
            grew(method, route, status) >= 1.0,
            "{method} {route} {status}: {after}"
        );
    }
    assert!(
        !after.to_string().contains(&id),
        "no label names the sign-in"
    );
}
