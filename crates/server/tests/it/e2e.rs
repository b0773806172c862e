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

/// Signs up as Ada Lovelace with [`EMAIL`], reads the mailed code at `/dev/mailbox` as a
/// developer would in the default run, enters it, and lands signed in on `/`.
async fn sign_up(browser: &Chrome, url: &str) {
    browser.goto(&format!("{url}/sign-up")).await;
    browser.fill("#email_address", EMAIL).await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#first_name", "Ada").await;
    browser.fill("#last_name", "Lovelace").await;
    browser.click_button("Create account").await;
    browser.wait_for_path("/verify", WAIT).await;
    assert_eq!(browser.text("h1").await, "Verify your email address");
    assert_eq!(browser.text("strong.email").await, EMAIL);

    browser.goto(&format!("{url}/dev/mailbox")).await;
    assert_eq!(browser.text("h1").await, "Dev mailbox");
    // Newest first: the sign-up's code.
    assert_eq!(browser.text("article.mail .mail-to").await, EMAIL);
    let text = browser.text("article.mail pre.mail-text").await;
    let code = latchkey_testkit::smtp::first_code(&text)
        .unwrap_or_else(|| panic!("the mail carries a code: {text}"));

    browser.goto(&format!("{url}/verify")).await;
    browser.fill("#code", &code).await;
    browser.click_button("Verify and continue").await;
    browser.wait_for_path("/", WAIT).await;
}

/// Deletes the account from `/user` (where `browser` is), is signed out with a notice, and
/// cannot sign in again.
async fn delete_the_account_for_good(browser: &Chrome, url: &str) {
    browser.fill("#confirmation", "DELETE").await;
    browser.click_button("Delete my account").await;
    browser.wait_for_path("/sign-in", WAIT).await;
    assert_eq!(browser.text("p.notice").await, "Your account was deleted.");

    sign_in(browser, url).await;
    browser.wait_for("#form-error", WAIT).await;
    assert_eq!(
        browser.text("#form-error").await,
        "The email address or password is incorrect."
    );
}

/// The page's computed background colour.
async fn background(browser: &Chrome) -> String {
    browser
        .execute(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await
        .as_str()
        .expect("a colour")
        .to_owned()
}

pub async fn a_person_signs_up_manages_and_deletes_their_account_in_a_real_browser(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    let browser = Chrome::start().await;
    sign_up(&browser, &app.url).await;
    // The app's users table learns of the verified address through user.updated.
    let started = std::time::Instant::now();
    while !app
        .app_users()
        .await
        .iter()
        .any(|u| u.email.as_deref() == Some(EMAIL) && u.email_verified)
    {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the verified address reaches the app within 2 s: {:?}",
            app.app_users().await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

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

    delete_the_account_for_good(&browser, &app.url).await;
    drop(browser);
    app.stop().await;
}

/// The app's pages in a real browser: the header's user button, the dashboard, a theme that
/// takes effect, a note, signing out and in again, and an account deletion that sticks.
pub async fn a_person_uses_the_apps_dashboard_settings_and_notes_in_a_real_browser(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    let browser = Chrome::start().await;
    browser.goto(&format!("{}/", app.url)).await;
    assert_eq!(browser.text("#sign-in-button").await, "Sign in");

    sign_up(&browser, &app.url).await;
    assert!(
        browser.texts("#sign-in-button").await.is_empty(),
        "no Sign in button once signed in"
    );
    assert_eq!(browser.text("#user-button .avatar").await, "AL");
    assert_eq!(
        browser.text("#user-name").await,
        "",
        "the menu starts closed"
    );
    browser.click("#user-button summary").await;
    assert_eq!(browser.text("#user-name").await, "Ada Lovelace");
    assert_eq!(browser.text("#user-email").await, EMAIL);

    browser.goto(&format!("{}/dashboard", app.url)).await;
    assert_eq!(browser.text("h1").await, "Dashboard");
    assert_eq!(browser.text("#profile-email").await, EMAIL);
    assert_eq!(browser.text("#profile-name").await, "Ada Lovelace");

    // Chromium's headless default is a light colour scheme, so "system" renders light.
    let light = background(&browser).await;
    browser
        .goto(&format!("{}/dashboard/settings", app.url))
        .await;
    browser.click("#theme option[value='dark']").await;
    browser.click_button("Save settings").await;
    browser.wait_for("p.notice", WAIT).await;
    assert_eq!(
        browser.attribute("html", "data-theme").await.as_deref(),
        Some("dark")
    );
    let dark = background(&browser).await;
    assert_eq!(dark, "rgb(19, 20, 23)", "the dark palette is applied");
    assert_ne!(dark, light);
    browser.goto(&format!("{}/dashboard", app.url)).await;
    assert_eq!(
        background(&browser).await,
        dark,
        "the theme follows the user to every page"
    );

    browser.goto(&format!("{}/dashboard/notes", app.url)).await;
    assert_eq!(browser.text("#no-notes").await, "No notes yet.");
    browser.fill("#title", "Groceries").await;
    browser.fill("#body", "Flour, eggs <b>and</b> milk").await;
    browser.click_button("Add note").await;
    browser.wait_for("#notes li.note", WAIT).await;
    assert_eq!(browser.text("#notes .note-title").await, "Groceries");
    assert_eq!(
        browser.text("#notes .note-body").await,
        "Flour, eggs <b>and</b> milk",
        "note text is shown as text, never as markup"
    );
    browser.goto(&format!("{}/api/me", app.url)).await;
    let me: serde_json::Value =
        serde_json::from_str(&browser.text("body").await).expect("/api/me answers JSON");
    assert_eq!(me["note_count"], 1);
    assert_eq!(me["preferences"]["theme"], "dark");

    browser.goto(&format!("{}/dashboard", app.url)).await;
    browser.click("#user-button summary").await;
    browser.click_button("Sign out").await;
    browser.wait_for_path("/sign-in", WAIT).await;
    browser.goto(&format!("{}/", app.url)).await;
    assert_eq!(browser.text("#sign-in-button").await, "Sign in");
    browser.goto(&format!("{}/dashboard", app.url)).await;
    assert_eq!(
        browser.path().await,
        "/sign-in",
        "the dashboard needs a session"
    );

    assert!(
        browser
            .current_url()
            .await
            .ends_with("/sign-in?redirect_url=%2Fdashboard"),
        "sent to sign in with the way back"
    );
    // Signing in on that page returns to the dashboard.
    browser.fill("#email_address", EMAIL).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_button("Sign in").await;
    browser.wait_for_path("/dashboard", WAIT).await;
    assert_eq!(browser.text("#profile-email").await, EMAIL);
    assert_eq!(background(&browser).await, dark);

    browser.goto(&format!("{}/user", app.url)).await;
    delete_the_account_for_good(&browser, &app.url).await;
    drop(browser);
    app.stop().await;
}
