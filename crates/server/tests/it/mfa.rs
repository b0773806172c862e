//! Second factors: an authenticator app (TOTP codes computed by otplib, a library no one on
//! the project wrote, from the secret the page shows), backup codes, the second step of a
//! sign-in and its limits, step-up before sensitive changes, operators' reset, Clerk's fields
//! and the token's `fva` claim. The same in Chromium is in `mfa/browser.rs`.

pub mod browser;

use std::time::Duration;

use latchkey_testkit::browser::{Browser, csrf_token};
use latchkey_testkit::{TestApp, TestContext};
use reqwest::Method;
use serde_json::Value;

use crate::bapi::{call, events_about, secret_key};
use crate::identity::{PASSWORD, claims, sign_in, sign_up};
use crate::support::{finish, latchkey};

/// A TOTP step: codes of the next step are fresh.
const STEP: Duration = Duration::from_secs(30);

/// The 6-digit code otplib computes from `secret` (base32) at `unix_secs`.
pub async fn otplib_code(secret: &str, unix_secs: i64) -> String {
    let out =
        latchkey_testkit::interop::node("otplib-totp.mjs", &[secret, &unix_secs.to_string()], b"")
            .await;
    let code = out.trim().to_owned();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "otplib printed a code: {out:?}"
    );
    code
}

/// The code an authenticator app would show now, by the server's clock.
pub async fn code_now(app: &TestApp, secret: &str) -> String {
    otplib_code(secret, app.clock().now_secs()).await
}

/// The text between `start` and the next `end` after it.
fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = html.find(start)? + start.len();
    let to = html[from..].find(end)? + from;
    Some(&html[from..to])
}

/// The base32 secret the enrolment page shows.
pub fn shown_secret(html: &str) -> String {
    between(html, "<code id=\"totp-secret\">", "</code>")
        .unwrap_or_else(|| panic!("the page shows the secret: {html}"))
        .to_owned()
}

/// The backup codes a page lists.
pub fn shown_backup_codes(html: &str) -> Vec<String> {
    let list = between(html, "<ul class=\"backup-codes\">", "</ul>").unwrap_or("");
    list.split("<code>")
        .skip(1)
        .filter_map(|part| part.split("</code>").next())
        .map(str::to_owned)
        .collect()
}

fn error_text(html: &str) -> String {
    between(html, "id=\"form-error\">", "</p>")
        .unwrap_or_default()
        .to_owned()
}

/// Enrols an authenticator app for the signed-in `browser`; returns its secret and the
/// backup codes shown. The clock moves on a step, so the next code is fresh.
pub async fn enrol(app: &TestApp, browser: &mut Browser) -> (String, Vec<String>) {
    let reply = browser.submit("/user", "/user/mfa/totp", &[], 303).await;
    assert_eq!(reply.header("location"), Some("/user/mfa/totp"));
    let page = browser.get("/user/mfa/totp", 200).await.text();
    assert!(page.contains("<svg"), "the QR code is inline SVG");
    let secret = shown_secret(&page);
    assert_eq!(secret.len(), 32, "{secret}");
    let code = code_now(app, &secret).await;
    let token = csrf_token(&page);
    let reply = browser
        .post_form(
            "/user/mfa/totp/confirm",
            &[("csrf_token", &token), ("code", &code)],
            200,
        )
        .await;
    let codes = shown_backup_codes(&reply.text());
    assert_eq!(codes.len(), 10, "{}", reply.text());
    app.clock().advance(STEP);
    (secret, codes)
}

/// Signs out the browser.
async fn sign_out(browser: &mut Browser) {
    browser.submit("/user", "/sign-out", &[], 303).await;
    assert!(browser.cookie("__client").is_none());
}

/// Enters `code` on the second step, expecting `status`.
pub(crate) async fn second_step(
    browser: &mut Browser,
    code: &str,
    status: u16,
) -> latchkey_testkit::Reply {
    browser
        .submit(
            "/sign-in/factor",
            "/sign-in/factor",
            &[("code", code)],
            status,
        )
        .await
}

async fn user_json(app: &TestApp, key: &str, id: &str) -> Value {
    call(app, Method::GET, &format!("/v1/users/{id}"), key)
        .expect(200)
        .await
        .json()
}

