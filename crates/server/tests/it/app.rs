//! The app part: its pages and `/api/me` behind the session middleware, provisioning on first
//! sight, the data policy on deletion, and Clerk as the issuer (through a local stand-in).

use std::time::{Duration, Instant};

use latchkey_server::config::{ClerkSettings, Secret};
use latchkey_store::RowExt as _;
use latchkey_testkit::browser::Browser;
use latchkey_testkit::fake_clerk::FakeClerk;
use latchkey_testkit::{Reply, TestApp, TestContext};
use serde_json::Value;

use crate::identity::sign_up;
use crate::support::{finish, latchkey_on, run_on};

/// How many rows of the app's `table` belong to `user_id`.
async fn rows_of(app: &TestApp, table: &str, user_id: &str) -> i64 {
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx
        .query_owned(format!(
            "SELECT count(*) AS n FROM {table} WHERE user_id = $1"
        ))
        .bind(user_id);
    let n = tx.fetch_one(q).await.unwrap().col("n").unwrap();
    tx.commit().await.unwrap();
    n
}

/// `GET path` from `browser`, expecting `status`; the JSON body.
async fn api(browser: &Browser, path: &str, status: u16) -> Value {
    browser
        .request(reqwest::Method::GET, path)
        .expect(status)
        .await
        .json()
}

/// Posts the settings form, expecting `status`.
async fn save_settings(browser: &mut Browser, fields: &[(&str, &str)], status: u16) {
    browser
        .submit("/dashboard/settings", "/dashboard/settings", fields, status)
        .await;
}

/// Posts a new note, expecting `status`.
async fn add_note(browser: &mut Browser, title: &str, body: &str, status: u16) -> Reply {
    browser
        .submit(
            "/dashboard/notes",
            "/dashboard/notes",
            &[("title", title), ("body", body)],
            status,
        )
        .await
}

pub async fn the_dashboard_needs_a_session_and_shows_the_apps_row(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut visitor = app.browser();
    let landing = visitor.get("/", 200).await;
    assert!(
        landing.text().contains("id=\"sign-in-button\""),
        "a Sign in button for visitors"
    );
    assert!(
        landing.text().contains("Test App"),
        "the app's name in the header"
    );
    let reply = visitor.get("/dashboard?tab=1", 303).await;
    assert_eq!(
        reply.header("location"),
        Some("/sign-in?redirect_url=%2Fdashboard%3Ftab%3D1")
    );
    let error: Value = api(&visitor, "/api/me", 401).await;
    assert_eq!(error["error"]["code"], "signed_out");

    let mut browser = sign_up(&app, "dash@example.com").await;
    let landing = browser.get("/", 200).await;
    assert!(landing.text().contains("id=\"user-button\""));
    assert!(
        landing.text().contains(">AL<"),
        "initials when there is no image"
    );
    let dashboard = browser.get("/dashboard", 200).await;
    assert!(dashboard.text().contains("dash@example.com"));
    // The row may be provisioned before the verification's `user.updated` arrives; compare the
    // two routes once it has (both read the same row).
    let started = std::time::Instant::now();
    let me: Value = loop {
        let me: Value = api(&browser, "/api/me", 200).await;
        if me["user"]["email_verified"] == true {
            break me;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the verified address never reached the app: {me}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(me["user"]["email"], "dash@example.com");
    assert!(me["user"]["id"].as_str().unwrap().starts_with("usr_"));
    assert!(
        me["user"]["clerk_user_id"]
            .as_str()
            .unwrap()
            .starts_with("user_")
    );
    assert_eq!(me["preferences"]["theme"], "system");
    assert_eq!(me["note_count"], 0);

    let session: Value = api(&browser, "/api/session", 200).await;
    assert_eq!(session["user"], me["user"]);
    assert!(
        session["session"]["id"]
            .as_str()
            .unwrap()
            .starts_with("sess_")
    );
    let expires_at = session["session"]["expires_at"].as_i64().unwrap();
    let now = latchkey_protocol::time::now_ms();
    assert!(
        expires_at > now && expires_at <= now + 65_000,
        "a 60-second token's expiry: {expires_at} vs {now}"
    );
    let error: Value = api(&visitor, "/api/session", 401).await;
    assert_eq!(error["error"]["code"], "signed_out");
    app.stop().await;
}

pub async fn the_first_request_after_sign_up_provisions_the_row(ctx: TestContext) {
    // No webhooks at all: only provisioning can create the row.
    let app = ctx.spawn_with(|c| c.internal_webhook = false).await;
    let browser = sign_up(&app, "first@example.com").await;
    assert!(app.app_users().await.is_empty());
    let me: Value = api(&browser, "/api/me", 200).await;
    assert_eq!(me["user"]["email"], "first@example.com");
    let rows = app.app_users().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].email.as_deref(), Some("first@example.com"));
    // A bearer token works the same way.
    let token = browser.cookie("__session").unwrap().to_owned();
    app.get("/api/me").bearer(&token).expect(200).await;
    app.stop().await;
}

