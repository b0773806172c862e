//! Dual-running with Clerk until the cutover: with `LATCHKEY_IDENTITY_SHADOW`, Clerk's user
//! webhooks keep the identity's accounts current through the same verified receiver, once and
//! in order; `latchkey sync check --issuer clerk --against identity` reports what differs and
//! repairs it; and the export's authenticator-app secrets keep working after the import.

use latchkey_identity::flows::admin::{self, CreateUser};
use latchkey_identity::users::UserRecord;
use latchkey_testkit::clerk::{Signer, deleted_event, event, user, user_event};
use latchkey_testkit::fake_clerk::FakeClerk;
use latchkey_testkit::{TestApp, TestContext};
use serde_json::{Value, json};

use crate::app::clerk_settings;
use crate::support::{Finished, finish, latchkey_on};

async fn shadowed(ctx: &TestContext, fake: &FakeClerk, shadow: bool) -> (TestApp, Signer) {
    let signer = Signer::new();
    let secret = signer.secret.clone();
    let mut clerk = clerk_settings(fake);
    clerk.identity_shadow = shadow;
    let app = ctx
        .spawn_with(|config| {
            config.clerk = Some(clerk);
            config.clerk_webhook_signing_secrets = vec![secret];
        })
        .await;
    (app, signer)
}

async fn deliver(app: &TestApp, signer: &Signer, msg_id: &str, body: &Value) -> String {
    let reply: Value = app.deliver(signer, msg_id, body).expect(200).await.json();
    reply["outcome"].as_str().unwrap().to_owned()
}

async fn account(app: &TestApp, id: &str) -> Option<UserRecord> {
    admin::find_user(&app.identity, id).await.unwrap()
}

fn addresses(account: &UserRecord) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = account
        .emails
        .iter()
        .map(|e| (e.email_address.clone(), e.verification_status.clone()))
        .collect();
    all.sort();
    all
}

fn primary(account: &UserRecord) -> Option<String> {
    account.primary_email().map(|e| e.email_address.clone())
}

async fn detail(app: &TestApp, msg_id: &str) -> Option<String> {
    use latchkey_store::Row as _;
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx
        .query("SELECT detail FROM clerk_webhook_events WHERE svix_id = $1")
        .bind(msg_id);
    let row = tx.fetch_one(q).await.unwrap();
    tx.commit().await.unwrap();
    row.try_get("detail").unwrap()
}

pub async fn shadow_mode_keeps_the_identitys_accounts_current_from_clerk_webhooks(
    ctx: TestContext,
) {
    let fake = FakeClerk::start(0, None).await;
    let (app, signer) = shadowed(&ctx, &fake, true).await;
    let id = "user_2shadow";

    let created = user_event("user.created", id, 1_000, "sam@example.com", "Sam");
    assert_eq!(deliver(&app, &signer, "msg_1", &created).await, "applied");
    let sam = account(&app, id)
        .await
        .expect("the identity has Clerk's user");
    assert_eq!(sam.first_name.as_deref(), Some("Sam"));
    assert_eq!(sam.username.as_deref(), Some("u_2shadow"));
    assert_eq!(sam.public_metadata, json!({"plan": "sam"}));
    assert_eq!(
        addresses(&sam),
        [
            ("old-2shadow@example.com".to_owned(), "verified".to_owned()),
            ("sam@example.com".to_owned(), "verified".to_owned()),
        ]
    );
    assert_eq!(primary(&sam).as_deref(), Some("sam@example.com"));
    assert_eq!(app.app_users().await.len(), 1, "the app applied it too");

    // A newer version: renamed, the old address removed at Clerk, a new unverified one, banned.
    let mut newer = user(id, 2_000, "sam@example.com", "Samuel");
    let emails = newer["email_addresses"].as_array_mut().unwrap();
    emails.remove(0);
    emails.push(
        json!({"id": "idn_new", "object": "email_address", "email_address": "sam@new.example",
        "verification": {"status": "unverified", "strategy": "email_code"}, "linked_to": []}),
    );
    newer["banned"] = json!(true);
    assert_eq!(
        deliver(&app, &signer, "msg_2", &event("user.updated", newer, 2_050)).await,
        "applied"
    );
    let sam = account(&app, id).await.unwrap();
    assert_eq!(sam.first_name.as_deref(), Some("Samuel"));
    assert!(sam.banned_at.is_some());
    assert_eq!(
        addresses(&sam),
        [
            ("sam@example.com".to_owned(), "verified".to_owned()),
            ("sam@new.example".to_owned(), "unverified".to_owned()),
        ]
    );

    // The older version arriving late, and a redelivery, change nothing.
    let late = user_event("user.updated", id, 1_500, "sam@example.com", "Stale");
    assert_eq!(deliver(&app, &signer, "msg_late", &late).await, "stale");
    assert_eq!(deliver(&app, &signer, "msg_1", &created).await, "duplicate");
    let after = account(&app, id).await.unwrap();
    assert_eq!(after.first_name.as_deref(), Some("Samuel"));
    assert_eq!(after.updated_at, sam.updated_at);

    // An account the identity cannot hold (its address is another account's here) does not
    // stop the app: the app applies it, nothing of it is written to the identity, and the
    // refusal is on the message's record.
    admin::create_user(
        &app.identity,
        CreateUser {
            email_address: Some("taken@example.com".to_owned()),
            ..CreateUser::default()
        },
    )
    .await
    .unwrap();
    let clash = user_event(
        "user.created",
        "user_2clash",
        3_000,
        "taken@example.com",
        "Clash",
    );
    assert_eq!(deliver(&app, &signer, "msg_clash", &clash).await, "applied");
    assert!(account(&app, "user_2clash").await.is_none());
    assert!(
        app.app_users()
            .await
            .iter()
            .any(|u| u.clerk_user_id == "user_2clash")
    );
    let why = detail(&app, "msg_clash").await.unwrap();
    assert!(why.starts_with("identity shadow: "), "{why}");

    // Deleted at Clerk: gone here too.
    assert_eq!(
        deliver(&app, &signer, "msg_del", &deleted_event(id, 4_000)).await,
        "applied"
    );
    assert!(account(&app, id).await.is_none());

    // Without shadow mode the identity keeps no copy.
    let (plain, signer) = shadowed(&ctx, &fake, false).await;
    let other = user_event(
        "user.created",
        "user_2plain",
        1_000,
        "plain@example.com",
        "P",
    );
    assert_eq!(deliver(&plain, &signer, "msg_p", &other).await, "applied");
    assert!(account(&plain, "user_2plain").await.is_none());
}

