//! Clerk's Frontend API at `/fapi/v1/…`, as Clerk's browser SDKs call it: the wire contract
//! (envelope, errors, CORS, `_method`), sign-up and sign-in through the same flows as the
//! pages, sessions and their tokens, the handshake, `/me`, the pinned scripts, and bad input.
//! The helpers are here; the tests are in the submodules.

pub mod account;
pub mod handshake;
pub mod scripts;
pub mod sign_in;
pub mod sign_up;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_protocol::jwt::{Jwks, KeySet, KeySource, SessionClaims, VerifyOptions};
use latchkey_testkit::browser::Browser;
use latchkey_testkit::{Reply, TestApp, TestContext};
use serde_json::Value;

pub use crate::identity::PASSWORD;

/// The app whose pages load Clerk's scripts.
pub const APP: &str = "http://localhost:3000";
/// The host the publishable key names.
pub const FRONTEND_API_HOST: &str = "clerk.localhost";

/// A server with the Frontend API configured for [`APP`].
pub async fn spawn(ctx: &TestContext) -> TestApp {
    ctx.spawn_with(|config| {
        config.fapi.allowed_origins = vec![APP.to_owned()];
        config.fapi.frontend_api_host = Some(FRONTEND_API_HOST.to_owned());
    })
    .await
}

/// A page of [`APP`] calling the Frontend API as clerk-js does: GET or POST (`_method` for
/// the rest), form-encoded, with the page's `Origin` and the browser's cookies.
pub struct Page {
    pub browser: Browser,
    pub origin: String,
}

impl Page {
    pub fn new(app: &TestApp) -> Self {
        Self {
            browser: app.browser(),
            origin: APP.to_owned(),
        }
    }

    /// `method path` (`/fapi/v1` + `path`) with `fields`, expecting `status`.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        fields: &[(&str, &str)],
        status: u16,
    ) -> Reply {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = format!(
            "/fapi/v1{path}{separator}__clerk_api_version=2025-11-10&_clerk_js_version=5.0.0"
        );
        let (wire, url) = match method {
            "GET" => (reqwest::Method::GET, url),
            "POST" => (reqwest::Method::POST, url),
            other => (reqwest::Method::POST, format!("{url}&_method={other}")),
        };
        let mut call = self
            .browser
            .request(wire.clone(), &url)
            .header("origin", &self.origin);
        if wire == reqwest::Method::POST {
            call = call.form(fields);
        }
        let reply = call.expect(status).await;
        self.browser.absorb(&reply);
        reply
    }

    pub async fn get(&mut self, path: &str) -> Value {
        self.call("GET", path, &[], 200).await.json()
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Value {
        self.call("POST", path, fields, 200).await.json()
    }
}

/// The first error of an error envelope: its code and `meta.param_name`.
pub fn error(reply: &Reply) -> (String, Option<String>) {
    let body: Value = reply.json();
    let first = &body["errors"][0];
    (
        first["code"].as_str().unwrap().to_owned(),
        first["meta"]["param_name"].as_str().map(str::to_owned),
    )
}

/// Verifies a session token against the server's JWKS as an app would, expecting the
/// Frontend API's issuer and [`APP`] as `azp`.
pub async fn verify(app: &TestApp, token: &str) -> SessionClaims {
    let jwks: Jwks = app.get("/.well-known/jwks.json").expect(200).await.json();
    let keys = KeySource::Set(KeySet::from_jwks(&jwks).unwrap());
    let options = VerifyOptions::new(app.identity.now_ms())
        .with_issuer(format!("https://{FRONTEND_API_HOST}"))
        .with_authorized_parties([APP]);
    latchkey_protocol::jwt::verify_session_token(token, &keys, &options).unwrap()
}

/// The decoded payload of a JWT (unverified).
pub fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Signs up through the Frontend API with the mailed code; the page ends signed in.
pub async fn sign_up(app: &TestApp, email: &str) -> Page {
    let mut page = Page::new(app);
    let created = page
        .post(
            "/client/sign_ups",
            &[("email_address", email), ("password", PASSWORD)],
        )
        .await;
    let id = created["response"]["id"].as_str().unwrap().to_owned();
    page.post(
        &format!("/client/sign_ups/{id}/prepare_verification"),
        &[("strategy", "email_code")],
    )
    .await;
    let code = app.code_for(email).await;
    let done = page
        .post(
            &format!("/client/sign_ups/{id}/attempt_verification"),
            &[("strategy", "email_code"), ("code", &code)],
        )
        .await;
    assert_eq!(done["response"]["status"], "complete", "{done}");
    page
}

/// The id of the page's signed-in session.
pub async fn session_id(page: &mut Page) -> String {
    let client = page.get("/client").await;
    client["response"]["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// How many accounts exist.
pub async fn count_users(app: &TestApp) -> i64 {
    use latchkey_store::Row as _;
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx.query("SELECT COUNT(*) AS n FROM identity_users");
    let n: i64 = tx.fetch_one(q).await.unwrap().try_get("n").unwrap();
    tx.commit().await.unwrap();
    n
}
