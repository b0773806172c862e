//! Passkeys over HTTP, with answers made by a software authenticator written for the tests
//! (`passkeys/authenticator.rs`): registration after a step-up, sign-in with the passkey alone
//! (both factors fresh in `fva`), Clerk's Passkey objects and `user.updated`, and the answers
//! that must be refused: another relying party or origin, a replay, a wrong, expired or other
//! browser's challenge, a counter going backwards, an unknown credential (answered like a bad
//! signature), a banned account. The same in Chromium is in `passkeys/browser.rs`.

mod authenticator;
pub mod browser;

use std::net::SocketAddr;
use std::time::Duration;

use latchkey_identity::flows::admin::{self, CreateUser};
use latchkey_identity::passwords::Password;
use latchkey_testkit::browser::{Browser, csrf_token};
use latchkey_testkit::{Reply, TestApp, TestContext};
use reqwest::Method;
use serde_json::Value;

use crate::bapi::{call, events_about, secret_key};
use crate::identity::{PASSWORD, claims, sign_in};
use authenticator::SoftAuthenticator;

/// A server whose public URL is `http://localhost:<port>`: browsers refuse IP addresses as
/// WebAuthn relying party ids, and `localhost` is a secure context. Returns it with its URL.
pub async fn spawn_on_localhost(ctx: &TestContext) -> (TestApp, String) {
    spawn_on_localhost_with(ctx, |_| {}).await
}

/// [`spawn_on_localhost`] with a configuration changed by `adjust`.
async fn spawn_on_localhost_with(
    ctx: &TestContext,
    adjust: impl FnOnce(&mut latchkey_server::config::Config),
) -> (TestApp, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://localhost:{port}");
    let public = url.parse().unwrap();
    let app = ctx
        .spawn_with(|c| {
            c.addr = SocketAddr::from(([127, 0, 0, 1], port));
            c.public_url = Some(public);
            adjust(c);
        })
        .await;
    (app, url)
}

/// An account with a password; returns its id.
pub async fn create_account(app: &TestApp, email: &str) -> String {
    admin::create_user(
        &app.identity,
        CreateUser {
            email_address: Some(email.to_owned()),
            password: Some(Password::new(PASSWORD.to_owned())),
            ..CreateUser::default()
        },
    )
    .await
    .unwrap()
    .id
}

/// Posts the CSRF token of `page` to an options endpoint; the JSON answer.
async fn options(browser: &mut Browser, page: &str, path: &str, status: u16) -> Value {
    let html = browser.get(page, 200).await.text();
    let token = csrf_token(&html);
    let reply = browser
        .post_form(path, &[("csrf_token", &token)], status)
        .await;
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{}",
        reply.text()
    );
    reply.json()
}

/// Registers `soft` to the signed-in `browser`'s account under `name`.
async fn register(
    browser: &mut Browser,
    soft: &mut SoftAuthenticator,
    name: &str,
    status: u16,
) -> Reply {
    let created = options(browser, "/user", "/user/passkeys/options", 200).await;
    let answer = soft.register(&created, 0).to_string();
    browser
        .submit(
            "/user",
            "/user/passkeys",
            &[("name", name), ("credential", &answer)],
            status,
        )
        .await
}

/// Options for a sign-in in `browser`.
async fn sign_in_options(browser: &mut Browser) -> Value {
    options(browser, "/sign-in", "/sign-in/passkey/options", 200).await
}

/// Posts `answer` as the passkey sign-in, expecting `status`.
async fn answer_sign_in(browser: &mut Browser, answer: &Value, status: u16) -> Reply {
    browser
        .submit(
            "/sign-in",
            "/sign-in/passkey",
            &[("credential", &answer.to_string())],
            status,
        )
        .await
}

