//! Connected accounts on `/user`: connecting another provider to a signed-in account,
//! disconnecting one, step-up for both, never the last way in, and no identity on two accounts.

use latchkey_testkit::TestContext;
use latchkey_testkit::browser::{Browser, csrf_token};
use latchkey_testkit::oidc::{Person, StandInProvider};

use super::{at_provider, me, sign_in_with_provider, spawn, user_json};
use crate::bapi::secret_key;
use crate::identity::sign_up;

/// Presses "Connect Stand-in ID" on `/user`, expecting `status`; the redirect's target.
async fn press_connect(browser: &mut Browser, status: u16) -> Option<String> {
    let page = browser.get("/user", 200).await.text();
    assert!(page.contains("Connect Stand-in ID"), "{page}");
    let token = csrf_token(&page);
    let reply = browser
        .post_form(
            "/user/connections",
            &[("csrf_token", &token), ("provider", "custom_standin")],
            status,
        )
        .await;
    reply.header("location").map(str::to_owned)
}

/// Presses "Disconnect …" for `account_id` on `/user`, expecting `status`.
async fn press_disconnect(browser: &mut Browser, account_id: &str, status: u16) -> String {
    let page = browser.get("/user", 200).await.text();
    let token = csrf_token(&page);
    browser
        .post_form(
            "/user/connections/remove",
            &[("csrf_token", &token), ("account_id", account_id)],
            status,
        )
        .await
        .text()
}

pub async fn people_connect_and_disconnect_providers_from_their_account_page(ctx: TestContext) {
    let provider = StandInProvider::start(Person::verified("sub-c1", "other@example.com")).await;
    let app = spawn(&ctx, &provider).await;
    let key = secret_key(&app).await;
    let mut owner = sign_up(&app, "connector@example.com").await;
    let owner_id = me(&mut owner).await;

    let authorize = press_connect(&mut owner, 303).await.unwrap();
    let callback = at_provider(&app, &authorize).await;
    let reply = owner.get(&callback, 303).await;
    assert_eq!(reply.header("location"), Some("/user?notice=connected"));
    let user = user_json(&app, &key, &owner_id).await;
    let account = user["external_accounts"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(user["external_accounts"][0]["provider_user_id"], "sub-c1");
    let page = owner.get("/user", 200).await.text();
    assert!(page.contains("Disconnect Stand-in ID") && !page.contains("Connect Stand-in ID"));
    // Signing in with the provider now opens this account.
    let mut elsewhere = app.browser();
    sign_in_with_provider(&app, &mut elsewhere, "", 303).await;
    assert_eq!(me(&mut elsewhere).await, owner_id);

    // The same identity cannot be connected to a second account.
    let mut second = sign_up(&app, "second-connector@example.com").await;
    let authorize = press_connect(&mut second, 303).await.unwrap();
    let callback = at_provider(&app, &authorize).await;
    let page = second.get(&callback, 409).await.text();
    assert!(
        page.contains("already connected to another account"),
        "{page}"
    );

    // A round trip to connect that comes back after its account signed out links nothing.
    let mut third = sign_up(&app, "third-connector@example.com").await;
    provider.set_person(Person::verified("sub-c3", "third@example.com"));
    let authorize = press_connect(&mut third, 303).await.unwrap();
    let callback = at_provider(&app, &authorize).await;
    third.submit("/user", "/sign-out", &[], 303).await;
    third.get(&callback, 400).await;
    let third_id =
        latchkey_identity::flows::admin::find_user(&app.identity, "third-connector@example.com")
            .await
            .unwrap()
            .unwrap()
            .id;
    assert_eq!(
        user_json(&app, &key, &third_id).await["external_accounts"],
        serde_json::json!([])
    );

    // The last way into an account (no password, no verified address) stays.
    provider.set_person(Person {
        email: None,
        email_verified: None,
        ..Person::verified("sub-c4", "")
    });
    let mut only = app.browser();
    sign_in_with_provider(&app, &mut only, "", 303).await;
    let only_id = me(&mut only).await;
    let only_account = user_json(&app, &key, &only_id).await["external_accounts"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = press_disconnect(&mut only, &only_account, 409).await;
    assert!(page.contains("last way to sign in"), "{page}");
    assert_eq!(
        user_json(&app, &key, &only_id).await["external_accounts"][0]["id"],
        only_account.as_str()
    );

    // Disconnecting is a sensitive change: it needs a factor proved within 10 minutes.
    app.clock().advance(std::time::Duration::from_secs(11 * 60));
    press_disconnect(&mut owner, &account, 403).await;
    owner
        .submit(
            "/user",
            "/user/reverify",
            &[("password", crate::identity::PASSWORD)],
            303,
        )
        .await;
    press_disconnect(&mut owner, &account, 303).await;
    assert_eq!(
        user_json(&app, &key, &owner_id).await["external_accounts"],
        serde_json::json!([])
    );
    // Connecting is one too.
    app.clock().advance(std::time::Duration::from_secs(11 * 60));
    press_connect(&mut owner, 403).await;

    app.stop().await;
}
