//! Changing addresses on `/user`: add, verify with a code, make primary (the old address is
//! told), remove; every step in `user.updated`; an address someone else holds reveals nothing.

use latchkey_testkit::TestContext;

use super::{error_text, me};
use crate::bapi::events_about;
use crate::identity::{PASSWORD, sign_in, sign_up};
use crate::support::app_users_within_two_seconds;
use latchkey_identity::flows::admin;

/// The `/user` page's entry for an added address waiting for its code.
fn pending_block<'a>(page: &'a str, address: &str) -> &'a str {
    let label = page
        .find(&format!("Code sent to {address}"))
        .unwrap_or_else(|| panic!("{address} is listed as waiting: {page}"));
    let block = &page[page[..label]
        .rfind("<div class=\"pending-email\">")
        .unwrap()..];
    &block[..block.find("</div>\n    </div>").unwrap()]
}

fn verification_id(page: &str, address: &str) -> String {
    latchkey_testkit::browser::hidden_field(pending_block(page, address), "verification_id")
        .unwrap()
}

pub async fn an_added_address_is_verified_made_primary_and_the_old_one_is_told(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = sign_up(&app, "old@example.com").await;
    let user_id = me(&browser).await["id"].as_str().unwrap().to_owned();
    let updates = || async { events_about(&app, "user.updated", &user_id).await };
    assert_eq!(updates().await.len(), 1, "the sign-up's verification");

    let reply = browser
        .submit(
            "/user",
            "/user/emails",
            &[("email_address", "New@Example.com")],
            303,
        )
        .await;
    assert_eq!(reply.header("location"), Some("/user?notice=email_added"));
    let added = updates().await;
    assert_eq!(added.len(), 2);
    let emails = &added[1]["data"]["email_addresses"];
    assert_eq!(emails[1]["email_address"], "New@Example.com");
    assert_eq!(emails[1]["verification"]["status"], "unverified");
    assert_eq!(emails[1]["verification"]["strategy"], "email_code");

    let page = browser.get("/user", 200).await.text();
    assert!(page.contains("Code sent to New@Example.com"), "{page}");
    let verification_id = verification_id(&page, "New@Example.com");
    let code = app.code_for("New@Example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = browser
        .submit(
            "/user",
            "/user/emails/verify",
            &[("verification_id", &verification_id), ("code", wrong)],
            422,
        )
        .await;
    assert_eq!(
        error_text(&refused.text()),
        "That code is incorrect. 4 tries left."
    );
    browser
        .submit(
            "/user",
            "/user/emails/verify",
            &[("verification_id", &verification_id), ("code", &code)],
            303,
        )
        .await;
    let verified = updates().await;
    assert_eq!(verified.len(), 3);
    let emails = &verified[2]["data"]["email_addresses"];
    assert_eq!(emails[1]["verification"]["status"], "verified");
    assert_eq!(emails[1]["verification"]["attempts"], 2);

    let me_now = me(&browser).await;
    let new_id = me_now["email_addresses"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_id = me_now["email_addresses"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = browser
        .submit(
            "/user",
            "/user/emails/primary",
            &[("email_id", &new_id)],
            303,
        )
        .await;
    assert_eq!(
        reply.header("location"),
        Some("/user?notice=primary_changed")
    );
    let primary = updates().await;
    assert_eq!(primary.len(), 4);
    assert_eq!(
        primary[3]["data"]["primary_email_address_id"],
        new_id.as_str()
    );
    let told = app.latest_mail_to("old@example.com").await;
    assert!(
        told.subject.contains("email address was changed"),
        "{told:?}"
    );
    assert!(
        !told.text.contains("New@Example.com"),
        "the old address is not told the new one"
    );
    app_users_within_two_seconds(&app, "the new primary address", |rows| {
        rows.iter()
            .any(|u| u.email.as_deref() == Some("New@Example.com") && u.email_verified)
    })
    .await;

    // The new address signs in; the primary one cannot be removed; the old one can.
    let mut other = app.browser();
    sign_in(&mut other, "new@example.com", PASSWORD, 303).await;
    browser
        .submit(
            "/user",
            "/user/emails/remove",
            &[("email_id", &new_id)],
            422,
        )
        .await;
    browser
        .submit(
            "/user",
            "/user/emails/remove",
            &[("email_id", &old_id)],
            303,
        )
        .await;
    let removed = updates().await;
    assert_eq!(removed.len(), 5);
    assert_eq!(
        removed[4]["data"]["email_addresses"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let mut gone = app.browser();
    sign_in(&mut gone, "old@example.com", PASSWORD, 401).await;
    app.stop().await;
}

pub async fn adding_an_address_someone_holds_looks_like_adding_a_free_one(ctx: TestContext) {
    let app = ctx.spawn().await;
    sign_up(&app, "holder@example.com").await;
    let mut adder = sign_up(&app, "adder@example.com").await;
    let before = app.mailbox().await.len();

    adder
        .submit(
            "/user",
            "/user/emails",
            &[("email_address", "holder@example.com")],
            303,
        )
        .await;
    adder
        .submit(
            "/user",
            "/user/emails",
            &[("email_address", "free@example.com")],
            303,
        )
        .await;
    let page = adder.get("/user", 200).await.text();
    let entry = |address: &str| {
        pending_block(&page, address)
            .replace(address, "ADDRESS")
            .replace(&verification_id(&page, address), "ID")
    };
    assert_eq!(entry("holder@example.com"), entry("free@example.com"));
    let mail = app.mailbox().await;
    assert_eq!(mail.len(), before + 1, "only the free address was mailed");
    assert_eq!(mail[0].to, "free@example.com");

    // The holder's account is untouched, and the stand-in can be withdrawn like any entry.
    let holder = admin::find_user(&app.identity, "holder@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holder.emails.len(), 1);
    let id = verification_id(&page, "holder@example.com");
    adder
        .submit(
            "/user",
            "/user/emails/cancel",
            &[("verification_id", &id)],
            303,
        )
        .await;
    let page = adder.get("/user", 200).await.text();
    assert!(!page.contains("Code sent to holder@example.com"));
    assert!(page.contains("Code sent to free@example.com"));
    app.stop().await;
}
