//! Events reach their receivers: the app's own within two seconds, others signed as Svix
//! signs (with both secrets after a rotation), never private addresses unless allowed, and
//! odd answers recorded.

use std::collections::HashMap;
use std::time::Duration;

use latchkey_store::Row as _;
use latchkey_testkit::TestContext;
use latchkey_testkit::receiver::{Mode, TestReceiver};
use serde_json::Value;

use super::{app_with_receiver, create_user};
use crate::identity::sign_up;
use crate::support::{app_users_within_two_seconds, eventually, run_on};
use latchkey_identity::webhooks::endpoints;
use latchkey_identity::webhooks::replay;

pub async fn pages_changes_reach_the_apps_users_table_within_two_seconds(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = sign_up(&app, "loop@example.com").await;
    app_users_within_two_seconds(&app, "the sign-up", |users| {
        users
            .iter()
            .any(|u| u.email.as_deref() == Some("loop@example.com"))
    })
    .await;

    browser
        .submit(
            "/user",
            "/user/profile",
            &[("first_name", "Renamed"), ("last_name", "Person")],
            303,
        )
        .await;
    app_users_within_two_seconds(&app, "the profile change", |users| {
        users
            .iter()
            .any(|u| u.first_name.as_deref() == Some("Renamed"))
    })
    .await;

    browser
        .submit("/user", "/user/delete", &[("confirmation", "DELETE")], 303)
        .await;
    app_users_within_two_seconds(&app, "the deletion", |users| {
        users.len() == 1 && users[0].deleted_at.is_some() && users[0].email.is_none()
    })
    .await;

    // The operator's view agrees.
    let done = run_on(&ctx, &app, &["app", "users", "--json"]).await;
    let listed: Vec<Value> = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["deleted_at"].is_i64());
    app.stop().await;
}

