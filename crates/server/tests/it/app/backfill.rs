//! `latchkey sync`: a backfill from Clerk (a local stand-in) of ten thousand users with
//! drift found and repaired, and the same against latchkey's own identity part.

use std::time::{Duration, Instant};

use latchkey_testkit::fake_clerk::FakeClerk;
use latchkey_testkit::{TestApp, TestContext};
use serde_json::Value;

use super::clerk_settings;
use crate::support::{finish, latchkey_on, run_on};
use latchkey_identity::flows::admin;

async fn sync(
    app: &TestApp,
    ctx: &TestContext,
    fake: &FakeClerk,
    args: &[&str],
) -> crate::support::Finished {
    let mut command = latchkey_on(ctx, app, &[&["sync"], args].concat());
    command
        .env("CLERK_SECRET_KEY", &fake.secret_key)
        .env("CLERK_API_URL", &fake.url);
    finish(command).await
}

pub async fn a_clerk_backfill_of_ten_thousand_users_leaves_no_drift(ctx: TestContext) {
    let fake = FakeClerk::start(10_000, Some(7)).await;
    let clerk = clerk_settings(&fake);
    let app = ctx.spawn_with(|c| c.clerk = Some(clerk)).await;
    let started = Instant::now();
    let backfill = sync(&app, &ctx, &fake, &["backfill"]).await;
    assert_eq!(backfill.code, Some(0), "{}", backfill.stderr);
    assert!(
        backfill
            .stdout
            .contains("10000 users from 21 pages: 10000 inserted"),
        "{}",
        backfill.stdout
    );
    assert!(
        fake.rate_limited() > 0,
        "the stand-in rate limited the backfill, which waited"
    );
    let took = started.elapsed();
    let check = sync(&app, &ctx, &fake, &["check"]).await;
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains(
            "10000 issuer users; 0 missing from the app, 0 stale, 0 no longer at the issuer"
        ),
        "{}",
        check.stdout
    );
    assert!(
        took < Duration::from_secs(120),
        "the backfill took {took:?}"
    );

    // A user created after the backfill gets a row on the first request of its session.
    fake.add_user("user_latecomer", "late@example.com");
    let token = fake.mint("user_latecomer", None);
    let me: Value = app.get("/api/me").bearer(&token).expect(200).await.json();
    assert_eq!(me["user"]["clerk_user_id"], "user_latecomer");
    assert_eq!(me["user"]["email"], "late@example.com");

    // Drift is found, reported with a non-zero exit, and repaired.
    fake.rename("user_fake000005", "Changed");
    fake.remove("user_fake000006");
    fake.add_user("user_unsynced", "unsynced@example.com");
    let check = sync(&app, &ctx, &fake, &["check"]).await;
    assert_eq!(check.code, Some(4), "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("1 missing from the app, 1 stale, 1 no longer at the issuer"),
        "{}",
        check.stdout
    );
    let fixed = sync(&app, &ctx, &fake, &["check", "--fix"]).await;
    assert_eq!(fixed.code, Some(0), "{}", fixed.stdout);
    let check = sync(&app, &ctx, &fake, &["check", "--json"]).await;
    assert_eq!(check.code, Some(0), "{}", check.stdout);
    let rows = app.app_users().await;
    assert!(
        rows.iter()
            .any(|u| u.clerk_user_id == "user_fake000006" && u.deleted_at.is_some())
    );
    assert!(rows.iter().any(
        |u| u.clerk_user_id == "user_fake000005" && u.first_name.as_deref() == Some("Changed")
    ));
    app.stop().await;
}

/// `latchkey sync` against latchkey's own identity part reads it in process, one page of users
/// per read transaction, newest first, each as the management API would render it.
pub async fn the_own_identitys_users_page_newest_first_and_sync_without_drift(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let user = admin::create_user(
            &app.identity,
            latchkey_identity::flows::admin::CreateUser {
                email_address: Some(format!("page{i}@example.com")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        created.push(user);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = latchkey_identity::users::ListQuery {
            limit: 3,
            order_by: latchkey_identity::users::OrderBy::CreatedDesc,
            starting_after: after.clone(),
            ..Default::default()
        };
        let page = admin::list_users_json(&app.identity, &query).await.unwrap();
        for user in &page {
            let record = created.iter().find(|c| c.id == user.id).unwrap();
            assert_eq!(
                serde_json::to_value(user).unwrap(),
                serde_json::to_value(admin::user_json(&app.identity, record).await.unwrap())
                    .unwrap()
            );
            seen.push(user.id.clone());
        }
        if page.len() < 3 {
            break;
        }
        after = page.last().map(|u| u.id.clone());
    }
    // Newest first; users made in the same millisecond by id, descending.
    created.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let newest_first: Vec<String> = created.iter().map(|u| u.id.clone()).collect();
    assert_eq!(seen, newest_first);

    let sync = async |args: &[&str]| run_on(&ctx, &app, &[&["sync"], args].concat()).await;
    let backfill = sync(&["backfill"]).await;
    assert_eq!(backfill.code, Some(0), "{}", backfill.stderr);
    let check = sync(&["check"]).await;
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
    assert!(
        check
            .stdout
            .contains("7 issuer users; 0 missing from the app, 0 stale, 0 no longer at the issuer"),
        "{}",
        check.stdout
    );
    app.stop().await;
}