async fn check(ctx: &TestContext, app: &TestApp, fake: &FakeClerk, args: &[&str]) -> Finished {
    let mut command = latchkey_on(
        ctx,
        app,
        &[&["sync", "check", "--against", "identity"], args].concat(),
    );
    command
        .env("CLERK_SECRET_KEY", &fake.secret_key)
        .env("CLERK_API_URL", &fake.url);
    finish(command).await
}

pub async fn sync_check_against_the_identity_reports_and_repairs_what_differs_from_clerk(
    ctx: TestContext,
) {
    let fake = FakeClerk::start(0, None).await;
    for n in 1..=3 {
        fake.add_user(&format!("user_2c{n}"), &format!("c{n}@example.com"));
    }
    let app = ctx.spawn().await;

    let first = check(&ctx, &app, &fake, &["--json"]).await;
    assert_eq!(first.code, Some(4), "drift: {}", first.stderr);
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(report["checked"], 3);
    assert_eq!(
        report["missing"],
        json!(["user_2c1", "user_2c2", "user_2c3"])
    );

    let fixed = check(&ctx, &app, &fake, &["--fix"]).await;
    assert_eq!(fixed.code, Some(0), "{}{}", fixed.stdout, fixed.stderr);
    assert!(
        fixed.stdout.contains("3 missing from the identity"),
        "{}",
        fixed.stdout
    );
    let clean = check(&ctx, &app, &fake, &[]).await;
    assert_eq!(clean.code, Some(0), "{}", clean.stdout);
    assert!(
        clean
            .stdout
            .contains("0 missing from the identity, 0 stale, 0 no longer")
    );

    // Renamed at Clerk, and an account here that Clerk does not have.
    fake.rename("user_2c2", "Renamed");
    admin::create_user(
        &app.identity,
        CreateUser {
            email_address: Some("only-here@example.com".to_owned()),
            ..CreateUser::default()
        },
    )
    .await
    .unwrap();
    let drift = check(&ctx, &app, &fake, &[]).await;
    assert_eq!(drift.code, Some(4), "{}", drift.stdout);
    assert!(
        drift.stdout.contains("stale: user_2c2 (first_name)"),
        "{}",
        drift.stdout
    );
    assert!(
        drift.stdout.contains("1 no longer at the issuer"),
        "{}",
        drift.stdout
    );

    let fixed = check(&ctx, &app, &fake, &["--fix", "--json"]).await;
    assert_eq!(fixed.code, Some(0), "{}", fixed.stderr);
    assert_eq!(
        account(&app, "user_2c2")
            .await
            .unwrap()
            .first_name
            .as_deref(),
        Some("Renamed")
    );
    let clean = check(&ctx, &app, &fake, &["--json"]).await;
    assert_eq!(clean.code, Some(0), "{}", clean.stdout);

    // The identity against itself means nothing.
    let mut command = latchkey_on(
        &ctx,
        &app,
        &[
            "sync",
            "check",
            "--issuer",
            "identity",
            "--against",
            "identity",
        ],
    );
    command.env("CLERK_SECRET_KEY", &fake.secret_key);
    let refused = finish(command).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--issuer clerk"),
        "{}",
        refused.stderr
    );
}

pub async fn shadow_mode_needs_clerk_and_its_webhook_secret(ctx: TestContext) {
    let app = ctx.spawn().await;
    let start = |env: &'static [(&'static str, &'static str)]| {
        let mut command = latchkey_on(&ctx, &app, &["migrate"]);
        command.envs(env.iter().copied());
        finish(command)
    };
    let alone = start(&[("LATCHKEY_IDENTITY_SHADOW", "true")]).await;
    assert_eq!(alone.code, Some(2), "{}", alone.stderr);
    assert!(
        alone.stderr.contains("LATCHKEY_IDENTITY_SHADOW") && alone.stderr.contains("Clerk's keys"),
        "{}",
        alone.stderr
    );
    let no_secret = start(&[
        ("LATCHKEY_IDENTITY_SHADOW", "true"),
        ("CLERK_SECRET_KEY", "sk_test_shadow"),
    ])
    .await;
    assert_eq!(no_secret.code, Some(2), "{}", no_secret.stderr);
    assert!(
        no_secret.stderr.contains("CLERK_WEBHOOK_SIGNING_SECRET"),
        "{}",
        no_secret.stderr
    );
}