pub async fn deliveries_verify_with_svixs_own_verifier(ctx: TestContext) {
    let receiver = TestReceiver::start().await;
    let app = ctx
        .spawn_with(|c| c.webhook_allow_private_networks = true)
        .await;
    let (_, secret) =
        endpoints::add_endpoint(&app.identity, &receiver.url(), &["user.created".to_owned()])
            .await
            .unwrap();
    receiver.trust(&secret.expose());
    sign_up(&app, "svix@example.com").await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    let arrival = receiver.arrivals().into_iter().next().unwrap();
    assert!(arrival.verified, "our own verifier accepts it");
    assert_eq!(arrival.headers["content-type"], "application/json");
    let headers: HashMap<&str, &str> = ["svix-id", "svix-timestamp", "svix-signature"]
        .into_iter()
        .map(|name| (name, arrival.headers[name].to_str().unwrap()))
        .collect();
    let input = serde_json::json!({"headers": headers, "body": String::from_utf8(arrival.body.to_vec()).unwrap()});
    let out = latchkey_testkit::interop::node(
        "svix-verify.mjs",
        &[&secret.expose()],
        input.to_string().as_bytes(),
    )
    .await;
    let verified: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    let event = &verified["payload"];
    assert_eq!(event["type"], "user.created");
    assert_eq!(event["object"], "event");
    assert_eq!(event["instance_id"], app.identity.instance_id());
    assert!(
        event["timestamp"].as_i64().unwrap() > 1_700_000_000_000,
        "milliseconds"
    );
    assert_eq!(event["data"]["object"], "user");
    assert_eq!(
        event["data"]["email_addresses"][0]["email_address"],
        "svix@example.com"
    );
    assert_eq!(
        event["event_attributes"]["http_request"]["client_ip"],
        "127.0.0.1"
    );
    assert!(headers["svix-id"].starts_with("msg_"));
    // Only the subscribed type arrived (sign-up also emitted session.created).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.arrivals().len(), 1);

    // After a rotation both secrets sign, so receivers can switch at their pace.
    let endpoints = endpoints::list_endpoints(&app.identity).await.unwrap();
    let external = endpoints.iter().find(|e| !e.internal).unwrap();
    let new_secret = endpoints::rotate_endpoint_secret(&app.identity, &external.id)
        .await
        .unwrap();
    sign_up(&app, "svix2@example.com").await;
    receiver.wait_for(2, Duration::from_secs(5)).await;
    let second = receiver.arrivals().into_iter().last().unwrap();
    assert_eq!(
        second.headers["svix-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    receiver.trust(&new_secret.expose());
    let latest = receiver.arrivals().into_iter().last().unwrap();
    let only_new = latchkey_protocol::webhook::Verifier::new(vec![new_secret]);
    let h = latchkey_protocol::webhook::WebhookHeaders::from_lookup(|n| {
        latest.headers.get(n).map(|v| v.as_bytes())
    })
    .unwrap();
    only_new
        .verify(&h, &latest.body, latchkey_protocol::time::now_secs())
        .unwrap();
    app.stop().await;
}

pub async fn private_addresses_are_refused_unless_allowed(ctx: TestContext) {
    let receiver = TestReceiver::start().await;
    // Added while private networks were allowed, then the setting is turned off: the check
    // at delivery still refuses it (adding it now would be refused at once).
    let mut config = ctx.fresh_config().await;
    config.webhook_retry_schedule = vec![Duration::from_millis(100)];
    config.webhook_allow_private_networks = true;
    let allowed = ctx.start(config.clone()).await;
    let (endpoint, _) = endpoints::add_endpoint(&allowed.identity, &receiver.url(), &[])
        .await
        .unwrap();
    allowed.stop().await;
    config.webhook_allow_private_networks = false;
    let app = ctx.start(config).await;
    assert!(matches!(
        endpoints::add_endpoint(&app.identity, &receiver.url(), &[]).await,
        Err(latchkey_identity::webhooks::EndpointError::PrivateUrl(_))
    ));
    create_user(&app.identity, "ssrf@example.com").await;
    let (identity, endpoint_id) = (&app.identity, endpoint.id.as_str());
    let deliveries = eventually(
        Duration::from_secs(5),
        "failed for good",
        move || async move { replay::deliveries(identity, endpoint_id, 10).await.unwrap() },
        |deliveries| !deliveries.is_empty() && deliveries.iter().all(|d| d.status == "failed"),
    )
    .await;
    assert!(
        deliveries[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("refused"),
        "{deliveries:?}"
    );
    assert!(
        receiver.arrivals().is_empty(),
        "nothing reached the loopback address"
    );
    // The app's own receiver, on loopback too, is always allowed.
    assert_eq!(app.app_users().await.len(), 1);
    app.stop().await;
}

pub async fn a_receiver_answering_with_nul_bytes_is_recorded(ctx: TestContext) {
    let (app, receiver, endpoint) = app_with_receiver(&ctx, "5s", Duration::from_secs(2)).await;
    // A UTF-16 "OK": valid UTF-8 with NUL bytes, which Postgres text refuses.
    receiver.set_mode(Mode::Reply {
        status: 200,
        body: b"O\0K\0",
    });
    let user_id = create_user(&app.identity, "nul@example.com").await;
    let (identity, endpoint_id) = (&app.identity, endpoint.as_str());
    let deliveries = eventually(
        Duration::from_secs(5),
        "recorded as delivered",
        move || async move { replay::deliveries(identity, endpoint_id, 10).await.unwrap() },
        |deliveries| deliveries.iter().any(|d| d.status == "succeeded"),
    )
    .await;
    let done = deliveries.iter().find(|d| d.status == "succeeded").unwrap();
    assert_eq!((done.attempts, done.last_status), (1, Some(200)));
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx.query("SELECT response_body FROM identity_webhook_attempts WHERE endpoint_id = $1");
    let q = q.bind(&endpoint);
    let rows = tx.fetch_all(q).await.unwrap();
    tx.commit().await.unwrap();
    let bodies: Vec<String> = rows
        .iter()
        .map(|r| r.try_get("response_body").unwrap())
        .collect();
    assert_eq!(bodies, vec!["O\u{fffd}K\u{fffd}".to_owned()]);
    assert_eq!(receiver.arrivals().len(), 1, "sent once: {user_id}");
    app.stop().await;
}
