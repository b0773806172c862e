//! `/metrics` on its own listener: the text parses with the Prometheus client library's own
//! parser (Python's `prometheus_client`), and its counters move with the traffic. Counters
//! are the process's, shared by the tests running beside this one, so only growth is checked.

use latchkey_testkit::{TestApp, TestContext, interop};
use serde_json::Value;

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
