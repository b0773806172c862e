//! The identity part through its pages and API: sign-up, sign-in, sessions, tokens, abuse.
//! The helpers are here; the tests are in the submodules.

pub mod operators;
pub mod pages;
pub mod sessions;
pub mod throttles;
pub mod tokens;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_testkit::TestApp;
use latchkey_testkit::browser::Browser;
use serde_json::Value;

use crate::email::start_sign_up;

pub const PASSWORD: &str = "correct horse battery staple";

/// Signs up through the page and enters the code mailed to the dev mailbox; the browser ends
/// up signed in.
pub async fn sign_up(app: &TestApp, email: &str) -> Browser {
    let mut browser = start_sign_up(app, email).await;
    let reply = enter_code(&mut browser, &app.code_for(email).await, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    assert!(browser.cookie("__client").is_some() && browser.cookie("__session").is_some());
    browser
}

/// Enters `code` on `/verify`, expecting `status`.
pub async fn enter_code(browser: &mut Browser, code: &str, status: u16) -> latchkey_testkit::Reply {
    browser
        .submit("/verify", "/verify", &[("code", code)], status)
        .await
}

/// Signs in through the page with `password`, expecting `status`.
pub async fn sign_in(
    browser: &mut Browser,
    email: &str,
    password: &str,
    status: u16,
) -> latchkey_testkit::Reply {
    browser
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email_address", email), ("password", password)],
            status,
        )
        .await
}

/// The decoded payload of a JWT (unverified).
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The decoded header of a JWT.
fn header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}
