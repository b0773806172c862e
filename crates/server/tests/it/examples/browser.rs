//! The example apps' browser half in headless Chromium, through Clerk's own components
//! (clerk-js 5 with its UI on Core 2; clerk-js 6 with `@clerk/ui` 1 on Core 3), served by
//! latchkey and talking to its Frontend API under `/fapi/v1/…` on the app's origin: sign up
//! with email, password and the mailed code; the user button; "Manage account" to change the
//! first name, add and verify a second address and change the password; sign out; sign in by
//! password and by emailed code; the protected dashboard rendered by `auth()`; the webhook
//! route's row; and a session token refreshed by clerk-js with no reload.

use std::time::{Duration, Instant};

use latchkey_testkit::nextjs::{self, Example, FrontDoor};
use latchkey_testkit::webdriver::Chrome;
use latchkey_testkit::{TestApp, TestContext};
use reqwest::Method;
use serde_json::Value;

use super::{
    FRONTEND_HOST, RunningExample, signed_up_row_within, start_example, stored_row_within,
};
use crate::bapi::call;

/// How long a step may take: generous, as two Chromiums, a Next.js server and latchkey share
/// two cores with the rest of the suite.
const WAIT: Duration = Duration::from_secs(30);

/// One journey at a time in a test run: a second browser and app beside the first starve both
/// on a two-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The browser, and what latchkey was asked through the front door (for failure messages).
struct Page {
    browser: Chrome,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl std::ops::Deref for Page {
    type Target = Chrome;
    fn deref(&self) -> &Chrome {
        &self.browser
    }
}
const PASSWORD: &str = "correct horse battery staple 1";
const NEW_PASSWORD: &str = "another long passphrase 2";

/// Waits until `css` matches and takes a click.
async fn click(browser: &Page, css: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        match browser.try_click(css).await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => {
                panic!(
                    "cannot click {css}: {e}\n  page: {}\n{}",
                    browser.current_url().await,
                    visible_text(browser).await
                );
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Clicks `css` until `next` shows (a click that lands while the form is still settling is
/// lost), `WAIT` at most.
async fn click_until(browser: &Page, css: &str, next: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let _ = browser.try_click(css).await;
        let settle = Instant::now() + Duration::from_secs(3);
        while Instant::now() < settle {
            if browser.is_present(next).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            Instant::now() < deadline,
            "clicking {css} never led to {next}\n  page: {}\n{}",
            browser.current_url().await,
            visible_text(browser).await
        );
    }
}

/// Clicks `css` until `gone` is gone (a save whose form closes), `WAIT` at most.
async fn click_until_gone(browser: &Page, css: &str, gone: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let _ = browser.try_click(css).await;
        let settle = Instant::now() + Duration::from_secs(3);
        while Instant::now() < settle {
            if !browser.is_present(gone).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            Instant::now() < deadline,
            "clicking {css} never closed {gone}\n  page: {}\n{}",
            browser.current_url().await,
            visible_text(browser).await
        );
    }
}

/// Waits until `css` matches, then types `text` into it.
async fn fill(browser: &Page, css: &str, text: &str) {
    wait(browser, css).await;
    browser.fill(css, text).await;
}

async fn wait(browser: &Page, css: &str) {
    let deadline = Instant::now() + WAIT;
    while !browser.is_present(css).await {
        assert!(
            Instant::now() < deadline,
            "nothing matched {css} within {WAIT:?}\n  page: {}\n{}",
            browser.current_url().await,
            visible_text(browser).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_gone(browser: &Page, css: &str) {
    let deadline = Instant::now() + WAIT;
    while browser.is_present(css).await {
        assert!(
            Instant::now() < deadline,
            "{css} still there after {WAIT:?}\n{}",
            visible_text(browser).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's visible text (for failure messages; Clerk's own error texts show here).
async fn visible_text(browser: &Page) -> String {
    let text = browser
        .execute(
            "return document.body ? document.body.innerText : ''",
            vec![],
        )
        .await;
    let text: String = text
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(2000)
        .collect();
    let requests = browser.requests.lock().unwrap().clone();
    let latest = &requests[requests.len().saturating_sub(12)..];
    // What clerk-js itself says, beside what React rendered from it.
    let clerk = browser
        .execute(
            "return window.Clerk ? `status ${window.Clerk.status}, loaded ${window.Clerk.loaded}` : 'not on the page'",
            vec![],
        )
        .await;
    let console = browser.console_log().await;
    let console: String = console.chars().take(3000).collect();
    format!(
        "{text}\n  window.Clerk: {}\n  latest requests to latchkey:\n{}\n  browser console:\n{console}",
        clerk.as_str().unwrap_or_default(),
        latest.join("\n")
    )
}

/// How many mails the dev mailbox holds for `address`.
async fn mail_count(app: &TestApp, address: &str) -> usize {
    app.mailbox()
        .await
        .iter()
        .filter(|m| m.to.eq_ignore_ascii_case(address))
        .count()
}

/// The code in the first mail to `address` after the first `before`.
async fn new_code(browser: &Page, app: &TestApp, address: &str, before: usize) -> String {
    let deadline = Instant::now() + WAIT;
    while mail_count(app, address).await <= before {
        assert!(
            Instant::now() < deadline,
            "no new mail to {address}\n  page: {}\n{}",
            browser.current_url().await,
            visible_text(browser).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.code_for(address).await
}

/// Types a mailed code into Clerk's one-time-code field (it submits itself when full).
async fn enter_code(browser: &Page, code: &str) {
    wait(browser, CODE).await;
    browser.fill(CODE, code).await;
}

/// Clerk's primary button of the form on screen ("Continue", "Save", "Add").
const PRIMARY: &str = ".cl-formButtonPrimary";
const CODE: &str = "input[autocomplete='one-time-code']";
const USER_BUTTON: &str = ".cl-userButtonTrigger";

/// Opens `url` and waits until the page is past Clerk's loading state (`<ClerkLoading>`).
///
/// Clerk's React SDK (`@clerk/clerk-react` 5 and `@clerk/react` 6 alike) reads clerk-js's
/// status when `<ClerkProvider>` renders and subscribes to changes later, in an effect, without
/// asking for the current value. When clerk-js finishes loading in between (seen once in CI,
/// on a loaded machine), React never hears of it and the page shows "Loading…" for good,
/// although every request was answered and `window.Clerk.loaded` is true. latchkey's part is
/// done at that point, so the page is loaded once more, and the log says so. (Hiding
/// clerk-js's status events from the SDK on a first load gives the same page, requests and
/// `window.Clerk` as that CI run.) If clerk-js itself has not loaded, the test fails at once.
async fn open(browser: &Page, url: &str) {
    for attempt in 1..=2 {
        browser.goto(url).await;
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if !browser.is_present(".loading").await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let clerk_loaded = browser
            .execute(
                "return window.Clerk ? window.Clerk.loaded === true : false",
                vec![],
            )
            .await
            == Value::Bool(true);
        assert!(
            attempt == 1 && clerk_loaded,
            "{url} still shows Clerk's loading state after {WAIT:?}\n  page: {}\n{}",
            browser.current_url().await,
            visible_text(browser).await
        );
        let note = format!(
            "latchkey: clerk-js loaded but the page still showed <ClerkLoading> after {WAIT:?} \
             (the React SDK missed its status change); loading {url} again\n{}\n",
            visible_text(browser).await
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), note.as_bytes());
    }
}

async fn sign_in_button(browser: &Page) {
    click_text(browser, "header button", "Sign in").await;
}

/// Clicks the first `css` element whose text contains `text`.
async fn click_text(browser: &Page, css: &str, text: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let clicked = browser
            .execute(
                "const e = [...document.querySelectorAll(arguments[0])].find(e => e.innerText.includes(arguments[1])); if (e) { e.click(); return true } return false",
                vec![Value::from(css), Value::from(text)],
            )
            .await;
        if clicked == Value::Bool(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {css} says {text:?}\n  page: {}\n{}",
            browser.current_url().await,
            visible_text(browser).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_out(browser: &Page) {
    click(browser, USER_BUTTON).await;
    click(browser, ".cl-userButtonPopoverActionButton__signOut").await;
    wait_gone(browser, USER_BUTTON).await;
}

/// The value of `document.cookie`'s `name`, if set.
async fn cookie(browser: &Page, name: &str) -> Option<String> {
    let value = browser
        .execute(
            "const c = document.cookie.split('; ').find(c => c.startsWith(arguments[0] + '=')); return c ? c.slice(arguments[0].length + 1) : null",
            vec![Value::String(name.to_owned())],
        )
        .await;
    value.as_str().map(str::to_owned)
}

/// The whole journey for one major; `token_lifetime` is the server's session token lifetime.
pub async fn journey(
    app: &TestApp,
    running: &RunningExample,
    example: Example,
    token_lifetime: Duration,
) {
    let origin = running.front.url.clone();
    let email = "ada@example.com";
    let second = "ada.lovelace@example.org";
    let browser = Page {
        browser: Chrome::start().await,
        requests: running.front.latchkey_requests_log(),
    };

    // Sign up: the header's button, Clerk's sign-in component, its link to sign up.
    open(&browser, &format!("{origin}/")).await;
    sign_in_button(&browser).await;
    browser.wait_for_path("/sign-in", WAIT).await;
    click(&browser, ".cl-footerActionLink").await;
    browser.wait_for_path("/sign-up", WAIT).await;
    fill(&browser, "input[name=emailAddress]", email).await;
    fill(&browser, "input[name=password]", PASSWORD).await;
    let before = mail_count(app, email).await;
    click_until(&browser, PRIMARY, CODE).await;
    enter_code(&browser, &new_code(&browser, app, email, before).await).await;
    wait(&browser, USER_BUTTON).await;
    let users = crate::bapi::get(app, &running.secret_key, "/v1/users", 200).await;
    let user_id = users[0]["id"].as_str().unwrap().to_owned();
    signed_up_row_within(running, &user_id, email).await;

    // Manage account: the first name.
    click(&browser, USER_BUTTON).await;
    click(&browser, ".cl-userButtonPopoverActionButton__manageAccount").await;
    click(&browser, ".cl-profileSectionPrimaryButton__profile").await;
    fill(&browser, "input[name=firstName]", "Ada").await;
    click_until_gone(&browser, PRIMARY, "input[name=firstName]").await;
    stored_row_within(running, &user_id, "user.updated with the new name", |row| {
        row["lastEvent"] == "user.updated" && row["firstName"] == "Ada"
    })
    .await;

    // A second address, verified by its code.
    click(&browser, ".cl-profileSectionPrimaryButton__emailAddresses").await;
    fill(&browser, "input[name=emailAddress]", second).await;
    let before = mail_count(app, second).await;
    click_until(&browser, PRIMARY, CODE).await;
    enter_code(&browser, &new_code(&browser, app, second, before).await).await;
    wait_gone(&browser, CODE).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let user: Value = call(
            app,
            Method::GET,
            &format!("/v1/users/{user_id}"),
            &running.secret_key,
        )
        .expect(200)
        .await
        .json();
        let verified = user["email_addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["email_address"] == second && a["verification"]["status"] == "verified");
        if verified {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second address never got verified: {user}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The password, on the security page.
    click(&browser, ".cl-navbarButton__security").await;
    click(&browser, ".cl-profileSectionPrimaryButton__password").await;
    fill(&browser, "input[name=currentPassword]", PASSWORD).await;
    fill(&browser, "input[name=newPassword]", NEW_PASSWORD).await;
    fill(&browser, "input[name=confirmPassword]", NEW_PASSWORD).await;
    click_until_gone(&browser, PRIMARY, "input[name=newPassword]").await;
    click(&browser, ".cl-modalCloseButton").await;
    wait_gone(&browser, ".cl-modalCloseButton").await;

    // Out, and in again with the new password.
    sign_out(&browser).await;
    sign_in_button(&browser).await;
    browser.wait_for_path("/sign-in", WAIT).await;
    fill(&browser, "input[name=identifier]", email).await;
    click_until(&browser, PRIMARY, "input[name=password]").await;
    fill(&browser, "input[name=password]", NEW_PASSWORD).await;
    click_until(&browser, PRIMARY, USER_BUTTON).await;

    // Out, and in by a code mailed to the address.
    sign_out(&browser).await;
    sign_in_button(&browser).await;
    browser.wait_for_path("/sign-in", WAIT).await;
    fill(&browser, "input[name=identifier]", email).await;
    click_until(&browser, PRIMARY, "input[name=password]").await;
    // The password step's "Use another method", then "Email code to …".
    click(&browser, ".cl-footerActionLink").await;
    let before = mail_count(app, email).await;
    click_text(&browser, "button", "Email code to").await;
    enter_code(&browser, &new_code(&browser, app, email, before).await).await;
    wait(&browser, USER_BUTTON).await;

    // The protected dashboard, rendered on the server by auth() and currentUser().
    open(&browser, &format!("{origin}/dashboard")).await;
    wait(&browser, "#user-id").await;
    assert_eq!(browser.text("#user-id").await, user_id);
    assert_eq!(browser.text("#first-name").await, "Ada");
    assert!(browser.text("#stored").await.starts_with(&user_id));

    // Without a session token (as after a browser restart) but with the client's cookies,
    // clerkMiddleware sends the page through latchkey's handshake and back, signed in.
    browser
        .execute(
            "for (const c of document.cookie.split('; ')) { const name = c.split('=')[0]; if (name.startsWith('__session')) document.cookie = name + '=; Max-Age=0; path=/' } return true",
            vec![],
        )
        .await;
    assert_eq!(cookie(&browser, "__session").await, None);
    let handshakes = |requests: &[String]| {
        requests
            .iter()
            .filter(|r| r.starts_with("GET /fapi/v1/client/handshake"))
            .count()
    };
    let before = handshakes(&running.front.latchkey_requests());
    open(&browser, &format!("{origin}/dashboard")).await;
    browser.wait_for_path("/dashboard", WAIT).await;
    wait(&browser, "#user-id").await;
    assert_eq!(browser.text("#user-id").await, user_id);
    assert_eq!(
        handshakes(&running.front.latchkey_requests()),
        before + 1,
        "one trip through the handshake"
    );

    // Past the token's lifetime the session goes on: clerk-js gets a new token by itself,
    // and the page is not reloaded.
    wait(&browser, USER_BUTTON).await;
    let first = cookie(&browser, "__session")
        .await
        .expect("clerk-js keeps __session");
    browser
        .execute("window.__sameDocument = true; return true", vec![])
        .await;
    tokio::time::sleep(token_lifetime + Duration::from_secs(5)).await;
    let me = browser
        .execute("return fetch('/api/me').then(r => r.status)", vec![])
        .await;
    assert_eq!(
        me,
        Value::from(200),
        "the app's API after the token's lifetime"
    );
    let later = cookie(&browser, "__session")
        .await
        .expect("still signed in");
    assert_ne!(first, later, "clerk-js refreshed the session token");
    assert_eq!(
        browser
            .execute("return window.__sameDocument === true", vec![])
            .await,
        Value::Bool(true),
        "no reload"
    );
    assert!(browser.is_present(USER_BUTTON).await);
    let _ = example;
}

/// latchkey behind the front door for the browser: its public URL and the Frontend API's
/// allowed origin are the front door's (the app's origin), the key names [`FRONTEND_HOST`],
/// the scripts come from the checksummed step.
async fn beside_latchkey(ctx: &TestContext, example: Example) -> (TestApp, RunningExample) {
    let scripts = tokio::task::spawn_blocking(nextjs::clerk_scripts_dir)
        .await
        .unwrap()
        .join("@clerk");
    let front = FrontDoor::start(&["/fapi/"]).await;
    let origin = front.url.clone();
    let app = ctx
        .spawn_with(|c| {
            c.webhook_allow_private_networks = true;
            c.internal_webhook = false;
            c.public_url = Some(url::Url::parse(&origin).unwrap());
            c.fapi = latchkey_identity::FapiConfig {
                allowed_origins: vec![origin.clone()],
                frontend_api_host: Some(FRONTEND_HOST.to_owned()),
                assets_dir: Some(scripts),
            };
        })
        .await;
    let running = start_example(ctx, &app, example, front).await;
    (app, running)
}

async fn through_clerks_components(ctx: TestContext, example: Example) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (app, running) = beside_latchkey(&ctx, example).await;
    journey(&app, &running, example, Duration::from_secs(60)).await;
    if let Ok(path) = std::env::var("LATCHKEY_FAPI_REQUESTS_LOG") {
        let lines = running.front.latchkey_requests().join("\n");
        std::fs::write(format!("{path}.{example:?}"), lines).unwrap();
    }
    drop(running);
    app.stop().await;
}

pub async fn a_person_uses_the_core2_example_through_clerks_components_in_a_real_browser(
    ctx: TestContext,
) {
    through_clerks_components(ctx, Example::Core2).await;
}

pub async fn a_person_uses_the_core3_example_through_clerks_components_in_a_real_browser(
    ctx: TestContext,
) {
    through_clerks_components(ctx, Example::Core3).await;
}
