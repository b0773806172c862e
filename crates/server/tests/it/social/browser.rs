//! Social sign-in in a real headless Chromium against `oidc-provider` from npm (panva's
//! certified OpenID Connect provider, which no one on the project wrote), configured only
//! through latchkey's documented settings for a generic provider: a person asks for the
//! dashboard, presses "Continue with …", signs in and consents at the provider, and lands
//! signed in on the dashboard with the provider's avatar; signs out and in again into the same
//! account; the app's users table has them within 2 s and the User JSON carries the external
//! account as Clerk renders it.

use std::time::Duration;

use latchkey_testkit::TestContext;
use latchkey_testkit::interop;
use latchkey_testkit::webdriver::Chrome;
use reqwest::Method;
use serde_json::Value;

use crate::bapi::{call, secret_key};
use crate::support::app_users_within_two_seconds;

const WAIT: Duration = Duration::from_secs(15);
const CLIENT_ID: &str = "latchkey-browser-test";
const CLIENT_SECRET: &str = "a-client-secret-for-the-browser-test";

/// Goes through the provider's pages if it shows them (its sign-in form, then its consent);
/// a provider that remembers the person and the grant sends the browser straight back.
async fn through_the_provider(browser: &Chrome, provider: &str, app: &str, login: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    // First away from the sign-in page (to the provider, which may send the browser straight
    // back if it remembers the person).
    while browser
        .current_url()
        .await
        .starts_with(&format!("{app}/sign-in"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never left the sign-in page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let url = browser.current_url().await;
        if url.starts_with(app) {
            return;
        }
        // Act only on a page that stays put (a redirect may be under way).
        tokio::time::sleep(Duration::from_millis(150)).await;
        let source = browser.source().await;
        if browser.current_url().await != url {
            continue;
        }
        if url.starts_with(provider) {
            if source.contains("name=\"login\"") {
                browser.fill("input[name=login]", login).await;
                browser
                    .fill("input[name=password]", "any password will do")
                    .await;
                browser.click_button("Sign-in").await;
                continue;
            }
            if source.contains(">Continue</button>") {
                browser.click_button("Continue").await;
                continue;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck at {url}: {}",
            browser.source().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn a_person_signs_up_and_in_again_with_an_openid_provider_in_a_real_browser(
    ctx: TestContext,
) {
    let mut provider = interop::serve("oidc-provider.mjs", &[CLIENT_ID, CLIENT_SECRET]).await;
    let issuer = provider.ready.clone();
    let settings = super::custom_provider(&issuer, CLIENT_ID, CLIENT_SECRET);
    let app = ctx.spawn_with(|config| config.oauth = vec![settings]).await;
    let redirect_uri = format!("{}/v1/oauth_callback", app.url);
    assert_eq!(provider.tell(&redirect_uri).await, "CONFIGURED");
    let key = secret_key(&app).await;

    let browser = Chrome::start().await;
    browser.goto(&format!("{}/dashboard", app.url)).await;
    browser.wait_for_path("/sign-in", WAIT).await;
    browser.click_button("Continue with Stand-in ID").await;
    through_the_provider(&browser, &issuer, &app.url, "grace").await;
    browser.wait_for_path("/dashboard", WAIT).await;
    assert_eq!(
        browser.attribute(".avatar img", "src").await.as_deref(),
        Some("https://images.example.com/grace.png"),
        "the header shows the provider's avatar"
    );

    app_users_within_two_seconds(&app, "the new user", |users| {
        users.iter().any(|u| {
            u.email.as_deref() == Some("grace@example.com")
                && u.email_verified
                && u.first_name.as_deref() == Some("Grace")
                && u.image_url.as_deref() == Some("https://images.example.com/grace.png")
        })
    })
    .await;
    let id = app.app_users().await[0].clerk_user_id.clone();
    let user: Value = call(&app, Method::GET, &format!("/v1/users/{id}"), &key)
        .expect(200)
        .await
        .json();
    let account = &user["external_accounts"][0];
    assert_eq!(account["provider"], "oauth_custom_standin");
    assert_eq!(account["provider_user_id"], "grace");
    assert_eq!(account["email_address"], "grace@example.com");
    assert_eq!(account["verification"]["strategy"], "oauth_custom_standin");
    assert_eq!(account["verification"]["status"], "verified");
    assert!(
        account["approved_scopes"]
            .as_str()
            .is_some_and(|s| s.split(' ').any(|s| s == "email")),
        "{account}"
    );

    // Out, and in again: the same account.
    browser.goto(&format!("{}/user", app.url)).await;
    browser.click_button("Sign out").await;
    browser.wait_for_path("/sign-in", WAIT).await;
    browser.goto(&format!("{}/dashboard", app.url)).await;
    browser.wait_for_path("/sign-in", WAIT).await;
    browser.click_button("Continue with Stand-in ID").await;
    through_the_provider(&browser, &issuer, &app.url, "grace").await;
    browser.wait_for_path("/dashboard", WAIT).await;
    assert_eq!(app.app_users().await.len(), 1, "no second account");
    let me: Value = {
        browser.goto(&format!("{}/v1/me", app.url)).await;
        let text = browser.text("body").await;
        serde_json::from_str(&text).unwrap()
    };
    assert_eq!(me["id"], id.as_str());
    app.stop().await;
}
