//! `/v1/sessions…`, `/v1/jwks`, and the per-key rate limit.

use latchkey_testkit::TestContext;
use reqwest::Method;
use serde_json::{Value, json};

use super::{call, error_code, events_about, get, secret_key};
use crate::identity::{PASSWORD, claims, sign_in, sign_up};

pub async fn sessions_are_listed_and_revoked_by_id(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let mut here = sign_up(&app, "sessions@example.com").await;
    let mut there = app.browser();
    sign_in(&mut there, "sessions@example.com", PASSWORD, 303).await;
    let user_id = claims(here.cookie("__session").unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let there_sid = claims(there.cookie("__session").unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let list: Value = call(
        &app,
        Method::GET,
        &format!("/v1/sessions?user_id={user_id}"),
        &key,
    )
    .expect(200)
    .await
    .json();
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], there_sid.as_str(), "newest first");
    for session in &list {
        assert_eq!(
            (session["object"].as_str(), session["status"].as_str()),
            (Some("session"), Some("active"))
        );
        assert_eq!(session["user_id"], user_id.as_str());
    }
    let one: Value = call(
        &app,
        Method::GET,
        &format!("/v1/sessions?user_id={user_id}&limit=1&offset=1"),
        &key,
    )
    .expect(200)
    .await
    .json();
    assert_eq!(one[0]["id"], list[1]["id"]);

    let revoked: Value = call(
        &app,
        Method::POST,
        &format!("/v1/sessions/{there_sid}/revoke"),
        &key,
    )
    .expect(200)
    .await
    .json();
    assert_eq!(
        (revoked["id"].as_str(), revoked["status"].as_str()),
        (Some(there_sid.as_str()), Some("revoked"))
    );
    there.get("/user", 303).await;
    here.get("/user", 200).await;
    let events = events_about(&app, "session.revoked", &user_id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["id"], there_sid.as_str());
    let active: Value = call(
        &app,
        Method::GET,
        &format!("/v1/sessions?user_id={user_id}&status=active"),
        &key,
    )
    .expect(200)
    .await
    .json();
    assert_eq!(active.as_array().unwrap().len(), 1);
    let gone: Value = call(
        &app,
        Method::GET,
        &format!("/v1/sessions?user_id={user_id}&status=revoked"),
        &key,
    )
    .expect(200)
    .await
    .json();
    assert_eq!(gone[0]["id"], there_sid.as_str());

    // Errors.
    let reply = call(
        &app,
        Method::POST,
        &format!("/v1/sessions/{there_sid}/revoke"),
        &key,
    )
    .expect(400)
    .await;
    assert_eq!(error_code(&reply), "bad_request");
    let reply = call(&app, Method::POST, "/v1/sessions/sess_unknown/revoke", &key)
        .expect(404)
        .await;
    assert_eq!(error_code(&reply), "resource_not_found");
    let reply = call(&app, Method::GET, "/v1/sessions", &key)
        .expect(422)
        .await;
    assert_eq!(error_code(&reply), "form_param_missing");
    let reply = call(
        &app,
        Method::GET,
        &format!("/v1/sessions?user_id={user_id}&status=sleepy"),
        &key,
    )
    .expect(422)
    .await;
    assert_eq!(error_code(&reply), "form_param_value_invalid");
    let none: Value = call(&app, Method::GET, "/v1/sessions?user_id=user_unknown", &key)
        .expect(200)
        .await
        .json();
    assert_eq!(none, Value::Array(Vec::new()));
    app.stop().await;
}

pub async fn jwks_matches_the_well_known_document(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let api: Value = call(&app, Method::GET, "/v1/jwks", &key)
        .expect(200)
        .await
        .json();
    let public: Value = app.get("/.well-known/jwks.json").expect(200).await.json();
    assert_eq!(api, public);
    assert_eq!(api["keys"][0]["kty"], "RSA");
    app.get("/v1/jwks").expect(401).await;
    app.stop().await;
}

pub async fn each_key_is_limited_to_1000_requests_per_10_seconds(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let other = secret_key(&app).await;
    let limit = latchkey_identity::web::bapi::RATE_LIMIT;
    assert_eq!((limit.max, limit.window.as_secs()), (1000, 10));
    // Requests refused with 422 still count, and cost no database work, so 1000 of them fit
    // well within one window even on a slow machine.
    let path = "/v1/users?limit=0";
    let mut sent = 0;
    let mut first_refusal = None;
    while first_refusal.is_none() && sent < 3000 {
        let batch: Vec<_> = (0..50)
            .map(|_| {
                let request = call(&app, Method::GET, path, &key);
                tokio::spawn(async move { request.send().await })
            })
            .collect();
        for handle in batch {
            let reply = handle.await.unwrap();
            sent += 1;
            match reply.status.as_u16() {
                422 => {}
                429 => {
                    if first_refusal.is_none() {
                        first_refusal = Some((sent, reply));
                    }
                }
                other => panic!("unexpected status {other}: {}", reply.text()),
            }
        }
    }
    let (at, reply) = first_refusal.expect("the limit was reached");
    assert!(at > 1000, "refused only after 1000 requests (at {at})");
    assert_eq!(error_code(&reply), "too_many_requests");
    let seconds: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&seconds), "{seconds}");
    // Other keys, and the JWKS, are not limited by this key's use.
    call(&app, Method::GET, "/v1/users", &other)
        .expect(200)
        .await;
    call(&app, Method::GET, "/v1/jwks", &key).expect(200).await;
    call(&app, Method::GET, "/v1/users", &key).expect(429).await;
    app.stop().await;
}

pub async fn banning_revokes_sessions_and_unbanning_lets_the_user_back(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let mut browser = sign_up(&app, "banned@example.com").await;
    let found = get(
        &app,
        &key,
        "/v1/users?email_address=banned%40example.com",
        200,
    )
    .await;
    let id = found[0]["id"].as_str().unwrap().to_owned();

    let banned: Value = call(&app, Method::POST, &format!("/v1/users/{id}/ban"), &key)
        .expect(200)
        .await
        .json();
    assert_eq!(banned["banned"], true);
    browser.get("/user", 303).await;
    let sessions = get(&app, &key, &format!("/v1/sessions?user_id={id}"), 200).await;
    assert_eq!(sessions[0]["status"], "revoked");
    assert_eq!(events_about(&app, "session.revoked", &id).await.len(), 1);
    let reply = sign_in(&mut browser, "banned@example.com", PASSWORD, 403).await;
    assert!(reply.text().contains("banned"));

    let unbanned: Value = call(&app, Method::POST, &format!("/v1/users/{id}/unban"), &key)
        .expect(200)
        .await
        .json();
    assert_eq!(unbanned["banned"], false);
    sign_in(&mut browser, "banned@example.com", PASSWORD, 303).await;
    let updates = events_about(&app, "user.updated", &id).await;
    let states: Vec<&Value> = updates.iter().map(|e| &e["data"]["banned"]).collect();
    // The first update is the sign-up's address being verified.
    assert_eq!(states, [&json!(false), &json!(true), &json!(false)]);
    assert_eq!(
        updates[0]["data"]["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    let reply = call(&app, Method::POST, "/v1/users/user_unknown/ban", &key)
        .expect(404)
        .await;
    assert_eq!(error_code(&reply), "resource_not_found");
    app.stop().await;
}