pub async fn settings_and_notes_belong_to_their_user(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut owner = sign_up(&app, "notes@example.com").await;
    save_settings(
        &mut owner,
        &[
            ("theme", "dark"),
            ("locale", "fr-FR"),
            ("time_zone", "Europe/Paris"),
        ],
        303,
    )
    .await;
    let page = owner.get("/dashboard", 200).await;
    assert!(
        page.text()
            .contains("<html lang=\"fr-FR\" data-theme=\"dark\">"),
        "the theme and language apply"
    );
    save_settings(
        &mut owner,
        &[("theme", "neon"), ("locale", "fr-FR"), ("time_zone", "UTC")],
        422,
    )
    .await;
    save_settings(
        &mut owner,
        &[
            ("theme", "light"),
            ("locale", "fr-FR"),
            ("time_zone", "../etc"),
        ],
        422,
    )
    .await;

    // NUL (which Postgres text refuses) gets the form back with a message, not an error page.
    for (title, body) in [("A\u{0}B", "fine"), ("Fine", "line\nbreak\u{0}")] {
        let refused = add_note(&mut owner, title, body, 422).await;
        assert!(refused.text().contains("cannot contain control characters"));
    }
    add_note(&mut owner, "First <note>", "Body & soul", 303).await;
    let notes = owner.get("/dashboard/notes", 200).await.text();
    assert!(
        notes.contains("First &#60;note&#62;") || notes.contains("First &lt;note&gt;"),
        "escaped: {notes}"
    );
    let id = notes
        .split("/dashboard/notes/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    owner
        .submit(
            &format!("/dashboard/notes/{id}/edit"),
            &format!("/dashboard/notes/{id}"),
            &[("title", "Renamed"), ("body", "x")],
            303,
        )
        .await;
    assert!(
        owner
            .get("/dashboard/notes", 200)
            .await
            .text()
            .contains("Renamed")
    );
    add_note(&mut owner, "", "x", 422).await;

    // Another user cannot see, change or delete it.
    let mut other = sign_up(&app, "other@example.com").await;
    other.get(&format!("/dashboard/notes/{id}/edit"), 404).await;
    other
        .submit(
            "/dashboard/notes",
            &format!("/dashboard/notes/{id}/delete"),
            &[],
            404,
        )
        .await;
    other
        .submit(
            "/dashboard/notes",
            &format!("/dashboard/notes/{id}"),
            &[("title", "Hijacked")],
            404,
        )
        .await;
    // And forms without a token are refused, with the same page as the identity part's forms.
    let refused = owner
        .post_form(&format!("/dashboard/notes/{id}/delete"), &[], 403)
        .await;
    let page = refused.text();
    assert!(
        page.contains("<h1>Request refused</h1>") && page.contains("security token"),
        "{page}"
    );
    assert!(page.contains("href=\"/dashboard/notes\""), "{page}");

    let me: Value = api(&owner, "/api/me", 200).await;
    assert_eq!(me["note_count"], 1);
    assert_eq!(me["preferences"]["theme"], "dark");
    owner
        .submit(
            "/dashboard/notes",
            &format!("/dashboard/notes/{id}/delete"),
            &[],
            303,
        )
        .await;
    let me: Value = api(&owner, "/api/me", 200).await;
    assert_eq!(me["note_count"], 0);
    app.stop().await;
}

pub async fn a_deleted_users_app_data_goes_with_the_tombstone(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = sign_up(&app, "gone@example.com").await;
    add_note(&mut browser, "Mine", "", 303).await;
    save_settings(
        &mut browser,
        &[("theme", "dark"), ("locale", "en-US"), ("time_zone", "UTC")],
        303,
    )
    .await;
    let token = browser.cookie("__session").unwrap().to_owned();
    let me: Value = api(&browser, "/api/me", 200).await;
    let app_id = me["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(rows_of(&app, "app_notes", &app_id).await, 1);

    browser
        .submit("/user", "/user/delete", &[("confirmation", "DELETE")], 303)
        .await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while app.app_users().await.iter().any(|u| u.deleted_at.is_none()) {
        assert!(
            Instant::now() < deadline,
            "the deletion did not reach the app"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(rows_of(&app, "app_notes", &app_id).await, 0);
    assert_eq!(rows_of(&app, "app_preferences", &app_id).await, 0);
    // The still-unexpired token of the deleted user is refused, and nothing is recreated.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let error: Value = app.get("/api/me").bearer(&token).expect(401).await.json();
    assert_eq!(error["error"]["code"], "user_deleted");
    assert_eq!(app.app_users().await.len(), 1);
    app.stop().await;
}

fn clerk_settings(fake: &FakeClerk) -> ClerkSettings {
    ClerkSettings {
        publishable_key: None,
        secret_key: Some(Secret(fake.secret_key.clone())),
        jwt_key: None,
        api_url: fake.url.clone(),
        sign_in_url: Some("https://accounts.fake.example/sign-in".to_owned()),
        account_url: None,
    }
}

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

pub async fn clerk_session_tokens_follow_the_sdks_rules(ctx: TestContext) {
    let fake = FakeClerk::start(3, None).await;
    let clerk = clerk_settings(&fake);
    let app = ctx
        .spawn_with(|c| {
            c.clerk = Some(clerk);
            c.authorized_parties = Some(vec!["https://app.example.com".to_owned()]);
        })
        .await;
    let good = fake.mint("user_fake000001", Some("https://app.example.com"));
    app.get("/api/me").bearer(&good).expect(200).await;
    for (name, token, code) in [
        (
            "no azp",
            fake.mint("user_fake000001", None),
            "token_azp_missing",
        ),
        (
            "another origin",
            fake.mint("user_fake000001", Some("https://evil.example")),
            "token_azp_mismatch",
        ),
        (
            "a session with a task left",
            fake.mint_with_status(
                "user_fake000001",
                Some("https://app.example.com"),
                Some("pending"),
            ),
            "session_pending",
        ),
    ] {
        let error: Value = app.get("/api/me").bearer(&token).expect(401).await.json();
        assert_eq!(error["error"]["code"], code, "{name}");
    }
    let mut tampered: Vec<String> = good.split('.').map(str::to_owned).collect();
    tampered[2] = tampered[2].chars().rev().collect();
    app.get("/api/me")
        .bearer(&tampered.join("."))
        .expect(401)
        .await;

    // Cookies, with Clerk's __client_uat rule; a header, when present, is used exclusively.
    let iat = latchkey_protocol::time::now_secs();
    let mut browser = Browser::new(&app.url);
    browser.cookies.insert("__session".to_owned(), good.clone());
    browser
        .request(reqwest::Method::GET, "/api/me")
        .expect(401)
        .await;
    browser
        .cookies
        .insert("__client_uat".to_owned(), (iat + 100).to_string());
    let stale: Value = api(&browser, "/api/me", 401).await;
    assert_eq!(stale["error"]["code"], "session_token_stale");
    browser
        .cookies
        .insert("__client_uat".to_owned(), (iat - 100).to_string());
    browser
        .request(reqwest::Method::GET, "/api/me")
        .expect(200)
        .await;
    browser
        .request(reqwest::Method::GET, "/api/me")
        .bearer("not.a.token")
        .expect(401)
        .await;
    // Pages send signed-out visitors to Clerk's sign-in page.
    let mut visitor = app.browser();
    let reply = visitor.get("/dashboard", 303).await;
    assert_eq!(
        reply.header("location"),
        Some("https://accounts.fake.example/sign-in?redirect_url=%2Fdashboard")
    );
    app.stop().await;

    // With the issuer's keys out of reach, nobody is signed out: pages and APIs answer 503.
    let mut unreachable = clerk_settings(&fake);
    unreachable.api_url = format!(
        "http://127.0.0.1:{}/v1",
        latchkey_testkit::pgbouncer::free_port()
    );
    let app = ctx.spawn_with(|c| c.clerk = Some(unreachable)).await;
    let error: Value = app.get("/api/me").bearer(&good).expect(503).await.json();
    assert_eq!(error["error"]["code"], "keys_unavailable");
    let mut signed_in = Browser::new(&app.url);
    signed_in.cookies.insert("__session".to_owned(), good);
    signed_in
        .cookies
        .insert("__client_uat".to_owned(), (iat - 100).to_string());
    signed_in.get("/dashboard", 503).await;
    app.stop().await;
}

/// `latchkey sync` against latchkey's own identity part reads it in process, one page of users
/// per read transaction, newest first, each as the management API would render it.
pub async fn the_own_identitys_users_page_newest_first_and_sync_without_drift(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let user = app
            .identity
            .create_user(latchkey_identity::admin::CreateUser {
                email_address: Some(format!("page{i}@example.com")),
                ..Default::default()
            })
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
        let page = app.identity.list_users_json(&query).await.unwrap();
        for user in &page {
            let record = created.iter().find(|c| c.id == user.id).unwrap();
            assert_eq!(
                serde_json::to_value(user).unwrap(),
                serde_json::to_value(app.identity.user_json(record).await.unwrap()).unwrap()
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
