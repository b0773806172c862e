//! Passkeys in a real headless Chromium, with chromedriver's virtual authenticator (W3C
//! WebAuthn §11) standing in for the device's screen lock: a person signs in with a password,
//! registers a passkey on `/user`, signs out, and signs in with the passkey alone, picked from
//! the sign-in page's autofill, then in another browser with the "Sign in with a passkey"
//! button (which first says so when no device holds a passkey).

use std::time::Duration;

use latchkey_testkit::TestContext;
use latchkey_testkit::webdriver::Chrome;

use super::{create_account, spawn_on_localhost};
use crate::identity::PASSWORD;

const EMAIL: &str = "passkey-e2e@example.com";
const WAIT: Duration = Duration::from_secs(10);

pub async fn a_person_registers_a_passkey_and_signs_in_with_it_alone_in_a_real_browser(
    ctx: TestContext,
) {
    let (app, url) = spawn_on_localhost(&ctx).await;
    create_account(&app, EMAIL).await;
    let browser = Chrome::start().await;
    let authenticator = browser.add_virtual_authenticator().await;

    browser.goto(&format!("{url}/sign-in")).await;
    // The script shows the passkey button (for browsers without autofill) and asks for
    // autofill on the address field.
    browser
        .wait_for("#passkey-button:not([hidden])", WAIT)
        .await;
    assert_eq!(
        browser
            .attribute("#email_address", "autocomplete")
            .await
            .as_deref(),
        Some("username webauthn")
    );
    browser.fill("#email_address", EMAIL).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_button("Sign in").await;
    browser.wait_for_path("/", WAIT).await;

    // The script shows the form; the name typed becomes the passkey's.
    browser.goto(&format!("{url}/user")).await;
    browser
        .wait_for("#passkey-register:not([hidden])", WAIT)
        .await;
    browser.fill("#passkey_name", "This laptop").await;
    browser.click_button("Add a passkey").await;
    browser
        .wait_for(
            "tr.passkey-row, #passkey-register .passkey-error:not([hidden])",
            WAIT,
        )
        .await;
    assert_eq!(
        browser.texts("#passkey-register .passkey-error").await,
        vec![String::new()],
        "the script reported no error"
    );
    assert!(
        browser.text("p.notice").await.contains("passkey was added"),
        "{}",
        browser.source().await
    );
    let held = browser.virtual_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["rpId"], "localhost");
    assert_eq!(held[0]["isResidentCredential"], true);

    // Signing out lands on /sign-in, whose script asks for the site's passkeys for the address
    // field's autofill (conditional mediation). The virtual authenticator answers as a person
    // picking the passkey from that list: no address, no password, the passkey alone.
    browser.click_button("Sign out").await;
    browser.wait_for_path("/", WAIT).await;
    let held = browser.virtual_credentials(&authenticator).await;
    assert!(held[0]["signCount"].as_u64().unwrap() >= 1, "{held:?}");
    browser.goto(&format!("{url}/user")).await;
    let row = browser.text("tr.passkey-row").await;
    assert!(
        !row.contains("Never"),
        "the passkey's last use is shown: {row}"
    );

    // The button, for browsers without autofill, in another browser whose device holds no
    // passkey yet: pressed, it cancels the page's autofill request and says no passkey was
    // used; pressed again once the device holds the same passkey, it signs in.
    let held = browser.virtual_credentials(&authenticator).await;
    let other = Chrome::start().await;
    let second = other.add_virtual_authenticator().await;
    other.goto(&format!("{url}/sign-in")).await;
    other.wait_for("#passkey-button:not([hidden])", WAIT).await;
    other.click_button("Sign in with a passkey").await;
    other
        .wait_for("#passkey-sign-in .passkey-error:not([hidden])", WAIT)
        .await;
    assert_eq!(
        other.text("#passkey-sign-in .passkey-error").await,
        "No passkey was used."
    );
    other.add_virtual_credential(&second, &held[0]).await;
    assert_eq!(other.path().await, "/sign-in");
    other.click_button("Sign in with a passkey").await;
    other.wait_for_path("/", WAIT).await;
    other.goto(&format!("{url}/user")).await;
    assert!(other.text("tr.passkey-row").await.contains("This laptop"));
}
