//! Signatures: forgeries are refused with nothing written, Svix's own library signs
//! deliveries that verify, and without a secret nothing is accepted.

use std::collections::HashMap;

use latchkey_testkit::TestContext;
use latchkey_testkit::clerk::{Signer, user_event};
use serde_json::Value;

use super::{count, post_with, receiver};

/// Requests a forger could send; each is refused and nothing is written.
pub async fn forgeries_are_refused_and_write_nothing(ctx: TestContext) {
    let (app, signer) = receiver(&ctx).await;
    let body = serde_json::to_vec(&user_event(
        "user.created",
        "user_forged",
        1,
        "f@example.com",
        "F",
    ))
    .unwrap();
    let now = latchkey_protocol::time::now_secs();
    let good = signer.headers_at("msg_forged", now, &body);
    let sign = |secret: &latchkey_protocol::webhook::SigningSecret, ts: i64, b: &[u8]| {
        secret.sign("msg_forged", ts, b)
    };
    let other = latchkey_protocol::webhook::SigningSecret::generate();
    let mut tampered = body.clone();
    let at = tampered.iter().position(|&b| b == b'F').unwrap();
    tampered[at] = b'G';

    type Headers<'a> = Vec<(&'a str, String)>;
    let cases: Vec<(&str, Headers, Vec<u8>, &str)> = vec![
        (
            "tampered body",
            good.to_vec(),
            tampered,
            "invalid_signature",
        ),
        (
            "wrong secret",
            vec![
                good[0].clone(),
                good[1].clone(),
                ("svix-signature", sign(&other, now, &body)),
            ],
            body.clone(),
            "invalid_signature",
        ),
        (
            "stale",
            vec![
                good[0].clone(),
                ("svix-timestamp", (now - 301).to_string()),
                ("svix-signature", sign(&signer.secret, now - 301, &body)),
            ],
            body.clone(),
            "timestamp_too_old",
        ),
        (
            "future",
            vec![
                good[0].clone(),
                // Well past the 5-minute tolerance: a loaded machine may take seconds to send.
                ("svix-timestamp", (now + 360).to_string()),
                ("svix-signature", sign(&signer.secret, now + 360, &body)),
            ],
            body.clone(),
            "timestamp_too_new",
        ),
        (
            "no id",
            vec![good[1].clone(), good[2].clone()],
            body.clone(),
            "missing_signature_header",
        ),
        (
            "no timestamp",
            vec![good[0].clone(), good[2].clone()],
            body.clone(),
            "missing_signature_header",
        ),
        (
            "no signature",
            vec![good[0].clone(), good[1].clone()],
            body.clone(),
            "missing_signature_header",
        ),
        (
            "not v1",
            vec![
                good[0].clone(),
                good[1].clone(),
                ("svix-signature", good[2].1.replacen("v1,", "v2,", 1)),
            ],
            body.clone(),
            "invalid_signature",
        ),
        ("unsigned", vec![], body.clone(), "missing_signature_header"),
        (
            "bad timestamp",
            vec![
                good[0].clone(),
                ("svix-timestamp", format!("{now}.5")),
                good[2].clone(),
            ],
            body.clone(),
            "invalid_timestamp",
        ),
    ];
    for (name, headers, bytes, code) in cases {
        let reply = post_with(&app, headers).body(bytes).expect(400).await;
        let error: Value = reply.json();
        assert_eq!(error["error"]["code"], code, "{name}: {error}");
        assert!(error["error"]["message"].is_string(), "{name}");
    }
    assert_eq!(count(&app, "users").await, 0);
    assert_eq!(count(&app, "clerk_webhook_events").await, 0);

    // The unbranded webhook-* headers of Standard Webhooks are accepted too.
    let unbranded = good
        .iter()
        .map(|(header, value)| (header.replace("svix-", "webhook-"), value));
    let receipt: Value = post_with(&app, unbranded)
        .body(body)
        .expect(200)
        .await
        .json();
    assert_eq!(receipt["outcome"], "applied");
    app.stop().await;
}

/// A delivery signed by Svix's own JavaScript library verifies and applies.
pub async fn deliveries_signed_by_the_official_svix_library_verify(ctx: TestContext) {
    let (app, signer) = receiver(&ctx).await;
    let body = serde_json::to_vec(&user_event(
        "user.created",
        "user_svixjs",
        5,
        "js@example.com",
        "Js",
    ))
    .unwrap();
    let now = latchkey_protocol::time::now_secs().to_string();
    let secret = signer.secret_text();
    let out =
        latchkey_testkit::interop::node("svix-sign.mjs", &[&secret, "msg_svixjs", &now], &body)
            .await;
    let headers: HashMap<String, String> = serde_json::from_str(&out).unwrap();
    let receipt: Value = post_with(&app, headers)
        .body(body.clone())
        .expect(200)
        .await
        .json();
    assert_eq!(receipt["outcome"], "applied");

    // And a signature from the library under another secret is refused.
    let other = Signer::new().secret_text();
    let out =
        latchkey_testkit::interop::node("svix-sign.mjs", &[&other, "msg_svixjs2", &now], &body)
            .await;
    let headers: HashMap<String, String> = serde_json::from_str(&out).unwrap();
    post_with(&app, headers).body(body).expect(400).await;
    app.stop().await;
}

pub async fn without_a_secret_the_receiver_answers_503_naming_the_variable(ctx: TestContext) {
    // Not the all-in-one run, whose own identity provides a secret.
    let app = ctx.spawn_with(|c| c.internal_webhook = false).await;
    let signer = Signer::new();
    let body = user_event("user.created", "user_x", 1, "x@example.com", "X");
    let error: Value = app
        .deliver(&signer, "msg_x", &body)
        .expect(503)
        .await
        .json();
    assert_eq!(error["error"]["code"], "webhook_secret_missing");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CLERK_WEBHOOK_SIGNING_SECRET")
    );
    app.stop().await;
}
