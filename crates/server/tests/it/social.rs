//! Social sign-in over HTTP, against a scriptable OpenID Connect provider on loopback
//! (`latchkey_testkit::oidc`): sign-up and sign-in again into the same account, Clerk's
//! external accounts, every refusal of the callback with nothing written, and the linking
//! rules. The journey in Chromium against `oidc-provider` from npm is in `social/browser.rs`.

pub mod browser;
pub mod connections;
pub mod github;
pub mod limits;

use latchkey_identity::oauth::{ClientSecret, ProviderSettings};
use latchkey_store::Row as _;
use latchkey_testkit::browser::{Browser, csrf_token};
use latchkey_testkit::oidc::{Forgery, Person, StandInProvider};
use latchkey_testkit::{TestApp, TestContext};
use reqwest::Method;
use serde_json::Value;

use crate::bapi::{call, events_about, secret_key};
use crate::email::start_sign_up;
use crate::identity::sign_up;

/// The stand-in as the generic provider `oauth_custom_standin`.
pub fn custom_provider(issuer: &str, client_id: &str, secret: &str) -> ProviderSettings {
    ProviderSettings::custom(
        "standin",
        "Stand-in ID".to_owned(),
        url::Url::parse(issuer).unwrap(),
        client_id.to_owned(),
        ClientSecret::new(secret.to_owned()),
    )
}

async fn spawn(ctx: &TestContext, provider: &StandInProvider) -> TestApp {
    let settings = custom_provider(
        &provider.issuer,
        &provider.client_id,
        &provider.client_secret,
    );
    ctx.spawn_with(|config| config.oauth = vec![settings]).await
}

/// Presses "Continue with Stand-in ID" on the sign-in page (asking to come back to
/// `redirect_url`); the provider's authorization URL.
async fn press_button(browser: &mut Browser, redirect_url: &str) -> String {
    press(browser, "custom_standin", "Stand-in ID", redirect_url).await
}

/// Presses "Continue with `name`" (provider `key`) on the sign-in page; the provider's
/// authorization URL.
async fn press(browser: &mut Browser, key: &str, name: &str, redirect_url: &str) -> String {
    let page = browser.get("/sign-in", 200).await;
    let html = page.text();
    assert!(html.contains(&format!("Continue with {name}")), "{html}");
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("form-action 'self' http://127.0.0.1:")),
        "the button may post to a route that redirects to the provider"
    );
    let token = csrf_token(&html);
    let reply = browser
        .post_form(
            "/sign-in/oauth",
            &[
                ("csrf_token", &token),
                ("provider", key),
                ("redirect_url", redirect_url),
            ],
            303,
        )
        .await;
    assert!(browser.cookie("latchkey_oauth").is_some());
    reply.header("location").unwrap().to_owned()
}

/// Follows the provider's consent; the callback path on latchkey it redirects to.
async fn at_provider(app: &TestApp, authorize_url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = client.get(authorize_url).send().await.unwrap();
    assert!(
        reply.status().is_redirection(),
        "{authorize_url}: {}",
        reply.status()
    );
    let location = reply.headers()["location"].to_str().unwrap().to_owned();
    location
        .strip_prefix(&app.url)
        .unwrap_or_else(|| panic!("the provider sends the browser back to latchkey: {location}"))
        .to_owned()
}

/// A whole sign-in through the provider, ending with the callback answered `status`.
async fn sign_in_with_provider(
    app: &TestApp,
    browser: &mut Browser,
    redirect_url: &str,
    status: u16,
) -> latchkey_testkit::Reply {
    let authorize = press_button(browser, redirect_url).await;
    let callback = at_provider(app, &authorize).await;
    browser.get(&callback, status).await
}

