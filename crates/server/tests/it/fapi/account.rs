//! `/me` as `<UserButton>` and `<UserProfile>` call it: the name, a second address verified
//! and made primary, the password, sessions, deleting the account.

use latchkey_testkit::TestContext;
use serde_json::Value;

use super::{PASSWORD, Page, error, sign_up, spawn};

pub async fn the_profile_addresses_password_and_sessions_change_through_me(ctx: TestContext) {
    let app = spawn(&ctx).await;
    let mut page = sign_up(&app, "lin@example.com").await;

    let updated = page
        .call("PATCH", "/me", &[("first_name", "Lin")], 200)
        .await;
    let updated: Value = updated.json();
    assert_eq!(updated["response"]["first_name"], "Lin");
    assert_eq!(
        updated["client"]["sessions"][0]["user"]["first_name"],
        "Lin"
    );

    // A second address: added, its code entered, made primary.
    let added = page
        .post(
            "/me/email_addresses/",
            &[("email_address", "lin@work.example")],
        )
        .await;
    let pending = added["response"]["id"].as_str().unwrap().to_owned();
    assert_eq!(added["response"]["verification"]["status"], "unverified");
    page.post(
        &format!("/me/email_addresses/{pending}/prepare_verification"),
        &[("strategy", "email_code")],
    )
    .await;
    assert_eq!(
        app.mailbox()
            .await
            .iter()
            .filter(|m| m.to == "lin@work.example")
            .count(),
        1,
        "the first prepare sends no second code"
    );
    let code = app.code_for("lin@work.example").await;
    let verified = page
        .post(
            &format!("/me/email_addresses/{pending}/attempt_verification"),
            &[("code", &code)],
        )
        .await;
    assert_eq!(verified["response"]["verification"]["status"], "verified");
    let email_id = verified["response"]["id"].as_str().unwrap().to_owned();
    let primary = page
        .call(
            "PATCH",
            "/me",
            &[("primary_email_address_id", &email_id)],
            200,
        )
        .await;
    let primary: Value = primary.json();
    assert_eq!(
        primary["response"]["primary_email_address_id"],
        email_id.as_str()
    );

    // The password: a wrong current one is a form error; the right one ends other sessions.
    let mut elsewhere = Page::new(&app);
    let id = elsewhere
        .post("/client/sign_ins", &[("identifier", "lin@work.example")])
        .await["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    elsewhere
        .post(
            &format!("/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "password"), ("password", PASSWORD)],
        )
        .await;
    let active = page.get("/me/sessions/active").await;
    assert_eq!(active.as_array().unwrap().len(), 2);
    let wrong = page
        .call(
            "POST",
            "/me/change_password",
            &[
                ("current_password", "nope nope nope"),
                ("new_password", "another good passphrase"),
            ],
            422,
        )
        .await;
    assert_eq!(error(&wrong).1.as_deref(), Some("current_password"));
    page.post(
        "/me/change_password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "another good passphrase"),
            ("sign_out_of_other_sessions", "true"),
        ],
    )
    .await;
    elsewhere.call("GET", "/me", &[], 401).await;
    let active = page.get("/me/sessions/active").await;
    assert_eq!(active.as_array().unwrap().len(), 1);

    // The old address, no longer primary, can be removed; then the account is deleted.
    let me = page.get("/me").await;
    let old = me["response"]["email_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["email_address"] == "lin@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    page.call("DELETE", &format!("/me/email_addresses/{old}"), &[], 200)
        .await;
    let deleted = page.call("DELETE", "/me", &[], 200).await;
    let deleted: Value = deleted.json();
    assert_eq!(deleted["response"]["deleted"], true);
    assert_eq!(deleted["client"]["sessions"], Value::Array(vec![]));
    page.call("GET", "/me", &[], 401).await;
    app.stop().await;
}