async fn user_id(app: &TestApp, email: &str) -> String {
    latchkey_identity::flows::admin::find_user(&app.identity, email)
        .await
        .unwrap()
        .unwrap()
        .id
}

pub async fn an_authenticator_app_and_backup_codes_guard_every_sign_in(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let email = "totp@example.com";
    let mut browser = sign_up(&app, email).await;
    let id = user_id(&app, email).await;
    let before = user_json(&app, &key, &id).await;
    for field in ["two_factor_enabled", "totp_enabled", "backup_code_enabled"] {
        assert_eq!(before[field], false, "{field}");
    }
    assert_eq!(before["passkeys"], serde_json::json!([]));

    // A wrong first code does not turn it on.
    browser.submit("/user", "/user/mfa/totp", &[], 303).await;
    let reply = browser
        .submit(
            "/user/mfa/totp",
            "/user/mfa/totp/confirm",
            &[("code", "000000")],
            422,
        )
        .await;
    assert!(
        error_text(&reply.text()).contains("incorrect"),
        "{}",
        reply.text()
    );
    assert_eq!(user_json(&app, &key, &id).await["totp_enabled"], false);

    let (secret, backup) = enrol(&app, &mut browser).await;
    let after = user_json(&app, &key, &id).await;
    for field in ["two_factor_enabled", "totp_enabled", "backup_code_enabled"] {
        assert_eq!(after[field], true, "{field}");
    }
    assert!(after["mfa_enabled_at"].is_i64());
    let updates = events_about(&app, "user.updated", &id).await;
    assert_eq!(updates.last().unwrap()["data"]["totp_enabled"], true);
    let page = browser.get("/user", 200).await.text();
    assert!(page.contains("id=\"backup-codes-left\">10<"), "{page}");
    // No secret or code in the page after enrolment.
    assert!(!page.contains(&secret) && !page.contains(&backup[0]));

    // The password alone opens no session.
    sign_out(&mut browser).await;
    let reply = sign_in(&mut browser, email, PASSWORD, 303).await;
    assert_eq!(reply.header("location"), Some("/sign-in/factor"));
    assert!(browser.cookie("__client").is_none() && browser.cookie("latchkey_mfa").is_some());
    let reply = browser.get("/user", 303).await;
    assert!(reply.header("location").unwrap().starts_with("/sign-in"));

    // Password + code: a session whose token says both factors are fresh.
    let code = code_now(&app, &secret).await;
    let reply = second_step(&mut browser, &code, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    assert!(browser.cookie("latchkey_mfa").is_none());
    let token = browser.cookie("__session").unwrap().to_owned();
    assert_eq!(claims(&token)["fva"], serde_json::json!([0, 0]));

    // The same code again (same step) is refused: a replay.
    sign_out(&mut browser).await;
    sign_in(&mut browser, email, PASSWORD, 303).await;
    let reply = second_step(&mut browser, &code, 422).await;
    assert!(
        error_text(&reply.text()).contains("already used"),
        "{}",
        reply.text()
    );

    // A backup code works once, emits user.updated, and the page counts what is left.
    let updates_before = events_about(&app, "user.updated", &id).await.len();
    let reply = second_step(&mut browser, &backup[3].to_uppercase(), 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    assert_eq!(
        events_about(&app, "user.updated", &id).await.len(),
        updates_before + 1
    );
    let page = browser.get("/user", 200).await.text();
    assert!(page.contains("id=\"backup-codes-left\">9<"), "{page}");
    sign_out(&mut browser).await;
    sign_in(&mut browser, email, PASSWORD, 303).await;
    let reply = second_step(&mut browser, &backup[3], 422).await;
    assert!(error_text(&reply.text()).contains("incorrect"));
    // A sign-in by mailed code asks for the second factor too.
    let mut other = app.browser();
    other
        .submit(
            "/sign-in",
            "/sign-in/code",
            &[("email_address", email)],
            303,
        )
        .await;
    let code = app.code_for(email).await;
    let reply = other
        .submit("/verify", "/verify", &[("code", &code)], 303)
        .await;
    assert_eq!(reply.header("location"), Some("/sign-in/factor"));
    assert!(other.cookie("__client").is_none());
    app.clock().advance(STEP);
    let code = code_now(&app, &secret).await;
    second_step(&mut other, &code, 303).await;
    assert!(other.cookie("__client").is_some());

    // New backup codes replace the old set whole, and say so with user.updated.
    let updates_before = events_about(&app, "user.updated", &id).await.len();
    let reply = other
        .submit("/user", "/user/mfa/backup-codes", &[], 200)
        .await;
    let renewed = shown_backup_codes(&reply.text());
    assert_eq!(renewed.len(), 10);
    assert!(renewed.iter().all(|c| !backup.contains(c)));
    assert_eq!(
        events_about(&app, "user.updated", &id).await.len(),
        updates_before + 1
    );
    let mut again = app.browser();
    sign_in(&mut again, email, PASSWORD, 303).await;
    second_step(&mut again, &backup[5], 422).await;
    second_step(&mut again, &renewed[0], 303).await;

    // A pending second step lasts 10 minutes.
    let mut late = app.browser();
    sign_in(&mut late, email, PASSWORD, 303).await;
    let token = csrf_token(&late.get("/sign-in/factor", 200).await.text());
    app.clock().advance(Duration::from_secs(11 * 60));
    let code = code_now(&app, &secret).await;
    let reply = late
        .post_form(
            "/sign-in/factor",
            &[("csrf_token", &token), ("code", &code)],
            303,
        )
        .await;
    assert_eq!(reply.header("location"), Some("/sign-in"));
    assert!(late.cookie("__client").is_none() && late.cookie("latchkey_mfa").is_none());
    late.get("/sign-in/factor", 303).await;
    app.stop().await;
}

pub async fn wrong_second_factor_codes_stop_at_the_limits_even_in_parallel(ctx: TestContext) {
    let app = ctx.spawn_with(|c| c.sign_in_attempts_per_ip = 1000).await;
    let email = "guess@example.com";
    let mut browser = sign_up(&app, email).await;
    let (secret, _) = enrol(&app, &mut browser).await;
    sign_out(&mut browser).await;
    sign_in(&mut browser, email, PASSWORD, 303).await;
    let page = browser.get("/sign-in/factor", 200).await.text();
    let token = csrf_token(&page);
    let mut handles = Vec::new();
    for i in 0..20 {
        let b = browser.clone();
        let token = token.clone();
        handles.push(tokio::spawn(async move {
            let reply = b
                .request(Method::POST, "/sign-in/factor")
                .header("origin", &b.request_base())
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("code", &format!("{:06}", 111_111 + i)),
                ])
                .send()
                .await;
            reply.status.as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap());
    }
    let wrong = statuses.iter().filter(|s| **s == 422).count();
    let stopped = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (wrong, stopped),
        (5, 15),
        "exactly 5 codes were checked: {statuses:?}"
    );
    // The pending sign-in is spent: even the right code is refused now.
    let right = code_now(&app, &secret).await;
    let reply = browser
        .request(Method::POST, "/sign-in/factor")
        .header("origin", &browser.request_base())
        .form(&[("csrf_token", token.as_str()), ("code", right.as_str())])
        .expect(429)
        .await;
    assert!(reply.text().contains("Too many wrong codes"));

    // The account allows 10 an hour across pending sign-ins; a right password does not
    // reset that.
    let mut again = app.browser();
    sign_in(&mut again, email, PASSWORD, 303).await;
    for _ in 0..5 {
        second_step(&mut again, "123456", 422).await;
    }
    let mut third = app.browser();
    sign_in(&mut third, email, PASSWORD, 303).await;
    let right = code_now(&app, &secret).await;
    let reply = second_step(&mut third, &right, 429).await;
    assert!(error_text(&reply.text()).contains("Too many wrong attempts for this account"));
    assert!(reply.header("retry-after").is_some());
    assert!(third.cookie("__client").is_none());
    // An hour later it opens again.
    app.clock().advance(Duration::from_secs(3600));
    let mut fourth = app.browser();
    sign_in(&mut fourth, email, PASSWORD, 303).await;
    let right = code_now(&app, &secret).await;
    second_step(&mut fourth, &right, 303).await;
    app.stop().await;
}

pub async fn sensitive_changes_need_a_sign_in_within_ten_minutes(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let email = "stepup@example.com";
    let mut browser = sign_up(&app, email).await;
    let id = user_id(&app, email).await;
    app.clock().advance(Duration::from_secs(11 * 60));
    let page = browser.get("/user", 200).await.text();
    assert!(page.contains("Confirm it's you first"), "{page}");
    for (action, fields) in [
        ("/user/mfa/totp", vec![]),
        ("/user/delete", vec![("confirmation", "DELETE")]),
        ("/user/emails/primary", vec![("email_id", "idn_whatever")]),
    ] {
        let reply = browser.submit("/user", action, &fields, 403).await;
        assert!(
            error_text(&reply.text()).contains("needs a sign-in within the last 10 minutes"),
            "{action}: {}",
            reply.text()
        );
    }
    assert!(
        user_json(&app, &key, &id).await["id"] == id.as_str(),
        "still there"
    );
    let reply = browser
        .submit(
            "/user",
            "/user/reverify",
            &[("password", "not the password")],
            401,
        )
        .await;
    assert!(error_text(&reply.text()).contains("incorrect"));
    let reply = browser
        .submit("/user", "/user/reverify", &[("password", PASSWORD)], 303)
        .await;
    assert_eq!(reply.header("location"), Some("/user?notice=reverified"));
    let (secret, _) = enrol(&app, &mut browser).await;

    // Eleven minutes on, removing the app needs a step-up again; a code from the app is one.
    app.clock().advance(Duration::from_secs(11 * 60));
    browser.submit("/user", "/user/mfa/remove", &[], 403).await;
    let code = code_now(&app, &secret).await;
    browser
        .submit("/user", "/user/reverify", &[("code", &code)], 303)
        .await;
    let reply = browser.submit("/user", "/user/mfa/remove", &[], 303).await;
    assert_eq!(reply.header("location"), Some("/user?notice=mfa_removed"));
    let user = user_json(&app, &key, &id).await;
    assert_eq!(user["two_factor_enabled"], false);
    assert_eq!(
        events_about(&app, "user.updated", &id)
            .await
            .last()
            .unwrap()["data"]["totp_enabled"],
        false
    );
    // A fresh token tells an app how old each factor is: the password 11 minutes ago (the
    // first step-up), the app's code just now.
    let reply = browser
        .request(Method::POST, "/v1/client/session-token")
        .header("origin", &browser.request_base())
        .expect(200)
        .await;
    let jwt = reply.json::<Value>()["jwt"].as_str().unwrap().to_owned();
    assert_eq!(claims(&jwt)["fva"], serde_json::json!([11, 0]));
    app.stop().await;
}

pub async fn operators_reset_a_locked_out_persons_second_factors(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let mut first = sign_up(&app, "lost@example.com").await;
    enrol(&app, &mut first).await;
    let mut second = sign_up(&app, "lost2@example.com").await;
    enrol(&app, &mut second).await;
    let id = user_id(&app, "lost@example.com").await;
    let id2 = user_id(&app, "lost2@example.com").await;

    let reply = call(&app, Method::DELETE, &format!("/v1/users/{id}/mfa"), &key)
        .expect(200)
        .await;
    assert_eq!(reply.json::<Value>(), serde_json::json!({"user_id": id}));
    let last = events_about(&app, "user.updated", &id).await;
    assert_eq!(last.last().unwrap()["data"]["two_factor_enabled"], false);
    call(&app, Method::DELETE, "/v1/users/user_nobody/mfa", &key)
        .expect(404)
        .await;
    let mut browser = app.browser();
    let reply = sign_in(&mut browser, "lost@example.com", PASSWORD, 303).await;
    assert_eq!(
        reply.header("location"),
        Some("/"),
        "the password alone signs in again"
    );

    let cwd = ctx.temp_dir();
    let mut command = latchkey(&cwd);
    command
        .args([
            "users",
            "reset-mfa",
            "lost2@example.com",
            "--json",
            "--data-dir",
        ])
        .arg(&app.config.data_dir)
        .env(
            "DATABASE_URL",
            app.config.database_url.expose_for_child_process(),
        );
    let done = finish(command).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let printed: Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(
        printed,
        serde_json::json!({"user_id": id2, "removed": true})
    );
    assert_eq!(user_json(&app, &key, &id2).await["totp_enabled"], false);
    let mut browser = app.browser();
    let reply = sign_in(&mut browser, "lost2@example.com", PASSWORD, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    app.stop().await;
}