/// (users, external accounts, sessions) rows.
async fn counts(app: &TestApp) -> (i64, i64, i64) {
    let mut tx = app.db.begin_read().await.unwrap();
    let mut out = Vec::new();
    for table in [
        "identity_users",
        "identity_external_accounts",
        "identity_sessions",
    ] {
        let q = tx.query_owned(format!("SELECT count(*) AS n FROM {table}"));
        out.push(
            tx.fetch_one(q)
                .await
                .unwrap()
                .try_get::<i64, _>("n")
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    (out[0], out[1], out[2])
}

async fn user_json(app: &TestApp, key: &str, id: &str) -> Value {
    call(app, Method::GET, &format!("/v1/users/{id}"), key)
        .expect(200)
        .await
        .json()
}

/// The signed-in browser's user id, from `/v1/me`.
async fn me(browser: &mut Browser) -> String {
    let reply = browser.get("/v1/me", 200).await;
    let body: Value = reply.json();
    body["id"]
        .as_str()
        .or(body["user"]["id"].as_str())
        .unwrap()
        .to_owned()
}

pub async fn a_provider_identity_signs_up_then_signs_in_to_the_same_account(ctx: TestContext) {
    let provider = StandInProvider::start(Person::verified("sub-ada-1", "ada@example.com")).await;
    let app = spawn(&ctx, &provider).await;
    let key = secret_key(&app).await;

    let mut browser = app.browser();
    let reply = sign_in_with_provider(&app, &mut browser, "/dashboard?tab=notes", 303).await;
    assert_eq!(reply.header("location"), Some("/dashboard?tab=notes"));
    assert!(browser.cookie("__client").is_some() && browser.cookie("__session").is_some());
    assert!(
        browser.cookie("latchkey_oauth").is_none(),
        "the round trip's cookie is cleared"
    );
    let id = me(&mut browser).await;

    let user = user_json(&app, &key, &id).await;
    assert_eq!(user["first_name"], "Ada");
    assert_eq!(user["image_url"], "https://images.example.com/ada.png");
    assert_eq!(user["password_enabled"], false);
    let email = &user["email_addresses"][0];
    assert_eq!(email["email_address"], "ada@example.com");
    assert_eq!(email["verification"]["status"], "verified");
    assert_eq!(
        email["verification"]["strategy"],
        "from_oauth_custom_standin"
    );
    assert_eq!(email["verification"]["object"], "verification_from_oauth");
    let account = &user["external_accounts"][0];
    assert_eq!(user["external_accounts"].as_array().unwrap().len(), 1);
    assert_eq!(account["object"], "external_account");
    assert_eq!(account["provider"], "oauth_custom_standin");
    assert_eq!(account["provider_user_id"], "sub-ada-1");
    assert_eq!(account["email_address"], "ada@example.com");
    assert_eq!(account["email_address_verified"], true);
    assert_eq!(account["first_name"], "Ada");
    assert_eq!(account["last_name"], "Lovelace");
    assert_eq!(account["image_url"], "https://images.example.com/ada.png");
    assert_eq!(account["approved_scopes"], "openid email profile");
    assert_eq!(account["verification"]["strategy"], "oauth_custom_standin");
    assert_eq!(account["verification"]["status"], "verified");
    assert!(account["id"].as_str().unwrap().starts_with("idn_"));
    assert_eq!(email["linked_to"][0]["id"], account["id"]);
    let created = events_about(&app, "user.created", &id).await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0]["data"]["external_accounts"][0]["provider_user_id"],
        "sub-ada-1"
    );

    // Signing out and in again lands in the same account; a redirect elsewhere is dropped.
    browser.submit("/user", "/sign-out", &[], 303).await;
    assert!(browser.cookie("__client").is_none());
    let reply = sign_in_with_provider(&app, &mut browser, "https://evil.example/", 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    assert_eq!(me(&mut browser).await, id);
    assert_eq!(counts(&app).await.0, 1, "no second account");
    app.stop().await;
}

pub async fn forged_replayed_and_foreign_callbacks_are_refused_with_nothing_written(
    ctx: TestContext,
) {
    let provider = StandInProvider::start(Person::verified("sub-2", "grace@example.com")).await;
    let app = spawn(&ctx, &provider).await;
    let before = counts(&app).await;

    let mut browser = app.browser();
    let forged = format!("/v1/oauth_callback?code=abc&state={}", "A".repeat(43));
    let page = browser.get(&forged, 400).await.text();
    assert!(page.contains("not started here"), "{page}");
    browser.get("/v1/oauth_callback?code=abc", 400).await;

    // Another browser holding the callback (a stolen or planted link) is refused, and the
    // round trip stays usable by the browser that started it.
    let authorize = press_button(&mut browser, "").await;
    let callback = at_provider(&app, &authorize).await;
    let mut other = app.browser();
    let page = other.get(&callback, 400).await.text();
    assert!(page.contains("another browser"), "{page}");
    assert_eq!(counts(&app).await, before);
    browser.get(&callback, 303).await;
    let after = counts(&app).await;
    assert_eq!((after.0, after.1), (before.0 + 1, before.1 + 1));

    // The same callback again is a replay.
    let page = browser.get(&callback, 400).await.text();
    assert!(page.contains("already used"), "{page}");
    assert_eq!(counts(&app).await, after);

    // A round trip past its 10 minutes is refused.
    let mut browser = app.browser();
    let authorize = press_button(&mut browser, "").await;
    let callback = at_provider(&app, &authorize).await;
    app.clock().advance(std::time::Duration::from_secs(601));
    let page = browser.get(&callback, 400).await.text();
    assert!(page.contains("more than 10 minutes"), "{page}");
    assert_eq!(counts(&app).await, after);
    app.stop().await;
}

pub async fn id_tokens_failing_any_check_and_provider_failures_write_nothing(ctx: TestContext) {
    let provider = StandInProvider::start(Person::verified("sub-3", "katherine@example.com")).await;
    let app = spawn(&ctx, &provider).await;
    let before = counts(&app).await;
    let mut browser = app.browser();
    for forgery in [
        Forgery::WrongAudience,
        Forgery::WrongIssuer,
        Forgery::WrongNonce,
        Forgery::Expired,
        Forgery::AlgNone,
        Forgery::Hs256WithClientSecret,
        Forgery::UnknownKey,
    ] {
        provider.forge(forgery);
        let page = sign_in_with_provider(&app, &mut browser, "", 400)
            .await
            .text();
        assert!(
            page.contains("could not be verified"),
            "{forgery:?}: {page}"
        );
        assert_eq!(counts(&app).await, before, "{forgery:?} wrote nothing");
        assert!(browser.cookie("__client").is_none());
    }
    provider.forge(Forgery::None);

    provider.deny(true);
    let page = sign_in_with_provider(&app, &mut browser, "", 400)
        .await
        .text();
    assert!(page.contains("cancelled"), "{page}");
    provider.deny(false);

    provider.refuse_codes(true);
    let page = sign_in_with_provider(&app, &mut browser, "", 400)
        .await
        .text();
    assert!(page.contains("did not accept"), "{page}");
    provider.refuse_codes(false);
    assert_eq!(counts(&app).await, before);

    // The provider goes down between the button and the callback.
    let authorize = press_button(&mut browser, "").await;
    let callback = at_provider(&app, &authorize).await;
    provider.stop();
    let page = browser.get(&callback, 502).await.text();
    assert!(page.contains("could not be reached"), "{page}");
    assert_eq!(counts(&app).await, before);
    app.stop().await;
}

pub async fn linking_needs_both_sides_to_have_verified_the_address(ctx: TestContext) {
    let provider = StandInProvider::start(Person::verified("sub-4", "owner@example.com")).await;
    let app = spawn(&ctx, &provider).await;
    let key = secret_key(&app).await;

    // An unverified account holding the address: nobody is signed into it.
    let mut squatter = start_sign_up(&app, "victim@example.com").await;
    assert!(squatter.cookie("__client").is_none());
    provider.set_person(Person::verified("sub-victim", "victim@example.com"));
    let mut browser = app.browser();
    let page = sign_in_with_provider(&app, &mut browser, "", 409)
        .await
        .text();
    assert!(page.contains("Sign in to it first"), "{page}");
    assert!(browser.cookie("__client").is_none());
    assert_eq!(counts(&app).await.1, 0, "nothing linked");
    let _ = squatter.get("/sign-in", 200).await;

    // A verified account and a provider that vouches for the address: linked.
    let mut owner = sign_up(&app, "owner@example.com").await;
    let owner_id = me(&mut owner).await;
    provider.set_person(Person::verified("sub-4", "owner@example.com"));
    let mut browser = app.browser();
    sign_in_with_provider(&app, &mut browser, "", 303).await;
    assert_eq!(me(&mut browser).await, owner_id);
    let user = user_json(&app, &key, &owner_id).await;
    assert_eq!(user["external_accounts"][0]["provider_user_id"], "sub-4");
    assert!(
        events_about(&app, "user.updated", &owner_id)
            .await
            .iter()
            .any(|e| e["data"]["external_accounts"]
                .as_array()
                .is_some_and(|a| a.len() == 1))
    );

    // A provider that does not vouch for a taken address links nothing.
    let _ = sign_up(&app, "second@example.com").await;
    provider.set_person(Person {
        email_verified: Some(false),
        ..Person::verified("sub-5", "second@example.com")
    });
    let mut browser = app.browser();
    sign_in_with_provider(&app, &mut browser, "", 409).await;
    assert!(browser.cookie("__client").is_none());

    // No email at all: an account without an address.
    provider.set_person(Person {
        email: None,
        email_verified: None,
        ..Person::verified("sub-6", "")
    });
    let mut browser = app.browser();
    sign_in_with_provider(&app, &mut browser, "", 303).await;
    let id = me(&mut browser).await;
    let user = user_json(&app, &key, &id).await;
    assert_eq!(user["email_addresses"], serde_json::json!([]));
    assert_eq!(user["external_accounts"][0]["email_address"], "");
    app.stop().await;
}

pub async fn bans_throttles_and_second_factors_apply_and_operators_can_disconnect(
    ctx: TestContext,
) {
    let provider = StandInProvider::start(Person::verified("sub-7", "mary@example.com")).await;
    let app = spawn(&ctx, &provider).await;
    let key = secret_key(&app).await;
    let mut browser = app.browser();
    sign_in_with_provider(&app, &mut browser, "", 303).await;
    let id = me(&mut browser).await;

    // A second factor still asks for the second step.
    crate::mfa::enrol(&app, &mut browser).await;
    let mut fresh = app.browser();
    let reply = sign_in_with_provider(&app, &mut fresh, "", 303).await;
    assert_eq!(reply.header("location"), Some("/sign-in/factor"));
    assert!(fresh.cookie("__client").is_none() && fresh.cookie("latchkey_mfa").is_some());

    // A banned account does not get in.
    call(&app, Method::POST, &format!("/v1/users/{id}/ban"), &key)
        .expect(200)
        .await;
    let mut fresh = app.browser();
    let page = sign_in_with_provider(&app, &mut fresh, "", 403)
        .await
        .text();
    assert!(page.contains("banned"), "{page}");
    call(&app, Method::POST, &format!("/v1/users/{id}/unban"), &key)
        .expect(200)
        .await;

    // The console shows the connection on the account's page.
    crate::console::account(&app, "social-operator@example.com", true).await;
    let mut operator = app.browser();
    crate::identity::sign_in(
        &mut operator,
        "social-operator@example.com",
        crate::identity::PASSWORD,
        303,
    )
    .await;
    let page = operator
        .get(&format!("/admin/users/{id}"), 200)
        .await
        .text();
    let connected = page
        .split("id=\"connected\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no connected accounts: {page}"));
    assert!(connected.contains("mary@example.com"), "{page}");

    // Operators disconnect a provider account; it can then sign up anew.
    let user = user_json(&app, &key, &id).await;
    let account = user["external_accounts"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/users/{id}/external_accounts/{account}");
    let gone: Value = call(&app, Method::DELETE, &path, &key)
        .expect(200)
        .await
        .json();
    assert_eq!(gone["deleted"], true);
    assert_eq!(gone["object"], "external_account");
    call(&app, Method::DELETE, &path, &key).expect(404).await;
    call(
        &app,
        Method::DELETE,
        "/v1/users/user_nobody/external_accounts/idn_x",
        &key,
    )
    .expect(404)
    .await;
    let user = user_json(&app, &key, &id).await;
    assert_eq!(user["external_accounts"], serde_json::json!([]));
    app.stop().await;
}

pub async fn clerks_backend_sdk_reads_and_deletes_external_accounts(ctx: TestContext) {
    let provider =
        StandInProvider::start(Person::verified("sub-sdk", "sdk-social@example.com")).await;
    let app = spawn(&ctx, &provider).await;
    let key = secret_key(&app).await;
    let mut browser = app.browser();
    sign_in_with_provider(&app, &mut browser, "", 303).await;
    let id = me(&mut browser).await;
    let out =
        latchkey_testkit::interop::node("clerk-external-accounts.mjs", &[&app.url, &key, &id], b"")
            .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    let account = &out["accounts"][0];
    assert!(account["id"].as_str().unwrap().starts_with("idn_"), "{out}");
    assert_eq!(account["identificationId"], account["id"]);
    assert_eq!(account["provider"], "oauth_custom_standin");
    assert_eq!(account["providerUserId"], "sub-sdk");
    assert_eq!(account["emailAddress"], "sdk-social@example.com");
    assert_eq!(account["firstName"], "Ada");
    assert_eq!(account["imageUrl"], "https://images.example.com/ada.png");
    assert_eq!(account["approvedScopes"], "openid email profile");
    assert_eq!(account["verificationStatus"], "verified");
    assert_eq!(account["verificationStrategy"], "oauth_custom_standin");
    assert_eq!(out["deleted"]["deleted"], true);
    assert_eq!(out["deleted"]["object"], "external_account");
    assert_eq!(out["deleted"]["id"], account["id"]);
    assert_eq!(out["left"], 0);
    assert!(
        events_about(&app, "user.updated", &id)
            .await
            .iter()
            .any(|e| e["data"]["external_accounts"] == serde_json::json!([]))
    );
    app.stop().await;
}
