//! Deliveries through failures: retried until the receiver recovers, replayed on request,
//! not lost to a killed server, and never sent twice at once by two instances.

use std::collections::HashMap;
use std::time::Duration;

use latchkey_testkit::TestContext;
use latchkey_testkit::receiver::{Mode, TestReceiver};
use serde_json::Value;

use super::{app_with_receiver, create_user};
use crate::identity::PASSWORD;
use crate::support::{Served, eventually, finish, latchkey, run_on};
use latchkey_identity::webhooks::endpoints;
use latchkey_identity::webhooks::replay;

pub async fn a_failing_receiver_gets_every_event_once_it_recovers(ctx: TestContext) {
    let (app, mut receiver, endpoint) = app_with_receiver(&ctx, "200ms,200ms,300ms,300ms,400ms,400ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms", Duration::from_millis(300)).await;
    receiver.set_mode(Mode::Status(500));
    let mut expected = 0;
    for n in 0..4 {
        create_user(&app.identity, &format!("fail{n}@example.com")).await;
        expected += 1;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    receiver.set_mode(Mode::Hang {
        for_: Duration::from_secs(2),
    });
    tokio::time::sleep(Duration::from_millis(900)).await;
    receiver.close();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        receiver.accepted_ids().is_empty(),
        "nothing succeeded while failing: {:?}",
        receiver
            .arrivals()
            .iter()
            .map(|a| (a.id.clone(), a.answered))
            .collect::<Vec<_>>()
    );
    receiver.restart().await;
    receiver.set_mode(Mode::Ok {
        delay: Duration::ZERO,
    });
    receiver.wait_for(expected, Duration::from_secs(15)).await;
    let arrivals = receiver.arrivals();
    let statuses: std::collections::BTreeSet<u16> = arrivals.iter().map(|a| a.answered).collect();
    // 0: the sender gave up waiting (timed out) before an answer came.
    assert!(
        statuses.contains(&500) && statuses.contains(&0),
        "it saw errors and timeouts: {statuses:?}"
    );
    assert!(arrivals.iter().all(|a| a.verified));
    assert_eq!(receiver.max_parallel_per_message(), 1);
    // Every delivery ended in success, each after several attempts, all recorded. (The
    // receiver counts a message as soon as it answers; the sender records it a moment later.)
    let (identity, endpoint_id) = (&app.identity, endpoint.as_str());
    let deliveries = eventually(
        Duration::from_secs(5),
        "all recorded as delivered",
        move || async move {
            replay::deliveries(identity, endpoint_id, 100)
                .await
                .unwrap()
        },
        |deliveries| deliveries.iter().all(|d| d.status == "succeeded"),
    )
    .await;
    assert_eq!(deliveries.len(), expected);
    for delivery in &deliveries {
        assert_eq!(delivery.status, "succeeded", "{delivery:?}");
        assert!(delivery.attempts >= 3, "{delivery:?}");
    }
    let errors: Vec<String> = deliveries
        .iter()
        .flat_map(|d| d.last_error.clone())
        .collect();
    assert!(
        errors.is_empty(),
        "the last attempt of each succeeded: {errors:?}"
    );
    app.stop().await;
}

pub async fn failed_deliveries_are_replayed_on_request(ctx: TestContext) {
    let (app, receiver, endpoint) =
        app_with_receiver(&ctx, "100ms", Duration::from_millis(300)).await;
    receiver.set_mode(Mode::Status(503));
    let user_id = create_user(&app.identity, "replay@example.com").await;
    // Two attempts in all, then the delivery has failed for good.
    let (identity, endpoint_id) = (&app.identity, endpoint.as_str());
    eventually(
        Duration::from_secs(5),
        "failed for good",
        move || async move { replay::deliveries(identity, endpoint_id, 10).await.unwrap() },
        |deliveries| deliveries.iter().all(|d| d.status == "failed"),
    )
    .await;
    assert_eq!(receiver.arrivals().len(), 2);
    receiver.set_mode(Mode::Ok {
        delay: Duration::ZERO,
    });
    let done = run_on(
        &ctx,
        &app,
        &[
            "webhooks",
            "replay",
            "--endpoint",
            &endpoint,
            "--failed-only",
            "--since",
            "1h",
        ],
    )
    .await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stdout.contains("queued 1"), "{}", done.stdout);
    receiver.wait_for(1, Duration::from_secs(5)).await;
    let accepted = receiver
        .arrivals()
        .into_iter()
        .find(|a| a.answered == 200)
        .unwrap();
    let body: Value = serde_json::from_slice(&accepted.body).unwrap();
    assert_eq!(body["data"]["id"], user_id.as_str());
    // The same svix-id as the failed attempts: receivers dedupe on it.
    assert_eq!(accepted.id, receiver.arrivals()[0].id);
    app.stop().await;
}

