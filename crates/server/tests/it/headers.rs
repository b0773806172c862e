//! Headers on every answer: personal data is never stored by a cache, nothing is sniffed.

use latchkey_testkit::{Reply, TestContext};
use reqwest::Method;

use crate::bapi::secret_key;
use crate::identity::sign_up;

fn assert_headers(what: &str, reply: &Reply, cache_control: &str) {
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(reply.header("cache-control"), Some(cache_control), "{what}");
}

pub async fn personal_answers_are_not_stored_and_nothing_is_sniffed(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let mut browser = sign_up(&app, "headers@example.com").await;

    for path in ["/v1/users", "/v1/events", "/v1/webhook_endpoints"] {
        let reply = app.get(path).bearer(&key).expect(200).await;
        assert_headers(path, &reply, "no-store");
    }
    let refused = app.get("/v1/users").expect(401).await;
    assert_headers("/v1/users without a key", &refused, "no-store");
    for path in ["/v1/me", "/api/me", "/api/session"] {
        let reply = browser.request(Method::GET, path).expect(200).await;
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        assert_headers(path, &reply, "no-store");
    }
    for page in ["/user", "/dashboard", "/"] {
        let reply = browser.get(page, 200).await;
        assert_headers(page, &reply, "no-store");
    }
    let missing = app.get("/no-such-page").expect(404).await;
    assert_headers("an unknown path", &missing, "no-store");
    let health = app.get("/healthz").expect(200).await;
    assert_headers("/healthz", &health, "no-store");

    // Public answers keep their own caching, and are not sniffed either.
    let jwks = app.get("/.well-known/jwks.json").expect(200).await;
    assert_headers("the JWKS", &jwks, "public, max-age=300");
    let css = app.get("/assets/latchkey.css").expect(200).await;
    assert_headers("the stylesheet", &css, "public, max-age=3600");
    app.stop().await;
}
