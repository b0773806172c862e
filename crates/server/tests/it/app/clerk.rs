//! Clerk as the issuer (through a local stand-in): its session tokens follow the SDKs' rules,
//! and with its keys out of reach nobody is signed out.

use latchkey_testkit::TestContext;
use latchkey_testkit::browser::Browser;
use latchkey_testkit::fake_clerk::FakeClerk;
use serde_json::Value;

use super::{api, clerk_settings};

pub async fn clerk_session_tokens_follow_the_sdks_rules(ctx: TestContext) {
    let fake = FakeClerk::start(3, None).await;
    let clerk = clerk_settings(&fake);
    let app = ctx
        .spawn_with(|c| {
            c.clerk = Some(clerk);
            c.authorized_parties = Some(vec!["https://app.example.com".to_owned()]);
        })
        .await;
    let good = fake.mint("user_fake000001", Some("https://app.example.com"));
    app.get("/api/me").bearer(&good).expect(200).await;
    for (name, token, code) in [
        (
            "no azp",
            fake.mint("user_fake000001", None),
            "token_azp_missing",
        ),
        (
            "another origin",
            fake.mint("user_fake000001", Some("https://evil.example")),
            "token_azp_mismatch",
        ),
        (
            "a session with a task left",
            fake.mint_with_status(
                "user_fake000001",
                Some("https://app.example.com"),
                Some("pending"),
            ),
            "session_pending",
        ),
    ] {
        let error: Value = app.get("/api/me").bearer(&token).expect(401).await.json();
        assert_eq!(error["error"]["code"], code, "{name}");
    }
    let mut tampered: Vec<String> = good.split('.').map(str::to_owned).collect();
    tampered[2] = tampered[2].chars().rev().collect();
    app.get("/api/me")
        .bearer(&tampered.join("."))
        .expect(401)
        .await;

    // Cookies, with Clerk's __client_uat rule; a header, when present, is used exclusively.
    let iat = latchkey_protocol::time::now_secs();
    let mut browser = Browser::new(&app.url);
    browser.cookies.insert("__session".to_owned(), good.clone());
    browser
        .request(reqwest::Method::GET, "/api/me")
        .expect(401)
        .await;
    browser
        .cookies
        .insert("__client_uat".to_owned(), (iat + 100).to_string());
    let stale: Value = api(&browser, "/api/me", 401).await;
    assert_eq!(stale["error"]["code"], "session_token_stale");
    browser
        .cookies
        .insert("__client_uat".to_owned(), (iat - 100).to_string());
    browser
        .request(reqwest::Method::GET, "/api/me")
        .expect(200)
        .await;
    browser
        .request(reqwest::Method::GET, "/api/me")
        .bearer("not.a.token")
        .expect(401)
        .await;
    // Pages send signed-out visitors to Clerk's sign-in page.
    let mut visitor = app.browser();
    let reply = visitor.get("/dashboard", 303).await;
    assert_eq!(
        reply.header("location"),
        Some("https://accounts.fake.example/sign-in?redirect_url=%2Fdashboard")
    );
    app.stop().await;

    // With the issuer's keys out of reach, nobody is signed out: pages and APIs answer 503.
    let mut unreachable = clerk_settings(&fake);
    unreachable.api_url = format!(
        "http://127.0.0.1:{}/v1",
        latchkey_testkit::pgbouncer::free_port()
    );
    let app = ctx.spawn_with(|c| c.clerk = Some(unreachable)).await;
    let error: Value = app.get("/api/me").bearer(&good).expect(503).await.json();
    assert_eq!(error["error"]["code"], "keys_unavailable");
    let mut signed_in = Browser::new(&app.url);
    signed_in.cookies.insert("__session".to_owned(), good);
    signed_in
        .cookies
        .insert("__client_uat".to_owned(), (iat - 100).to_string());
    signed_in.get("/dashboard", 503).await;
    app.stop().await;
}
