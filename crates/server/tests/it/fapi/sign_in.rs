//! Signing in through the Frontend API: password, mailed code, reset by code; the pages'
//! rules hold (no enumeration, lockout).

use latchkey_testkit::TestContext;
use serde_json::Value;

use super::{PASSWORD, Page, error, sign_up, spawn};

async fn start(page: &mut Page, identifier: &str) -> String {
    let created = page
        .post("/client/sign_ins", &[("identifier", identifier)])
        .await;
    assert_eq!(created["response"]["status"], "needs_first_factor");
    created["response"]["id"].as_str().unwrap().to_owned()
}

fn strategies(sign_in: &Value) -> Vec<String> {
    sign_in["supported_first_factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["strategy"].as_str().unwrap().to_owned())
        .collect()
}

pub async fn signing_in_by_password_and_by_code_through_the_frontend_api(ctx: TestContext) {
    let app = spawn(&ctx).await;
    let mut first = sign_up(&app, "grace@example.com").await;
    first.call("DELETE", "/client/sessions", &[], 200).await;

    let mut page = Page::new(&app);
    let id = start(&mut page, "grace@example.com").await;
    let client = page.get("/client").await;
    assert_eq!(client["response"]["sign_in"]["id"], id.as_str());
    assert_eq!(
        strategies(&client["response"]["sign_in"]),
        ["password", "email_code", "reset_password_email_code"]
    );
    let wrong = page
        .call(
            "POST",
            &format!("/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "password"), ("password", "not the password")],
            422,
        )
        .await;
    assert_eq!(
        error(&wrong),
        (
            "form_password_incorrect".to_owned(),
            Some("password".to_owned())
        )
    );
    let done = page
        .post(
            &format!("/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "password"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(done["response"]["status"], "complete");
    assert_eq!(
        done["response"]["created_session_id"],
        done["client"]["sessions"][0]["id"]
    );
    assert!(page.browser.cookie("__client").is_some());
    page.call("DELETE", "/client/sessions", &[], 200).await;

    // By a mailed code.
    let id = start(&mut page, "grace@example.com").await;
    let email_id = page.get("/client").await["response"]["sign_in"]["supported_first_factors"][1]
        ["email_address_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let prepared = page
        .post(
            &format!("/client/sign_ins/{id}/prepare_first_factor"),
            &[("strategy", "email_code"), ("email_address_id", &email_id)],
        )
        .await;
    assert_eq!(
        prepared["response"]["first_factor_verification"]["status"],
        "unverified"
    );
    let code = app.code_for("grace@example.com").await;
    let done = page
        .post(
            &format!("/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "email_code"), ("code", &code)],
        )
        .await;
    assert_eq!(done["response"]["status"], "complete");
    assert_eq!(done["client"]["sessions"][0]["status"], "active");

    // An address without an account gets the same answers, and nothing is mailed to it.
    let mut stranger = Page::new(&app);
    let id = start(&mut stranger, "nobody@example.com").await;
    stranger
        .post(
            &format!("/client/sign_ins/{id}/prepare_first_factor"),
            &[("strategy", "email_code")],
        )
        .await;
    let refused = stranger
        .call(
            "POST",
            &format!("/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "password"), ("password", PASSWORD)],
            422,
        )
        .await;
    assert_eq!(error(&refused).0, "form_password_incorrect");
    assert!(
        app.mailbox()
            .await
            .iter()
            .all(|m| m.to != "nobody@example.com")
    );
    // Unknown strategies and identifiers that are no address are refused.
    let odd = stranger
        .call(
            "POST",
            "/client/sign_ins",
            &[
                ("identifier", "grace@example.com"),
                ("strategy", "oauth_github"),
            ],
            422,
        )
        .await;
    assert_eq!(error(&odd).0, "strategy_for_user_invalid");
    let odd = stranger
        .call(
            "POST",
            "/client/sign_ins",
            &[("identifier", "not an address")],
            422,
        )
        .await;
    assert_eq!(error(&odd).1.as_deref(), Some("identifier"));
    app.stop().await;
}

pub async fn ten_wrong_passwords_lock_the_account_as_on_the_pages(ctx: TestContext) {
    let app = spawn(&ctx).await;
    let mut first = sign_up(&app, "locked@example.com").await;
    first.call("DELETE", "/client/sessions", &[], 200).await;
    let mut page = Page::new(&app);
    let id = start(&mut page, "locked@example.com").await;
    for _ in 0..10 {
        page.call(
            "POST",
            &format!("/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "password"), ("password", "guess guess guess")],
            422,
        )
        .await;
    }
    let locked = page
        .call(
            "POST",
            &format!("/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "password"), ("password", PASSWORD)],
            403,
        )
        .await;
    assert_eq!(error(&locked).0, "user_locked");
    assert!(locked.header("retry-after").is_some());
    assert!(page.browser.cookie("__client").is_none());
    app.stop().await;
}

pub async fn a_password_reset_by_code_signs_in_with_the_new_password(ctx: TestContext) {
    let app = spawn(&ctx).await;
    let mut first = sign_up(&app, "reset@example.com").await;
    first.call("DELETE", "/client/sessions", &[], 200).await;
    let mut page = Page::new(&app);
    let id = start(&mut page, "reset@example.com").await;
    page.post(
        &format!("/client/sign_ins/{id}/prepare_first_factor"),
        &[("strategy", "reset_password_email_code")],
    )
    .await;
    let code = app.code_for("reset@example.com").await;
    let next = page
        .post(
            &format!("/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "reset_password_email_code"), ("code", &code)],
        )
        .await;
    assert_eq!(next["response"]["status"], "needs_new_password");
    let done = page
        .post(
            &format!("/client/sign_ins/{id}/reset_password"),
            &[
                ("password", "a completely new passphrase"),
                ("sign_out_of_other_sessions", "true"),
            ],
        )
        .await;
    assert_eq!(done["response"]["status"], "complete");
    assert_eq!(done["client"]["sessions"][0]["status"], "active");
    // The old password no longer works.
    let mut other = Page::new(&app);
    let id = start(&mut other, "reset@example.com").await;
    other
        .call(
            "POST",
            &format!("/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "password"), ("password", PASSWORD)],
            422,
        )
        .await;
    app.stop().await;
}
