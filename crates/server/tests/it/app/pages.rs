//! The app's pages and `/api/me` behind the session middleware, provisioning on first sight,
//! settings and notes that belong to their user, and the data policy on deletion.

use std::time::{Duration, Instant};

use latchkey_store::RowExt as _;
use latchkey_testkit::browser::Browser;
use latchkey_testkit::{Reply, TestApp, TestContext};
use serde_json::Value;

use super::api;
use crate::identity::sign_up;

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
