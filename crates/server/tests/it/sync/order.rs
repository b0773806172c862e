//! Histories delivered in every order, repeated, late, concurrently and for many users at
//! once: each user ends in its latest state, applied exactly once, never resurrected.

use std::collections::HashMap;

use latchkey_app::users::AppUser;
use latchkey_testkit::clerk::{deleted_event, user_event};
use latchkey_testkit::{Rng, TestContext};
use serde_json::{Value, json};

use super::{count, delivered, outcome_of, receiver};
use crate::support::run_on;

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

/// A burst delivered all at once, so the receiver commits its user events together: new users,
/// several versions of one user, copies of one message, and (on Postgres, which refuses NUL in
/// text) one event whose user id cannot be stored. Each request gets its own answer: the bad
/// event fails alone, every other one is applied exactly once, the user with many versions ends
/// at its newest, and nothing of the bad event is written.
pub async fn a_burst_is_committed_together_and_a_bad_event_fails_alone(ctx: TestContext) {
    let (app, signer) = receiver(&ctx).await;
    let base = 1_716_883_200_000_i64;
    let mut deliveries = Vec::new();
    for n in 0..40 {
        let user_id = format!("user_burst{n:02}");
        deliveries.push((
            format!("msg_burst_{n:02}"),
            user_event("user.created", &user_id, base, "burst@example.com", "Burst"),
            "applied",
        ));
    }
    for version in 0..6 {
        deliveries.push((
            format!("msg_versions_{version}"),
            user_event(
                "user.updated",
                "user_versions",
                base + version * 1_000,
                "versions@example.com",
                &format!("V{version}"),
            ),
            // Which versions apply depends on arrival order; checked below.
            "",
        ));
    }
    for _ in 0..4 {
        deliveries.push((
            "msg_copy".to_owned(),
            user_event(
                "user.created",
                "user_copy",
                base,
                "copy@example.com",
                "Copy",
            ),
            "",
        ));
    }
    let postgres = ctx.backend == latchkey_store::Backend::Postgres;
    if postgres {
        deliveries.push((
            "msg_bad".to_owned(),
            user_event("user.created", "user_\0bad", base, "bad@example.com", "Bad"),
            "",
        ));
    }
    let app = std::sync::Arc::new(app);
    let (batches_before, events_before) = latchkey_app::webhooks::group::totals();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(deliveries.len()));
    let mut handles = Vec::new();
    for (msg_id, body, expected) in deliveries {
        let (app, signer, start) = (app.clone(), signer.clone(), start.clone());
        handles.push(tokio::spawn(async move {
            start.wait().await;
            let reply = app.deliver(&signer, &msg_id, &body).send().await;
            let outcome = (reply.status == 200).then(|| {
                reply.json::<Value>()["outcome"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            });
            (msg_id, reply.status.as_u16(), outcome, expected)
        }));
    }
    let mut copies = HashMap::<String, usize>::new();
    let mut applied_versions = 0;
    for handle in handles {
        let (msg_id, status, outcome, expected) = handle.await.unwrap();
        if msg_id == "msg_bad" {
            assert!(status >= 500, "the bad event answered {status}");
            continue;
        }
        assert_eq!(status, 200, "{msg_id}");
        let outcome = outcome.unwrap();
        if msg_id == "msg_copy" {
            *copies.entry(outcome).or_default() += 1;
        } else if msg_id.starts_with("msg_versions_") {
            assert!(
                outcome == "applied" || outcome == "stale",
                "{msg_id}: {outcome}"
            );
            applied_versions += usize::from(outcome == "applied");
        } else {
            assert_eq!(outcome, expected, "{msg_id}");
        }
    }
    assert_eq!(copies.get("applied"), Some(&1), "{copies:?}");
    assert_eq!(copies.get("duplicate"), Some(&3), "{copies:?}");
    assert!(applied_versions >= 1);
    // Some of the burst shared a transaction. The counters are the process's, so tests running
    // beside this one count too: this can pass on their batches, never fail because of them.
    let (batches, events) = latchkey_app::webhooks::group::totals();
    assert!(
        events - events_before > batches - batches_before,
        "no two events were committed together: {} events in {} batches",
        events - events_before,
        batches - batches_before
    );
    // 40 new users, the one with versions, the copied one; never the bad one.
    assert_eq!(count(&app, "users").await, 42);
    let mut tx = app.db.begin_read().await.unwrap();
    let user = latchkey_app::users::find_by_clerk_id(&mut tx, "user_versions")
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(user.first_name.as_deref(), Some("V5"));
    assert_eq!(user.source_updated_at, base + 5_000);
    for version in 0..6 {
        let (outcome, _, attempts) = outcome_of(&app, &format!("msg_versions_{version}")).await;
        assert!(outcome == "applied" || outcome == "stale", "{outcome}");
        assert_eq!(attempts, 1);
    }
    assert_eq!(
        outcome_of(&app, "msg_burst_07").await,
        ("applied".to_owned(), None, 1)
    );
    // 40 + 6 + 1 messages recorded; the bad one's transaction wrote nothing.
    assert_eq!(count(&app, "clerk_webhook_events").await, 47);
}
