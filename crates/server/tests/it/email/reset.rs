//! Signing in by code and resetting a password: both work end to end, and neither tells an
//! address with an account from one without.

use latchkey_testkit::TestContext;
use latchkey_testkit::browser::Browser;

use super::{error_text, me, outbox_rows};
use crate::bapi::events_about;
use crate::identity::{PASSWORD, enter_code, sign_in, sign_up};

/// The page with the address and the CSRF token blanked, for comparing two answers.
fn normalized(html: &str, email: &str) -> String {
    let token = latchkey_testkit::browser::csrf_token(html);
    html.replace(email, "ADDRESS").replace(&token, "TOKEN")
}

async fn ask(
    app: &latchkey_testkit::TestApp,
    form: &str,
    field_page: &str,
    email: &str,
) -> (Browser, String) {
    let mut browser = app.browser();
    let reply = browser
        .submit(field_page, form, &[("email_address", email)], 303)
        .await;
    let location = reply.header("location").unwrap().to_owned();
    let page = browser.get(&location, 200).await.text();
    (browser, normalized(&page, email))
}

pub async fn sign_in_by_code_works_and_answers_unknown_addresses_alike(ctx: TestContext) {
    let app = ctx.spawn().await;
    sign_up(&app, "code@example.com").await;
    let mails_before = app.mailbox().await.len();

    let (mut known, known_page) = ask(&app, "/sign-in/code", "/sign-in", "code@example.com").await;
    let (mut unknown, unknown_page) =
        ask(&app, "/sign-in/code", "/sign-in", "nobody@example.com").await;
    assert_eq!(known_page, unknown_page, "the two answers read the same");
    assert!(known_page.contains("If this address has an account, we sent it a 6-digit code"));
    let mailbox = app.mailbox().await;
    assert_eq!(
        mailbox.len(),
        mails_before + 1,
        "only the known address got mail"
    );
    assert!(mailbox.iter().all(|m| m.to != "nobody@example.com"));
    // The unknown address's request wrote a mail row too (the same statements, so the same
    // time), withheld: never sent, never shown, no body.
    assert_eq!(
        outbox_rows(&app, "nobody@example.com").await,
        vec![("withheld".to_owned(), 0, String::new())]
    );
    assert_eq!(outbox_rows(&app, "code@example.com").await.len(), 2);

    let code = app.code_for("code@example.com").await;
    let refused = enter_code(&mut unknown, &code, 422).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused_known = enter_code(&mut known, wrong, 422).await;
    assert_eq!(
        error_text(&refused.text()),
        error_text(&refused_known.text())
    );
    let reply = enter_code(&mut known, &code, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    let me = me(&known).await;
    assert_eq!(
        me["email_addresses"][0]["email_address"],
        "code@example.com"
    );
    assert_eq!(
        events_about(&app, "session.created", me["id"].as_str().unwrap())
            .await
            .len(),
        2
    );
    app.stop().await;
}

pub async fn a_password_reset_ends_every_session_and_tells_nobody_who_has_an_account(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    let mut here = sign_up(&app, "reset@example.com").await;
    let mut there = app.browser();
    sign_in(&mut there, "reset@example.com", PASSWORD, 303).await;
    let user_id = me(&here).await["id"].as_str().unwrap().to_owned();
    let mails_before = app.mailbox().await.len();

    let (mut known, known_page) = ask(
        &app,
        "/forgot-password",
        "/forgot-password",
        "reset@example.com",
    )
    .await;
    let (mut unknown, unknown_page) = ask(
        &app,
        "/forgot-password",
        "/forgot-password",
        "stranger@example.com",
    )
    .await;
    assert_eq!(known_page, unknown_page, "the two answers read the same");
    assert_eq!(app.mailbox().await.len(), mails_before + 1);
    let mail = app.latest_mail_to("reset@example.com").await;
    assert!(mail.subject.contains("Reset your"), "{mail:?}");
    assert!(mail.text.contains("expires in 30 minutes"));
    let code = mail.code().unwrap();

    // A weak password is refused before the code is checked, and costs no attempt.
    let weak = known
        .submit(
            "/reset-password",
            "/reset-password",
            &[("code", &code), ("password", "password123")],
            422,
        )
        .await;
    assert!(
        error_text(&weak.text()).contains("common"),
        "{}",
        weak.text()
    );
    let new_password = "a fresh reset passphrase";
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = known
        .submit(
            "/reset-password",
            "/reset-password",
            &[("code", wrong), ("password", new_password)],
            422,
        )
        .await;
    assert_eq!(
        error_text(&refused.text()),
        "That code is incorrect. 4 tries left."
    );
    let refused_unknown = unknown
        .submit(
            "/reset-password",
            "/reset-password",
            &[("code", &code), ("password", new_password)],
            422,
        )
        .await;
    assert_eq!(
        error_text(&refused_unknown.text()),
        "That code is incorrect. 4 tries left."
    );
    // A reset code does not sign in.
    let token = super::token_of(&mut known, "/reset-password").await;
    let reply = known
        .post_form("/verify", &[("csrf_token", &token), ("code", &code)], 303)
        .await;
    assert_eq!(reply.header("location"), Some("/sign-in"));
    assert!(known.cookie("__client").is_none());

    let reply = known
        .submit(
            "/reset-password",
            "/reset-password",
            &[("code", &code), ("password", new_password)],
            303,
        )
        .await;
    assert_eq!(
        reply.header("location"),
        Some("/sign-in?notice=password_reset")
    );
    here.get("/user", 303).await;
    there.get("/user", 303).await;
    assert_eq!(
        events_about(&app, "session.revoked", &user_id).await.len(),
        2
    );
    let updated = events_about(&app, "user.updated", &user_id).await;
    assert!(updated.last().unwrap()["data"]["password_last_updated_at"].is_i64());

    let mut fresh = app.browser();
    sign_in(&mut fresh, "reset@example.com", PASSWORD, 401).await;
    sign_in(&mut fresh, "reset@example.com", new_password, 303).await;
    app.stop().await;
}

pub async fn the_spelling_of_a_typed_address_tells_nothing(ctx: TestContext) {
    let app = ctx.spawn().await;
    sign_up(&app, "Mixed.Case@Example.com").await;
    for (form, field_page) in [
        ("/sign-in/code", "/sign-in"),
        ("/forgot-password", "/forgot-password"),
    ] {
        // The account stored one spelling; the request types another. A page that echoed the
        // stored one would tell that the account exists.
        let (_, known) = ask(&app, form, field_page, "mIXED.cASE@example.COM").await;
        let (_, unknown) = ask(&app, form, field_page, "nO.oNE@example.COM").await;
        assert!(known.contains("mixed.case@example.com"), "{known}");
        assert!(!known.contains("Mixed.Case@Example.com"), "{form}");
        assert_eq!(
            known.replace("mixed.case@example.com", "ADDRESS"),
            unknown.replace("no.one@example.com", "ADDRESS"),
            "{form}: the two answers read the same"
        );
    }
    app.stop().await;
}
