//! The app part: its pages and `/api/me` behind the session middleware, provisioning on first
//! sight, the data policy on deletion, and Clerk as the issuer (through a local stand-in).
//! The helpers are here; the tests are in the submodules.

pub mod backfill;
pub mod clerk;
pub mod pages;

use latchkey_server::config::{ClerkSettings, Secret};
use latchkey_testkit::browser::Browser;
use latchkey_testkit::fake_clerk::FakeClerk;
use serde_json::Value;

/// `GET path` from `browser`, expecting `status`; the JSON body.
async fn api(browser: &Browser, path: &str, status: u16) -> Value {
    browser
        .request(reqwest::Method::GET, path)
        .expect(status)
        .await
        .json()
}

/// Clerk mode against the stand-in `fake`.
pub(crate) fn clerk_settings(fake: &FakeClerk) -> ClerkSettings {
    ClerkSettings {
        publishable_key: None,
        secret_key: Some(Secret(fake.secret_key.clone())),
        jwt_key: None,
        api_url: fake.url.clone(),
        sign_in_url: Some("https://accounts.fake.example/sign-in".to_owned()),
        account_url: None,
        identity_shadow: false,
    }
}
