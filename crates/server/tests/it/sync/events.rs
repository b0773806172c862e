//! What a verified delivery may hold or meet: a body that is no event, other event types, an
//! oversized body, a NUL in a name, and a database that is out of reach.

use std::time::Duration;

use latchkey_testkit::clerk::{Signer, event, user_event};
use latchkey_testkit::{Backend, TestContext};
use serde_json::{Value, json};

use super::{count, delivered, outcome_of, receiver};
use crate::support::{spawn_behind_a_proxy, until_ok};

pub async fn a_signed_body_that_is_not_an_event_is_recorded_and_a_fixed_resend_succeeds(
    ctx: TestContext,
) {
    let (app, signer) = receiver(&ctx).await;
    let broken = json!({"type": "user.created", "object": "event", "data": {"id": "user_fixme", "email_addresses": []}});
    let error: Value = app
        .deliver(&signer, "msg_fixme", &broken)
        .expect(400)
        .await
        .json();
    assert_eq!(error["error"]["code"], "invalid_event");
    let (outcome, detail, _) = outcome_of(&app, "msg_fixme").await;
    assert_eq!(outcome, "failed");
    assert!(
        detail.unwrap().contains("missing field"),
        "the reason is recorded"
    );
    assert_eq!(count(&app, "users").await, 0);

    let fixed = user_event(
        "user.created",
        "user_fixme",
        10,
        "fixed@example.com",
        "Fixed",
    );
    assert_eq!(
        delivered(&app, &signer, "msg_fixme", &fixed).await,
        "applied"
    );
    assert_eq!(
        outcome_of(&app, "msg_fixme").await,
        ("applied".to_owned(), None, 2)
    );
    assert_eq!(count(&app, "users").await, 1);
    app.stop().await;
}

pub async fn other_event_types_are_recorded_and_ignored(ctx: TestContext) {
    let (app, signer) = receiver(&ctx).await;
    let org = event(
        "organization.created",
        json!({"id": "org_1", "object": "organization", "name": "Acme"}),
        1,
    );
    assert_eq!(delivered(&app, &signer, "msg_org", &org).await, "ignored");
    let session = event(
        "session.created",
        json!({"id": "sess_1", "object": "session", "user_id": "user_1", "status": "active"}),
        1,
    );
    assert_eq!(
        delivered(&app, &signer, "msg_session", &session).await,
        "ignored"
    );
    assert_eq!(outcome_of(&app, "msg_org").await.0, "ignored");
    assert_eq!(count(&app, "users").await, 0);
    app.stop().await;
}

pub async fn oversized_bodies_are_refused(ctx: TestContext) {
    let (app, signer) = receiver(&ctx).await;
    let mut body = user_event("user.created", "user_big", 1, "big@example.com", "Big");
    body["data"]["public_metadata"] = json!({"blob": "x".repeat(1024 * 1024)});
    let error: Value = app
        .deliver(&signer, "msg_big", &body)
        .expect(413)
        .await
        .json();
    assert_eq!(error["error"]["code"], "body_too_large");
    assert_eq!(count(&app, "clerk_webhook_events").await, 0);
    app.stop().await;
}

pub async fn a_nul_character_in_a_users_name_is_stored_replaced(ctx: TestContext) {
    let (app, signer) = receiver(&ctx).await;
    // Postgres text refuses NUL; a signed event must not fail to apply (and be retried) for it.
    let event = user_event(
        "user.created",
        "user_nul",
        1_716_883_200_000,
        "nul@example.com",
        "Nu\u{0}l",
    );
    assert_eq!(delivered(&app, &signer, "msg_nul", &event).await, "applied");
    let users = app.app_users().await;
    assert_eq!(users[0].first_name.as_deref(), Some("Nu\u{fffd}l"));
    app.stop().await;
}

/// With the database unreachable the sender is told to retry (503), and the retry applies.
pub async fn an_unreachable_database_answers_503_and_the_retry_applies(ctx: TestContext) {
    assert_eq!(ctx.backend, Backend::Postgres);
    let signer = Signer::new();
    let secret = signer.secret.clone();
    let (proxy, app) = spawn_behind_a_proxy(&ctx, |config| {
        config.clerk_webhook_signing_secrets = vec![secret];
    })
    .await;
    let body = user_event(
        "user.created",
        "user_retry",
        1,
        "retry@example.com",
        "Retry",
    );
    proxy.cut();
    let reply = app.deliver(&signer, "msg_retry", &body).expect(503).await;
    let error: Value = reply.json();
    assert_eq!(error["error"]["code"], "database_unavailable");
    assert!(
        !reply.text().contains("127.0.0.1"),
        "no internal detail leaks: {}",
        reply.text()
    );
    proxy.restore();
    let receipt: Value = until_ok(Duration::from_secs(10), || {
        app.deliver(&signer, "msg_retry", &body)
    })
    .await
    .json();
    assert_eq!(receipt["outcome"], "applied");
    assert_eq!(app.app_users().await.len(), 1);
    app.stop().await;
}