fn error_text(html: &str) -> String {
    let start = html.find("id=\"form-error\">").map_or(0, |i| i + 16);
    html[start..]
        .split("</p>")
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub async fn a_passkey_registered_after_step_up_signs_in_alone_with_both_factors_fresh(
    ctx: TestContext,
) {
    let (app, url) = spawn_on_localhost(&ctx).await;
    let email = "passkey-http@example.com";
    let id = create_account(&app, email).await;
    let key = secret_key(&app).await;
    let mut browser = Browser::new(&url);
    sign_in(&mut browser, email, PASSWORD, 303).await;
    let mut soft = SoftAuthenticator::new("localhost", &url);

    // Only the pages with passkeys may run a script, and only this site's.
    let mut anonymous = Browser::new(&url);
    for (reply, expected) in [
        (anonymous.get("/sign-in", 200).await, "script-src 'self'"),
        (browser.get("/user", 200).await, "script-src 'self'"),
        (
            anonymous.get("/forgot-password", 200).await,
            "script-src 'none'",
        ),
    ] {
        let csp = reply.header("content-security-policy").unwrap();
        assert!(csp.contains(expected), "{csp}");
    }
    let script = app.get("/assets/passkeys.js").expect(200).await;
    assert!(
        script
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.text().contains("navigator.credentials.create"));

    // The options: a discoverable credential with user verification, for this site, 5 minutes.
    let created = options(&mut browser, "/user", "/user/passkeys/options", 200).await;
    assert_eq!(created["rp"]["id"], "localhost");
    assert_eq!(created["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        created["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(created["timeout"], 300_000);
    assert!(browser.cookie("latchkey_webauthn").is_some());

    // Registering needs a recent sign-in, as other factors do.
    app.clock().advance(Duration::from_secs(11 * 60));
    let refused = options(&mut browser, "/user", "/user/passkeys/options", 403).await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("confirm it's you"),
        "{refused}"
    );
    let answer = soft.register(&created, 0).to_string();
    let reply = browser
        .submit(
            "/user",
            "/user/passkeys",
            &[("name", "Laptop"), ("credential", &answer)],
            403,
        )
        .await;
    assert!(
        reply.text().contains("For your security"),
        "{}",
        reply.text()
    );
    browser
        .submit("/user", "/user/reverify", &[("password", PASSWORD)], 303)
        .await;

    // The first options were answered too late: that ceremony has expired.
    let reply = browser
        .submit(
            "/user",
            "/user/passkeys",
            &[("name", "Laptop"), ("credential", &answer)],
            410,
        )
        .await;
    assert!(
        error_text(&reply.text()).contains("has ended"),
        "{}",
        reply.text()
    );

    let reply = register(&mut browser, &mut soft, "  Laptop  ", 303).await;
    assert_eq!(reply.header("location"), Some("/user?notice=passkey_added"));
    // The same credential twice is refused.
    let reply = register(&mut browser, &mut soft, "Again", 409).await;
    assert!(error_text(&reply.text()).contains("already registered"));

    let user: Value = call(&app, Method::GET, &format!("/v1/users/{id}"), &key)
        .expect(200)
        .await
        .json();
    let passkeys = user["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 1, "{user}");
    let passkey = &passkeys[0];
    assert!(
        passkey["id"].as_str().unwrap().starts_with("idn_"),
        "{passkey}"
    );
    assert_eq!(passkey["object"], "passkey");
    assert_eq!(passkey["name"], "Laptop");
    assert_eq!(passkey["last_used_at"], Value::Null);
    assert_eq!(passkey["verification"]["status"], "verified");
    assert_eq!(passkey["verification"]["strategy"], "passkey");
    // A passkey is a first factor for Clerk: no second factor is enabled by it.
    assert_eq!(user["two_factor_enabled"], false);
    assert!(!events_about(&app, "user.updated", &id).await.is_empty());

    // Signing in with the passkey alone, in a browser that never saw the password.
    let mut other = Browser::new(&url);
    let requested = sign_in_options(&mut other).await;
    assert_eq!(requested["rpId"], "localhost");
    assert_eq!(requested["userVerification"], "required");
    let answer = soft.assert(&requested, 1);
    let reply = answer_sign_in(&mut other, &answer, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    let token = other.cookie("__session").unwrap().to_owned();
    assert_eq!(claims(&token)["sub"], id.as_str());
    assert_eq!(claims(&token)["fva"], serde_json::json!([0, 0]));

    // The same assertion again, from the same browser, is a replay: its challenge was spent.
    let reply = other
        .submit(
            "/user",
            "/sign-in/passkey",
            &[("credential", &answer.to_string())],
            410,
        )
        .await;
    assert!(error_text(&reply.text()).contains("has ended"));

    let user: Value = call(&app, Method::GET, &format!("/v1/users/{id}"), &key)
        .expect(200)
        .await
        .json();
    assert!(
        user["passkeys"][0]["last_used_at"].as_i64().is_some(),
        "{user}"
    );
    let passkey_id = user["passkeys"][0]["id"].as_str().unwrap().to_owned();

    // Rename and remove, each a `user.updated`.
    let before = events_about(&app, "user.updated", &id).await.len();
    browser
        .submit(
            "/user",
            "/user/passkeys/rename",
            &[("passkey_id", &passkey_id), ("name", "Work laptop")],
            303,
        )
        .await;
    let page = browser.get("/user", 200).await.text();
    assert!(page.contains("value=\"Work laptop\""), "{page}");
    let reply = browser
        .submit(
            "/user",
            "/user/passkeys/rename",
            &[("passkey_id", &passkey_id), ("name", "   ")],
            422,
        )
        .await;
    assert!(error_text(&reply.text()).contains("name"));
    browser
        .submit(
            "/user",
            "/user/passkeys/remove",
            &[("passkey_id", &passkey_id)],
            303,
        )
        .await;
    browser
        .submit(
            "/user",
            "/user/passkeys/remove",
            &[("passkey_id", &passkey_id)],
            404,
        )
        .await;
    assert_eq!(
        events_about(&app, "user.updated", &id).await.len(),
        before + 2
    );
    let user: Value = call(&app, Method::GET, &format!("/v1/users/{id}"), &key)
        .expect(200)
        .await
        .json();
    assert_eq!(user["passkeys"], serde_json::json!([]));

    // A removed passkey signs in no more.
    let mut fourth = Browser::new(&url);
    let requested = sign_in_options(&mut fourth).await;
    answer_sign_in(&mut fourth, &soft.assert(&requested, 2), 401).await;
}

pub async fn forged_replayed_and_stale_passkey_answers_are_refused(ctx: TestContext) {
    let (app, url) = spawn_on_localhost(&ctx).await;
    let email = "passkey-refusals@example.com";
    let id = create_account(&app, email).await;
    let mut owner = Browser::new(&url);
    sign_in(&mut owner, email, PASSWORD, 303).await;
    let mut soft = SoftAuthenticator::new("localhost", &url);
    register(&mut owner, &mut soft, "Key", 303).await;

    let mut browser = Browser::new(&url);
    let refused_text = {
        // A credential this site never registered: the same answer as a bad signature.
        let mut stranger = SoftAuthenticator::new("localhost", &url);
        stranger.user_handle.clone_from(&soft.user_handle);
        let requested = sign_in_options(&mut browser).await;
        let reply = answer_sign_in(&mut browser, &stranger.assert(&requested, 1), 401).await;
        error_text(&reply.text())
    };
    assert!(
        refused_text.contains("could not be verified"),
        "{refused_text}"
    );

    // Signed for another relying party (its RP id hash), or sent from another origin.
    let requested = sign_in_options(&mut browser).await;
    let evil = soft.assert_as(&requested, "evil.example", &url, 1);
    let reply = answer_sign_in(&mut browser, &evil, 401).await;
    assert_eq!(error_text(&reply.text()), refused_text);
    let requested = sign_in_options(&mut browser).await;
    let evil = soft.assert_as(&requested, "localhost", "https://evil.example", 1);
    answer_sign_in(&mut browser, &evil, 401).await;

    // A challenge latchkey never sent, one that expired, one sent to another browser.
    let made_up = soft.assert_challenge("AAAAAAAAAAAAAAAAAAAAAA", "localhost", &url, 1);
    answer_sign_in(&mut browser, &made_up, 410).await;
    let requested = sign_in_options(&mut browser).await;
    app.clock().advance(Duration::from_secs(5 * 60 + 1));
    answer_sign_in(&mut browser, &soft.assert(&requested, 1), 410).await;
    let requested = sign_in_options(&mut browser).await;
    let mut elsewhere = Browser::new(&url);
    answer_sign_in(&mut elsewhere, &soft.assert(&requested, 1), 410).await;
    assert!(elsewhere.cookie("__session").is_none());
    // The browser that asked can still answer it.
    answer_sign_in(&mut browser, &soft.assert(&requested, 1), 303).await;

    // The counter must move forward: 5, then 3 (a cloned authenticator) is refused, as is 5.
    let mut next = Browser::new(&url);
    let requested = sign_in_options(&mut next).await;
    answer_sign_in(&mut next, &soft.assert(&requested, 5), 303).await;
    let mut next = Browser::new(&url);
    let requested = sign_in_options(&mut next).await;
    answer_sign_in(&mut next, &soft.assert(&requested, 3), 401).await;
    let requested = sign_in_options(&mut next).await;
    answer_sign_in(&mut next, &soft.assert(&requested, 5), 401).await;
    let requested = sign_in_options(&mut next).await;
    answer_sign_in(&mut next, &soft.assert(&requested, 6), 303).await;

    // Garbage is a 422, not a 500.
    let mut junk = Browser::new(&url);
    sign_in_options(&mut junk).await;
    answer_sign_in(&mut junk, &serde_json::json!({"id": "x"}), 422).await;

    // A banned account's right passkey opens nothing.
    admin::set_banned(&app.identity, &id, true).await.unwrap();
    let mut banned = Browser::new(&url);
    let requested = sign_in_options(&mut banned).await;
    let reply = answer_sign_in(&mut banned, &soft.assert(&requested, 7), 403).await;
    assert!(error_text(&reply.text()).contains("banned"));
    assert!(banned.cookie("__session").is_none());
}

pub async fn passkey_sign_ins_count_toward_the_networks_sign_in_limit(ctx: TestContext) {
    let (app, url) = spawn_on_localhost_with(&ctx, |c| c.sign_in_attempts_per_ip = 3).await;
    let email = "passkey-throttle@example.com";
    create_account(&app, email).await;
    let mut owner = Browser::new(&url);
    sign_in(&mut owner, email, PASSWORD, 303).await; // 1 of 3
    let mut soft = SoftAuthenticator::new("localhost", &url);
    register(&mut owner, &mut soft, "Key", 303).await;

    let mut stranger = SoftAuthenticator::new("localhost", &url);
    stranger.user_handle.clone_from(&soft.user_handle);
    let mut browser = Browser::new(&url);
    for _ in 0..2 {
        // 2 and 3 of 3: wrong passkeys.
        let requested = sign_in_options(&mut browser).await;
        answer_sign_in(&mut browser, &stranger.assert(&requested, 1), 401).await;
    }
    // The right passkey now waits like a password would.
    let requested = sign_in_options(&mut browser).await;
    let reply = answer_sign_in(&mut browser, &soft.assert(&requested, 1), 429).await;
    assert!(reply.header("retry-after").is_some());
    assert!(browser.cookie("__session").is_none());
    sign_in(&mut Browser::new(&url), email, PASSWORD, 429).await;
}