pub async fn a_killed_server_loses_no_deliveries(ctx: TestContext) {
    let receiver = TestReceiver::start().await;
    receiver.set_mode(Mode::Ok {
        delay: Duration::from_millis(600),
    });
    let cwd = ctx.temp_dir();
    let data_dir = cwd.join("data");
    let database = ctx.fresh_database().await;
    let addr = format!("127.0.0.1:{}", latchkey_testkit::pgbouncer::free_port());
    let start = || {
        let mut command = latchkey(&cwd);
        command
            .args([
                "serve",
                "--addr",
                &addr,
                "--data-dir",
                data_dir.to_str().unwrap(),
            ])
            .env("DATABASE_URL", database.expose_for_child_process())
            .env("LATCHKEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
            .env("LATCHKEY_WEBHOOK_TIMEOUT", "1s")
            .env(
                "LATCHKEY_WEBHOOK_RETRY_SCHEDULE",
                "200ms,200ms,200ms,200ms,200ms",
            );
        Served::spawn(command, &addr)
    };
    let server = start().await;
    let webhooks = |args: &[&str]| {
        let mut command = latchkey(&cwd);
        command
            .args(["webhooks"])
            .args(args)
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .env("LATCHKEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true");
        command.env("DATABASE_URL", database.expose_for_child_process());
        finish(command)
    };
    let added = webhooks(&["add", "--url", &receiver.url(), "--json"]).await;
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    let added: Value = serde_json::from_str(&added.stdout).unwrap();
    receiver.trust(added["secret"].as_str().unwrap());

    // A burst: 60 events from 20 verified sign-ups (user.created, user.updated when the code
    // is entered, session.created), then SIGKILL while they are being delivered.
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    for n in 0..20 {
        let mut browser = latchkey_testkit::browser::Browser::new(&base);
        let email = format!("burst{n}@example.com");
        browser
            .submit(
                "/sign-up",
                "/sign-up",
                &[("email_address", &email), ("password", PASSWORD)],
                303,
            )
            .await;
        let mailbox = client
            .get(format!("{base}/dev/mailbox"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let code = latchkey_testkit::mailbox::parse(&mailbox)
            .into_iter()
            .find(|m| m.to == email)
            .and_then(|m| m.code())
            .unwrap();
        crate::identity::enter_code(&mut browser, &code, 303).await;
    }
    server.kill().await;
    let before = receiver.accepted_ids().len();
    assert!(
        before < 60,
        "the kill came mid-burst ({before} of 60 delivered)"
    );

    let server = start().await;
    receiver.wait_for(60, Duration::from_secs(40)).await;
    assert!(receiver.arrivals().iter().all(|a| a.verified));
    server.stop().await;
}

pub async fn two_instances_share_a_burst_without_sending_twice_at_once(ctx: TestContext) {
    let receiver = TestReceiver::start().await;
    receiver.set_mode(Mode::Ok {
        delay: Duration::from_millis(5),
    });
    let mut config = ctx.fresh_config().await;
    config.webhook_allow_private_networks = true;
    let first = ctx.start(config.clone()).await;
    let mut second_config = config.clone();
    second_config.data_dir = ctx.temp_dir();
    // Both instances share the database and so must share the master secret.
    std::fs::copy(
        config.data_dir.join("master.key"),
        second_config.data_dir.join("master.key"),
    )
    .unwrap();
    let second = ctx.start(second_config).await;
    let (_, secret) = endpoints::add_endpoint(
        &first.identity,
        &receiver.url(),
        &["user.created".to_owned()],
    )
    .await
    .unwrap();
    receiver.trust(&secret.expose());

    let mut tasks = Vec::new();
    for chunk in 0..10 {
        let identity = if chunk % 2 == 0 {
            first.identity.clone()
        } else {
            second.identity.clone()
        };
        tasks.push(tokio::spawn(async move {
            for n in 0..100 {
                create_user(&identity, &format!("many{chunk}x{n}@example.com")).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    receiver.wait_for(1000, Duration::from_secs(60)).await;
    assert_eq!(
        receiver.max_parallel_per_message(),
        1,
        "no message was ever in flight twice"
    );
    let arrivals = receiver.arrivals();
    assert!(arrivals.iter().all(|a| a.verified));
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for arrival in &arrivals {
        *per_id.entry(arrival.id.as_str()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 1000);
    let repeated = per_id.values().filter(|&&n| n > 1).count();
    assert_eq!(repeated, 0, "no message was sent twice at all");
    second.stop().await;
    first.stop().await;
}
