//! Second factors in a real headless Chromium: a person enrols an authenticator app from the
//! page (codes computed by otplib from the secret the page shows), signs out, cannot sign in
//! with the password alone, signs in with password + code, then with a backup code.

use std::time::Duration;

use latchkey_identity::flows::admin::{self, CreateUser};
use latchkey_identity::passwords::Password;
use latchkey_testkit::TestContext;
use latchkey_testkit::webdriver::Chrome;

use super::{STEP, code_now};
use crate::identity::PASSWORD;

const EMAIL: &str = "totp-e2e@example.com";
const WAIT: Duration = Duration::from_secs(10);

async fn sign_in_with_password(browser: &Chrome, url: &str) {
    browser.goto(&format!("{url}/sign-in")).await;
    browser.fill("#email_address", EMAIL).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_button("Sign in").await;
}

pub async fn a_person_enrols_an_authenticator_app_and_signs_in_with_it_in_a_real_browser(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    admin::create_user(
        &app.identity,
        CreateUser {
            email_address: Some(EMAIL.to_owned()),
            password: Some(Password::new(PASSWORD.to_owned())),
            ..CreateUser::default()
        },
    )
    .await
    .unwrap();
    let browser = Chrome::start().await;
    sign_in_with_password(&browser, &app.url).await;
    browser.wait_for_path("/", WAIT).await;

    browser.goto(&format!("{}/user", app.url)).await;
    assert!(browser.text("#mfa-status").await.starts_with("Off."));
    browser.click_button("Set up an authenticator app").await;
    browser.wait_for_path("/user/mfa/totp", WAIT).await;
    let size = browser
        .execute(
            "const r = document.querySelector('figure.qr svg').getBoundingClientRect(); return [r.width, r.height]",
            vec![],
        )
        .await;
    assert!(
        size[0].as_f64().unwrap() >= 200.0 && size[1].as_f64().unwrap() >= 200.0,
        "the QR code is drawn: {size}"
    );
    let secret = browser.text("#totp-secret").await;
    browser.fill("#code", &code_now(&app, &secret).await).await;
    browser.click_button("Turn on").await;
    browser.wait_for("ul.backup-codes", WAIT).await;
    let codes = browser.texts("ul.backup-codes code").await;
    assert_eq!(codes.len(), 10, "{codes:?}");

    browser.goto(&format!("{}/user", app.url)).await;
    assert_eq!(browser.text("#backup-codes-left").await, "10");
    browser.click_button("Sign out").await;
    browser.wait_for_path("/sign-in", WAIT).await;

    // The password alone leads to the second step, not into the account.
    sign_in_with_password(&browser, &app.url).await;
    browser.wait_for_path("/sign-in/factor", WAIT).await;
    assert_eq!(browser.text("h1").await, "Two-step verification");
    browser.goto(&format!("{}/user", app.url)).await;
    browser.wait_for_path("/sign-in", WAIT).await;

    // Password + a fresh code.
    sign_in_with_password(&browser, &app.url).await;
    browser.wait_for_path("/sign-in/factor", WAIT).await;
    app.clock().advance(STEP);
    browser.fill("#code", &code_now(&app, &secret).await).await;
    browser.click_button("Verify").await;
    browser.wait_for_path("/", WAIT).await;
    browser.goto(&format!("{}/user", app.url)).await;
    assert_eq!(browser.path().await, "/user");
    browser.click_button("Sign out").await;
    browser.wait_for_path("/sign-in", WAIT).await;

    // Password + a backup code; then one fewer is left.
    sign_in_with_password(&browser, &app.url).await;
    browser.wait_for_path("/sign-in/factor", WAIT).await;
    browser.fill("#code", &codes[0]).await;
    browser.click_button("Verify").await;
    browser.wait_for_path("/", WAIT).await;
    browser.goto(&format!("{}/user", app.url)).await;
    assert_eq!(browser.text("#backup-codes-left").await, "9");
    drop(browser);
    app.stop().await;
}
