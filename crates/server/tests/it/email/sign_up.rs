//! Verified sign-up in the default run: the code in the dev mailbox, no session before it, the
//! verified address in the user JSON, its events and the app's table; taken addresses and
//! unverified accounts.

use latchkey_testkit::TestContext;
use serde_json::Value;

use super::{error_text, me, start_sign_up};
use crate::bapi::events_about;
use crate::identity::{PASSWORD, enter_code, sign_in, sign_up};
use crate::support::app_users_within_two_seconds;
use latchkey_identity::flows::admin;

pub async fn a_sign_up_waits_for_its_code_and_the_app_sees_the_verified_address(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = start_sign_up(&app, "verify@example.com").await;
    browser
        .request(reqwest::Method::GET, "/v1/me")
        .expect(401)
        .await;
    let page = browser.get("/verify", 200).await.text();
    assert!(page.contains("Verify your email address") && page.contains("verify@example.com"));

    let users = admin::find_user(&app.identity, "verify@example.com")
        .await
        .unwrap()
        .unwrap();
    let created = events_about(&app, "user.created", &users.id).await;
    assert_eq!(created.len(), 1);
    let verification = &created[0]["data"]["email_addresses"][0]["verification"];
    assert_eq!(verification["status"], "unverified");
    assert_eq!(verification["strategy"], "email_code");
    assert_eq!(verification["object"], "verification_otp");
    let lifetime =
        verification["expire_at"].as_i64().unwrap() - created[0]["timestamp"].as_i64().unwrap();
    assert!(
        (590_000..=600_000).contains(&lifetime),
        "10 minutes: {lifetime}"
    );

    let mail = app.latest_mail_to("verify@example.com").await;
    assert!(
        mail.subject.starts_with("Verify your email address"),
        "{mail:?}"
    );
    let code = mail.code().unwrap();
    assert!(!mail.subject.contains(&code), "subjects carry no code");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let reply = enter_code(&mut browser, wrong, 422).await;
    assert_eq!(
        error_text(&reply.text()),
        "That code is incorrect. 4 tries left."
    );
    let reply = enter_code(&mut browser, &code, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    assert!(browser.cookie("latchkey_verification").is_none());

    let me = me(&browser).await;
    let verification = &me["email_addresses"][0]["verification"];
    assert_eq!(verification["status"], "verified");
    assert_eq!(verification["strategy"], "email_code");
    assert_eq!(verification["attempts"], 2);
    assert_eq!(
        me["primary_email_address_id"],
        me["email_addresses"][0]["id"]
    );
    let updated = events_about(&app, "user.updated", &users.id).await;
    assert_eq!(updated.len(), 1, "one user.updated: the address verified");
    assert_eq!(
        updated[0]["data"]["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    assert_eq!(
        events_about(&app, "session.created", &users.id).await.len(),
        1
    );
    app_users_within_two_seconds(&app, "the verified address", |rows| {
        rows.iter()
            .any(|u| u.email.as_deref() == Some("verify@example.com") && u.email_verified)
    })
    .await;
    app.stop().await;
}

pub async fn a_taken_address_gets_the_same_answer_and_its_owner_a_notice(ctx: TestContext) {
    let app = ctx.spawn().await;
    sign_up(&app, "owner@example.com").await;
    let fresh = start_sign_up(&app, "fresh@example.com").await;
    let mut taken = start_sign_up(&app, "OWNER@example.com").await;

    // Both pages read the same but for the address typed (shown lowercased).
    let mut fresh = fresh;
    let normalize = |html: String, email: &str| {
        let html = html.replace(email, "ADDRESS");
        let token = latchkey_testkit::browser::csrf_token(&html);
        html.replace(&token, "TOKEN")
    };
    assert_eq!(
        normalize(fresh.get("/verify", 200).await.text(), "fresh@example.com"),
        normalize(taken.get("/verify", 200).await.text(), "owner@example.com")
    );
    // The owner is told, with no code to use.
    let notice = app.latest_mail_to("owner@example.com").await;
    assert!(notice.subject.contains("account"), "{notice:?}");
    assert!(notice.text.contains("already has an account"));
    assert!(notice.code().is_none());
    // Guesses at the stand-in fail like guesses at a real code.
    for remaining in (1..=4).rev() {
        let reply = enter_code(&mut taken, "123456", 422).await;
        let expected = if remaining == 1 {
            "That code is incorrect. 1 try left.".to_owned()
        } else {
            format!("That code is incorrect. {remaining} tries left.")
        };
        assert_eq!(error_text(&reply.text()), expected);
    }
    let reply = enter_code(&mut taken, "123456", 422).await;
    assert_eq!(
        error_text(&reply.text()),
        "That code is incorrect. Send a new one."
    );
    let reply = enter_code(&mut taken, "123456", 429).await;
    assert_eq!(
        error_text(&reply.text()),
        "Too many wrong codes. Send a new one."
    );
    // Nothing was created for the second sign-up.
    let count = {
        let mut tx = app.db.begin_read().await.unwrap();
        let n = latchkey_identity::users::count(&mut tx, &Default::default())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        n
    };
    assert_eq!(count, 2, "the owner and fresh@, nobody else");
    let owner = admin::find_user(&app.identity, "owner@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.emails.len(), 1);
    assert_eq!(events_about(&app, "user.created", &owner.id).await.len(), 1);
    // The owner still signs in with their own password.
    let mut again = app.browser();
    sign_in(&mut again, "owner@example.com", PASSWORD, 303).await;
    app.stop().await;
}

pub async fn a_password_sign_in_of_an_unverified_account_asks_for_its_code(ctx: TestContext) {
    let app = ctx.spawn().await;
    start_sign_up(&app, "later@example.com").await;
    let mut browser = app.browser();
    let wrong = sign_in(&mut browser, "later@example.com", "not the password", 401).await;
    assert_eq!(
        error_text(&wrong.text()),
        "The email address or password is incorrect."
    );
    let reply = sign_in(&mut browser, "later@example.com", PASSWORD, 303).await;
    assert_eq!(reply.header("location"), Some("/verify"));
    assert!(browser.cookie("__client").is_none());
    let mail = app.latest_mail_to("later@example.com").await;
    assert!(mail.subject.contains("sign-in code"), "{mail:?}");
    let page = browser.get("/verify", 200).await.text();
    assert!(page.contains("Check your email"));
    enter_code(&mut browser, &mail.code().unwrap(), 303).await;
    let me: Value = me(&browser).await;
    assert_eq!(
        me["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    // From now on the password alone signs in.
    let mut other = app.browser();
    let reply = sign_in(&mut other, "later@example.com", PASSWORD, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    app.stop().await;
}

pub async fn whoever_proves_an_unverified_address_by_code_alone_gets_the_account_without_its_password(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    // Someone signs up with an address that is not theirs and never sees its code.
    start_sign_up(&app, "owner@example.com").await;
    // The owner signs in by code, which proves the address.
    let mut owner = app.browser();
    owner
        .submit(
            "/sign-in",
            "/sign-in/code",
            &[("email_address", "owner@example.com")],
            303,
        )
        .await;
    let code = app.code_for("owner@example.com").await;
    let reply = enter_code(&mut owner, &code, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    let account = me(&owner).await;
    assert_eq!(
        account["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    assert_eq!(
        account["password_enabled"], false,
        "the password the maker chose is gone"
    );
    let user_id = account["id"].as_str().unwrap();
    let updated = events_about(&app, "user.updated", user_id).await;
    assert_eq!(
        updated.last().unwrap()["data"]["password_enabled"],
        false,
        "and the event says so"
    );

    // The maker's password no longer signs in, and looks like any wrong password.
    let mut maker = app.browser();
    let refused = sign_in(&mut maker, "owner@example.com", PASSWORD, 401).await;
    assert_eq!(
        error_text(&refused.text()),
        "The email address or password is incorrect."
    );

    // The owner sets a password of their own from the account page, without a current one.
    let page = owner.get("/user", 200).await.text();
    assert!(page.contains("Set password") && !page.contains("current_password"));
    let own = "the owner's own passphrase";
    owner
        .submit("/user", "/user/password", &[("new_password", own)], 303)
        .await;
    let mut again = app.browser();
    sign_in(&mut again, "owner@example.com", own, 303).await;
    assert_eq!(me(&again).await["password_enabled"], true);
    app.stop().await;
}
