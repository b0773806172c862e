//! The Clerk webhook receiver: verified, exactly once, in order, never resurrecting.

use std::collections::HashMap;
use std::time::Duration;

use latchkey_app::users::AppUser;
use latchkey_store::Row as _;
use latchkey_testkit::clerk::{Signer, deleted_event, event, user_event};
use latchkey_testkit::{Backend, Call, Rng, TestApp, TestContext};
use serde_json::{Value, json};

use crate::support::{run_on, spawn_behind_a_proxy, until_ok};

async fn receiver(ctx: &TestContext) -> (TestApp, Signer) {
    let signer = Signer::new();
    let secret = signer.secret.clone();
    let app = ctx
        .spawn_with(|config| config.clerk_webhook_signing_secrets = vec![secret])
        .await;
    (app, signer)
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx.query_owned(format!("SELECT count(*) AS n FROM {table}"));
    let n = tx.fetch_one(q).await.unwrap().try_get("n").unwrap();
    tx.commit().await.unwrap();
    n
}

async fn outcome_of(app: &TestApp, svix_id: &str) -> (String, Option<String>, i64) {
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx
        .query("SELECT outcome, detail, attempts FROM clerk_webhook_events WHERE svix_id = $1")
        .bind(svix_id);
    let row = tx.fetch_one(q).await.unwrap();
    (
        row.try_get("outcome").unwrap(),
        row.try_get("detail").unwrap(),
        row.try_get("attempts").unwrap(),
    )
}

/// Delivers `body` as message `msg_id`, expecting 200; the outcome the receipt names.
async fn delivered(app: &TestApp, signer: &Signer, msg_id: &str, body: &Value) -> String {
    let receipt: Value = app.deliver(signer, msg_id, body).expect(200).await.json();
    receipt["outcome"].as_str().unwrap().to_owned()
}

/// A POST to the Clerk webhook receiver with `headers`.
fn post_with(
    app: &TestApp,
    headers: impl IntoIterator<Item = (impl AsRef<str>, impl AsRef<str>)>,
) -> Call {
    let mut call = app.post("/api/webhooks/clerk");
    for (name, value) in headers {
        call = call.header(name.as_ref(), value.as_ref());
    }
    call
}

/// One version of a user's history.
#[derive(Debug, Clone)]
struct Step {
    msg_id: String,
    body: Value,
}

/// created v1, updated v2, updated v3 and, if `delete`, deleted: the steps of one user.
fn history(user_id: &str, delete: bool) -> Vec<Step> {
    let base = 1_716_883_200_000_i64;
    let mut steps = vec![
        Step {
            msg_id: format!("msg_{user_id}_1"),
            body: user_event("user.created", user_id, base, "one@example.com", "One"),
        },
        Step {
            msg_id: format!("msg_{user_id}_2"),
            body: user_event(
                "user.updated",
                user_id,
                base + 1_000,
                "two@example.com",
                "Two",
            ),
        },
        Step {
            msg_id: format!("msg_{user_id}_3"),
            body: user_event(
                "user.updated",
                user_id,
                base + 2_000,
                "three@example.com",
                "Three",
            ),
        },
    ];
    if delete {
        steps.push(Step {
            msg_id: format!("msg_{user_id}_4"),
            body: deleted_event(user_id, base + 3_000),
        });
    }
    steps
}

fn assert_latest(user: &AppUser, deleted: bool) {
    if deleted {
        assert!(
            user.deleted_at.is_some(),
            "{} is a tombstone",
            user.clerk_user_id
        );
        assert_eq!(
            (&user.email, &user.first_name, &user.last_name),
            (&None, &None, &None),
            "{user:?}"
        );
        assert_eq!(
            (&user.username, &user.image_url),
            (&None, &None),
            "{user:?}"
        );
        assert_eq!(user.public_metadata, json!({}));
    } else {
        assert_eq!(user.deleted_at, None, "{user:?}");
        assert_eq!(
            user.email.as_deref(),
            Some("three@example.com"),
            "primary email, not index 0: {user:?}"
        );
        assert_eq!(user.first_name.as_deref(), Some("Three"));
        assert_eq!(user.last_name.as_deref(), Some("Tester"));
        assert_eq!(user.public_metadata, json!({"plan": "three"}));
        assert_eq!(user.source_updated_at, 1_716_883_200_000 + 2_000);
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut all = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut p = rest.clone();
            p.insert(at, n - 1);
            all.push(p);
        }
    }
    all
}

pub async fn every_order_of_a_history_converges(ctx: TestContext) {
    let (app, signer) = receiver(&ctx).await;
    let mut expected = HashMap::new();
    for delete in [true, false] {
        let len = if delete { 4 } else { 3 };
        for (n, order) in permutations(len).into_iter().enumerate() {
            let user_id = format!("user_perm{}x{n}", u8::from(delete));
            let steps = history(&user_id, delete);
            for (i, &index) in order.iter().enumerate() {
                let step = &steps[index];
                app.deliver(&signer, &step.msg_id, &step.body)
                    .expect(200)
                    .await;
                // Redeliver an earlier message now and then, as Svix retries do.
                if i > 0 && (n + i) % 3 == 0 {
                    let again = &steps[order[i - 1]];
                    assert_eq!(
                        delivered(&app, &signer, &again.msg_id, &again.body).await,
                        "duplicate"
                    );
                }
            }
            expected.insert(user_id, delete);
        }
    }
    let users = app.app_users().await;
    assert_eq!(users.len(), expected.len(), "one row per user");
    for user in &users {
        assert_latest(user, expected[&user.clerk_user_id]);
    }
    app.stop().await;
}

