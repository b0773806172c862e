//! The pages in a real headless Chromium: what a person does from sign-up to account deletion.

use std::time::Duration;

use latchkey_testkit::TestContext;
use latchkey_testkit::webdriver::Chrome;

use crate::identity::PASSWORD;

const EMAIL: &str = "e2e@example.com";
const WAIT: Duration = Duration::from_secs(10);

async fn sign_in(browser: &Chrome, url: &str) {
    browser.goto(&format!("{url}/sign-in")).await;
    browser.fill("#email_address", EMAIL).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_button("Sign in").await;
}

pub async fn a_person_signs_up_manages_and_deletes_their_account_in_a_real_browser(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    let browser = Chrome::start().await;

    browser.goto(&format!("{}/sign-up", app.url)).await;
    browser.fill("#email_address", EMAIL).await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#first_name", "Ada").await;
    browser.fill("#last_name", "Lovelace").await;
    browser.click_button("Create account").await;
    browser.wait_for_path("/", WAIT).await;

    browser.goto(&format!("{}/user", app.url)).await;
    assert_eq!(browser.text("h1").await, "Your account");
    assert!(
        browser
            .text("main")
            .await
            .contains(&format!("Signed in as {EMAIL}")),
        "the account page names the signed-in address"
    );
    let sessions = browser.texts("table tbody tr").await;
    assert!(
        sessions.iter().any(|row| row.contains("Chrome on Linux")),
        "the sessions table lists this browser: {sessions:?}"
    );

    browser.fill("#first_name", "Augusta").await;
    browser.click_button("Save profile").await;
    browser.wait_for("p.notice", WAIT).await;
    assert_eq!(browser.text("p.notice").await, "Your profile was saved.");
    assert_eq!(
        browser.attribute("#first_name", "value").await.as_deref(),
        Some("Augusta")
    );

    browser.click_button("Sign out").await;
    browser.wait_for_path("/sign-in", WAIT).await;
    assert_eq!(browser.text("p.notice").await, "You are signed out.");

    sign_in(&browser, &app.url).await;
    browser.wait_for_path("/", WAIT).await;
    browser.goto(&format!("{}/user", app.url)).await;
    assert_eq!(browser.path().await, "/user");
    assert_eq!(browser.text("h1").await, "Your account");

    browser.fill("#confirmation", "DELETE").await;
    browser.click_button("Delete my account").await;
    browser.wait_for_path("/sign-in", WAIT).await;
    assert_eq!(browser.text("p.notice").await, "Your account was deleted.");

    sign_in(&browser, &app.url).await;
    browser.wait_for("#form-error", WAIT).await;
    assert_eq!(
        browser.text("#form-error").await,
        "The email address or password is incorrect."
    );
    drop(browser);
    app.stop().await;
}
