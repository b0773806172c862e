//! Sessions: a new one on each sign-in, and the others ended by a password change or a
//! revocation.

use latchkey_testkit::browser::{Browser, csrf_token};
use latchkey_testkit::{TestApp, TestContext};
use serde_json::Value;

use super::{PASSWORD, claims, sign_in, sign_up};

pub async fn signing_in_again_issues_a_new_session_and_ends_the_old_one(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = sign_up(&app, "fixation@example.com").await;
    let first_client = browser.cookie("__client").unwrap().to_owned();
    let first_sid = claims(browser.cookie("__session").unwrap())["sid"].clone();
    // Signed-in browsers are sent away from /sign-in, so post the form directly, as a planted
    // session's victim would.
    let token = csrf_token(&browser.get("/user", 200).await.text());
    browser
        .post_form(
            "/sign-in",
            &[
                ("csrf_token", &token),
                ("email_address", "fixation@example.com"),
                ("password", PASSWORD),
            ],
            303,
        )
        .await;
    let second_sid = claims(browser.cookie("__session").unwrap())["sid"].clone();
    assert_ne!(first_sid, second_sid);
    assert_ne!(browser.cookie("__client").unwrap(), first_client);
    // The old handle no longer opens anything.
    let mut old = app.browser();
    old.cookies.insert("__client".to_owned(), first_client);
    let reply = old.get("/user", 303).await;
    assert!(reply.header("location").unwrap().starts_with("/sign-in"));
    browser.get("/user", 200).await;
    app.stop().await;
}

pub async fn a_password_change_ends_every_other_session(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut here = sign_up(&app, "change@example.com").await;
    let mut there = app.browser();
    sign_in(&mut there, "change@example.com", PASSWORD, 303).await;
    there.get("/user", 200).await;

    here.submit(
        "/user",
        "/user/password",
        &[
            ("current_password", "wrong one!"),
            ("new_password", "a brand new passphrase"),
        ],
        401,
    )
    .await;
    here.submit(
        "/user",
        "/user/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new passphrase"),
        ],
        303,
    )
    .await;
    here.get("/user", 200).await;
    let reply = there.get("/user", 303).await;
    assert!(reply.header("location").unwrap().starts_with("/sign-in"));
    // And it cannot get a fresh token either.
    there.cookies.remove("__session");
    there
        .request(reqwest::Method::POST, "/v1/client/session-token")
        .expect(401)
        .await;
    // The new password works, the old one does not.
    let mut fresh = app.browser();
    sign_in(&mut fresh, "change@example.com", PASSWORD, 401).await;
    sign_in(
        &mut fresh,
        "change@example.com",
        "a brand new passphrase",
        303,
    )
    .await;
    app.stop().await;
}

pub async fn a_revoked_session_stops_at_once_and_gets_no_new_token(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut here = sign_up(&app, "revoke@example.com").await;
    let mut there = app.browser();
    sign_in(&mut there, "revoke@example.com", PASSWORD, 303).await;
    let there_sid = claims(there.cookie("__session").unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let page = here.get("/user", 200).await;
    assert!(
        page.text().contains(&there_sid),
        "the other session is listed"
    );
    assert!(page.text().contains("Chrome on Linux") && page.text().contains("127.0.0.1"));
    here.submit(
        "/user",
        "/user/sessions/revoke",
        &[("session_id", &there_sid)],
        303,
    )
    .await;

    // The __client cookie is dead at once.
    let reply = there.get("/user", 303).await;
    assert!(reply.header("location").unwrap().starts_with("/sign-in"));
    // Without a valid __session, no new one is minted; the cookies are cleared instead.
    let mut there = app.browser();
    there
        .cookies
        .insert("__client".to_owned(), reply_client(&here, &app).await);
    let reply = there.get("/healthz", 200).await;
    assert!(
        reply
            .headers
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("__session=ey"))
    );
    here.get("/user", 200).await;
    app.stop().await;
}

/// A `__client` value that was revoked: sign in a third browser, revoke it from `owner`.
async fn reply_client(owner: &Browser, app: &TestApp) -> String {
    let mut third = app.browser();
    let email = {
        let me: Value = owner
            .request(reqwest::Method::GET, "/v1/me")
            .expect(200)
            .await
            .json();
        me["email_addresses"][0]["email_address"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    sign_in(&mut third, &email, PASSWORD, 303).await;
    let client = third.cookie("__client").unwrap().to_owned();
    let sid = claims(third.cookie("__session").unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut owner = owner.clone();
    owner
        .submit(
            "/user",
            "/user/sessions/revoke",
            &[("session_id", &sid)],
            303,
        )
        .await;
    client
}
