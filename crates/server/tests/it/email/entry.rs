//! Addresses the mailer could not write are refused wherever an address comes in (sign-up,
//! adding one on `/user`, `POST /v1/users`, `latchkey users create`) with nothing written, and
//! ordinary ones, plus-tags and subdomains included, still pass.

use latchkey_store::Row as _;
use latchkey_testkit::browser::csrf_token;
use latchkey_testkit::{TestApp, TestContext};
use reqwest::Method;
use serde_json::{Value, json};

use super::{error_text, start_sign_up};
use crate::bapi::{call, create_user, error_code, secret_key};
use crate::identity::{PASSWORD, sign_up};
use crate::support::run_on;

/// Addresses lettre cannot write as a recipient; every one of them passed before.
const UNMAILABLE: [&str; 2] = ["a,b@x.io", "x<svg/onload=alert(8)>@example.com"];

/// Rows in every table an accepted address would write to (or a throttle it would count in).
async fn written(app: &TestApp) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    let mut tx = app.db.begin_read().await.unwrap();
    for table in [
        "identity_users",
        "identity_email_addresses",
        "identity_verifications",
        "identity_events",
        "identity_mail_outbox",
        "identity_throttles",
    ] {
        let q = tx.query_owned(format!("SELECT COUNT(*) AS n FROM {table}"));
        let n: i64 = tx.fetch_one(q).await.unwrap().try_get("n").unwrap();
        counts.push((table, n));
    }
    tx.commit().await.unwrap();
    counts
}

/// `page` is the form shown again for `address`, refused, escaped, and still protected.
fn assert_form_refused(page: &str, address: &str) {
    assert_eq!(
        error_text(page),
        "Enter a valid email address.",
        "{address}"
    );
    assert!(!page.contains("<svg"), "input is escaped when shown again");
    assert!(
        !csrf_token(page).is_empty(),
        "the form keeps its CSRF token"
    );
}

pub async fn unmailable_addresses_are_refused_on_the_pages_with_nothing_written(ctx: TestContext) {
    let app = ctx.spawn().await;
    let before = written(&app).await;
    for address in UNMAILABLE {
        let mut browser = app.browser();
        let reply = browser
            .submit(
                "/sign-up",
                "/sign-up",
                &[("email_address", address), ("password", PASSWORD)],
                422,
            )
            .await;
        assert_form_refused(&reply.text(), address);
        assert!(browser.cookie("__client").is_none());
        assert!(browser.cookie("latchkey_verification").is_none());
    }
    assert_eq!(
        written(&app).await,
        before,
        "a refused sign-up writes nothing"
    );

    let mut browser = sign_up(&app, "holder@example.com").await;
    let before = written(&app).await;
    for address in UNMAILABLE {
        let reply = browser
            .submit("/user", "/user/emails", &[("email_address", address)], 422)
            .await;
        assert_form_refused(&reply.text(), address);
    }
    assert_eq!(
        written(&app).await,
        before,
        "a refused address writes nothing"
    );

    // Ordinary addresses still pass both forms.
    start_sign_up(&app, "first.last+tag@sub.example.co.uk").await;
    let reply = browser
        .submit(
            "/user",
            "/user/emails",
            &[("email_address", "second.one+x@mail.example.org")],
            303,
        )
        .await;
    assert_eq!(reply.header("location"), Some("/user?notice=email_added"));
    for address in [
        "first.last+tag@sub.example.co.uk",
        "second.one+x@mail.example.org",
    ] {
        let mail = app.latest_mail_to(address).await;
        assert!(mail.code().is_some(), "{address}: {mail:?}");
    }
    app.stop().await;
}

pub async fn unmailable_addresses_are_refused_to_operators_with_nothing_written(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let before = written(&app).await;
    for address in UNMAILABLE {
        let reply = call(&app, Method::POST, "/v1/users", &key)
            .json(&json!({"email_address": [address], "password": PASSWORD}))
            .expect(422)
            .await;
        assert_eq!(error_code(&reply), "form_param_format_invalid", "{address}");
        let body: Value = reply.json();
        assert_eq!(body["errors"][0]["meta"]["param_name"], "email_address");
        assert_eq!(
            body["errors"][0]["long_message"],
            "Enter a valid email address."
        );

        let done = run_on(&ctx, &app, &["users", "create", "--email", address]).await;
        assert_eq!(done.code, Some(1), "{address}: {}", done.stderr);
        assert_eq!(
            done.stderr, "latchkey: Enter a valid email address.\n",
            "one line"
        );
        assert!(done.stdout.is_empty());
    }
    assert_eq!(written(&app).await, before, "nothing was written");

    let created = create_user(
        &app,
        &key,
        &json!({"email_address": ["first.last+tag@sub.example.co.uk"]}),
    )
    .await;
    assert_eq!(
        created["email_addresses"][0]["email_address"],
        "first.last+tag@sub.example.co.uk"
    );
    let done = run_on(
        &ctx,
        &app,
        &[
            "users",
            "create",
            "--email",
            "o'brien+ops@mail.example.ie",
            "--json",
        ],
    )
    .await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let made: Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(
        made["email_addresses"][0]["email_address"],
        "o'brien+ops@mail.example.ie"
    );
    app.stop().await;
}
