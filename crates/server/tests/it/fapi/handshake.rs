//! The handshake `clerkMiddleware` redirects through, and bad input: foreign redirect URLs,
//! forged and foreign cookies.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_protocol::jwt::{Jwks, KeySet};
use latchkey_testkit::{TestApp, TestContext};
use serde_json::Value;

use super::{APP, Page, count_users, error, payload, sign_up, spawn, verify};

/// The `Set-Cookie` list of a handshake answer, after checking its RS256 signature against
/// the JWKS (as `@clerk/backend` does: no expiry on a handshake token).
async fn handshake_cookies(app: &TestApp, location: &str) -> Vec<String> {
    let url = url::Url::parse(location).unwrap();
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "__clerk_handshake")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let mut parts = token.split('.');
    let (head, body, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let jwks: Jwks = app.get("/.well-known/jwks.json").expect(200).await.json();
    let keys = KeySet::from_jwks(&jwks).unwrap();
    let key = keys.get(header["kid"].as_str().unwrap()).unwrap();
    assert!(key.verify_raw(
        format!("{head}.{body}").as_bytes(),
        &URL_SAFE_NO_PAD.decode(signature).unwrap()
    ));
    payload(&token)["handshake"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

fn value_of<'a>(cookies: &'a [String], name: &str) -> Option<&'a str> {
    cookies.iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name).then_some(v)
    })
}

pub async fn the_handshake_answers_signed_cookie_directives_for_the_apps_pages_only(
    ctx: TestContext,
) {
    let app = spawn(&ctx).await;
    let mut page = sign_up(&app, "hs@example.com").await;
    let target = format!("{APP}/dashboard?x=1");
    let path = format!(
        "/fapi/v1/client/handshake?redirect_url={}&suffixed_cookies=true&__clerk_hs_reason=session-token-expired",
        url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
    );
    let reply = page.browser.get(&path, 307).await;
    let location = reply.header("location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{APP}/dashboard?x=1&")),
        "{location}"
    );
    let cookies = handshake_cookies(&app, &location).await;
    let session = value_of(&cookies, "__session").unwrap();
    let claims = verify(&app, session).await;
    let suffixed = cookies
        .iter()
        .find(|c| c.starts_with("__session_"))
        .expect("a suffixed __session");
    assert!(suffixed.contains(session));
    let uat: i64 = value_of(&cookies, "__client_uat").unwrap().parse().unwrap();
    assert!(uat > 0 && uat <= claims.iat.unwrap());
    assert!(cookies.iter().any(|c| c.starts_with("__client_uat_")));

    // Signed out: `__client_uat=0` and `__session` cleared.
    page.call("DELETE", "/client/sessions", &[], 200).await;
    let reply = page.browser.get(&path, 307).await;
    let cookies = handshake_cookies(&app, reply.header("location").unwrap()).await;
    assert_eq!(value_of(&cookies, "__client_uat"), Some("0"));
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__session=;") && c.contains("Max-Age=0"))
    );

    // A redirect off the app's origins is refused with Clerk's error, and no redirect.
    for target in [
        "https://evil.example/dashboard",
        "javascript:alert(1)",
        "/relative",
    ] {
        let path = format!(
            "/fapi/v1/client/handshake?redirect_url={}",
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        );
        let refused = page.browser.get(&path, 400).await;
        assert!(refused.header("location").is_none());
        assert_eq!(error(&refused).0, "invalid_redirect_url");
    }
    app.stop().await;
}

pub async fn forged_and_foreign_cookies_and_bad_fields_change_nothing(ctx: TestContext) {
    let app = spawn(&ctx).await;
    let other = spawn(&ctx).await;
    let mut page = sign_up(&app, "mine@example.com").await;
    let sid = super::session_id(&mut page).await;

    // This instance's cookies sent to another instance open nothing there.
    let mut moved = Page::new(&other);
    moved.browser.cookies = page.browser.cookies.clone();
    let client = moved.get("/client").await;
    assert_eq!(client["response"]["sessions"], Value::Array(vec![]));
    moved
        .call("POST", &format!("/client/sessions/{sid}/tokens"), &[], 401)
        .await;
    moved.call("GET", "/me", &[], 401).await;

    // An in-progress sign-in in a tampered client cookie is not found.
    let mut tamper = Page::new(&app);
    let created = tamper
        .post("/client/sign_ins", &[("identifier", "mine@example.com")])
        .await;
    let id = created["response"]["id"].as_str().unwrap().to_owned();
    let cookie = tamper.browser.cookie("__latchkey_fapi").unwrap().to_owned();
    let (body, tag) = cookie.split_once('.').unwrap();
    let mut json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    json["sign_in"]["status"] = Value::from("complete");
    let forged = format!(
        "{}.{tag}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap())
    );
    tamper
        .browser
        .cookies
        .insert("__latchkey_fapi".to_owned(), forged);
    let refused = tamper
        .call("GET", &format!("/client/sign_ins/{id}"), &[], 404)
        .await;
    assert_eq!(error(&refused).0, "resource_not_found");

    // Bad fields: nothing is written, and no answer is a 500.
    let before = count_users(&app).await;
    let long = "a".repeat(300);
    for (path, fields) in [
        (
            "/client/sign_ups",
            vec![
                ("email_address", "a@example.com"),
                ("password", PASSWORD_OK),
                ("first_name", long.as_str()),
            ],
        ),
        (
            "/client/sign_ups",
            vec![
                ("email_address", "nul\u{0}@example.com"),
                ("password", PASSWORD_OK),
            ],
        ),
        ("/client/sign_ins", vec![("identifier", "")]),
        (
            "/client/sign_ins",
            vec![("identifier", "x@example.com"), ("strategy", "passkey")],
        ),
    ] {
        let reply = tamper.call("POST", path, &fields, 422).await;
        assert!(reply.json::<Value>()["errors"][0]["code"].is_string());
    }
    page.call("PATCH", "/me", &[("first_name", long.as_str())], 422)
        .await;
    page.call(
        "POST",
        "/me/email_addresses",
        &[("email_address", "not an address")],
        422,
    )
    .await;
    assert_eq!(count_users(&app).await, before);
    other.stop().await;
    app.stop().await;
}

const PASSWORD_OK: &str = "a perfectly fine passphrase";