pub async fn a_late_update_never_resurrects_a_deleted_user(ctx: TestContext) {
    let (app, signer) = receiver(&ctx).await;
    let steps = history("user_late", true);
    assert_eq!(
        delivered(&app, &signer, &steps[3].msg_id, &steps[3].body).await,
        "applied",
        "deleting an unknown user records a tombstone"
    );
    for step in &steps[..3] {
        assert_eq!(
            delivered(&app, &signer, &step.msg_id, &step.body).await,
            "stale"
        );
    }
    // Even a version far in the future cannot bring the id back.
    let future = user_event(
        "user.updated",
        "user_late",
        4_000_000_000_000,
        "back@example.com",
        "Back",
    );
    app.deliver(&signer, "msg_future", &future)
        .expect(200)
        .await;
    let users = app.app_users().await;
    assert_eq!(users.len(), 1);
    assert_latest(&users[0], true);
    app.stop().await;
}

pub async fn an_update_for_an_unknown_user_inserts_it_and_older_versions_change_nothing(
    ctx: TestContext,
) {
    let (app, signer) = receiver(&ctx).await;
    let steps = history("user_upd", false);
    assert_eq!(
        delivered(&app, &signer, &steps[2].msg_id, &steps[2].body).await,
        "applied"
    );
    let before = app.app_users().await;
    // The same version again under a new message id is not newer: nothing changes.
    let same = user_event(
        "user.updated",
        "user_upd",
        1_716_883_200_000 + 2_000,
        "other@example.com",
        "Other",
    );
    assert_eq!(
        delivered(&app, &signer, "msg_same_version", &same).await,
        "stale"
    );
    for step in &steps[..2] {
        assert_eq!(
            delivered(&app, &signer, &step.msg_id, &step.body).await,
            "stale"
        );
    }
    assert_eq!(app.app_users().await, before);
    assert_latest(&before[0], false);
    app.stop().await;
}

pub async fn concurrent_copies_of_one_message_apply_once(ctx: TestContext) {
    let (app, signer) = receiver(&ctx).await;
    let body = user_event(
        "user.created",
        "user_copies",
        1_716_883_200_000,
        "copy@example.com",
        "Copy",
    );
    let app = std::sync::Arc::new(app);
    let mut handles = Vec::new();
    for _ in 0..32 {
        let (app, signer, body) = (app.clone(), signer.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            delivered(&app, &signer, "msg_copies", &body).await
        }));
    }
    let mut outcomes = HashMap::<String, usize>::new();
    for handle in handles {
        *outcomes.entry(handle.await.unwrap()).or_default() += 1;
    }
    assert_eq!(outcomes.get("applied"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.get("duplicate"), Some(&31), "{outcomes:?}");
    assert_eq!(count(&app, "users").await, 1);
    assert_eq!(
        outcome_of(&app, "msg_copies").await,
        ("applied".to_owned(), None, 1)
    );
}

/// Many users' shuffled, duplicated histories, delivered concurrently; then the operator's
/// `latchkey app users --json` shows each user's latest state.
pub async fn many_users_in_parallel_end_in_their_latest_state(ctx: TestContext) {
    let (app, signer) = receiver(&ctx).await;
    let mut rng = Rng::new(0x5eed_1a7c);
    let mut deliveries = Vec::new();
    let mut expected = HashMap::new();
    for n in 0..60 {
        let user_id = format!("user_many{n:03}");
        let delete = n % 4 == 0;
        let steps = history(&user_id, delete);
        deliveries.extend(steps.iter().cloned());
        // A third of the messages are delivered twice.
        deliveries.extend(steps.iter().filter(|_| rng.below(3) == 0).cloned());
        expected.insert(user_id, delete);
    }
    rng.shuffle(&mut deliveries);
    let app = std::sync::Arc::new(app);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(deliveries));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (app, signer, queue) = (app.clone(), signer.clone(), queue.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(step) = queue.lock().unwrap().pop() else {
                    break;
                };
                app.deliver(&signer, &step.msg_id, &step.body)
                    .expect(200)
                    .await;
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }

    let done = run_on(&ctx, &app, &["app", "users", "--json"]).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let listed: Vec<Value> = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(listed.len(), expected.len());
    for row in &listed {
        for key in [
            "id",
            "clerk_user_id",
            "email",
            "first_name",
            "last_name",
            "username",
            "image_url",
            "public_metadata",
            "source_updated_at",
            "created_at",
            "updated_at",
            "deleted_at",
        ] {
            assert!(
                row.get(key).is_some(),
                "`app users --json` has {key}: {row}"
            );
        }
        assert!(row["id"].as_str().unwrap().starts_with("usr_"));
        let clerk_id = row["clerk_user_id"].as_str().unwrap();
        if expected[clerk_id] {
            assert!(
                row["deleted_at"].is_i64() && row["email"].is_null(),
                "{row}"
            );
        } else {
            assert_eq!(row["email"], "three@example.com", "{row}");
            assert_eq!(row["first_name"], "Three", "{row}");
            assert!(row["deleted_at"].is_null(), "{row}");
        }
    }
    let table = run_on(&ctx, &app, &["app", "users"]).await;
    assert_eq!(table.code, Some(0));
    assert!(
        table.stdout.contains("CLERK USER ID") && table.stdout.contains("60 users"),
        "{}",
        table.stdout
    );
}

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
                ("svix-timestamp", (now + 301).to_string()),
                ("svix-signature", sign(&signer.secret, now + 301, &body)),
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
